package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/redteam"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

// The SDK reports one metric name with different tag sets; Prometheus
// needs one label set per family, so the scrape must still succeed with
// the missing labels empty.
func TestSDKHandlerMixedTagSetsScrape(t *testing.T) {
	m := NewMetrics()
	h := m.SDKHandler()
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"namespace": "default", "operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(3)
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"task_queue": "q"}).Gauge("temporal_num_pollers").Update(4)
	h.WithTags(map[string]string{"task_queue": "q"}).Gauge("temporal_num_pollers").Update(2)
	timer := h.WithTags(map[string]string{"activity_type": "Gate"}).Timer("temporal_activity_execution_latency")
	timer.Record(20 * time.Millisecond)
	timer.Record(3 * time.Second)
	// A bad character in a tag name, and the same name reported as another kind.
	h.WithTags(map[string]string{"bad-tag": "x"}).Counter("temporal_num_pollers").Inc(1)

	if _, err := m.Registry().Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`temporal_request{namespace="default",operation=""} 3`,
		`temporal_request{namespace="default",operation="StartWorkflowExecution"} 3`,
		`temporal_num_pollers{task_queue="q"} 2`,
		`temporal_activity_execution_latency_bucket{activity_type="Gate",le="0.025"} 1`,
		`temporal_activity_execution_latency_bucket{activity_type="Gate",le="5"} 2`,
		`temporal_activity_execution_latency_count{activity_type="Gate"} 2`,
		`temporal_num_pollers_counter{bad_tag="x"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestInterceptorCountsActivitiesAndReleaseFacts(t *testing.T) {
	m := NewMetrics()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{m.Interceptor()}})
	shard := func(ctx context.Context, in activities.ShardInput) (activities.ShardResult, error) {
		return activities.ShardResult{Tally: redteam.Tally{Overall: redteam.Counts{Breached: 2, Defended: 7, Errored: 1}}}, nil
	}
	gateFn := func(ctx context.Context, in activities.GateInput) (activities.GateResult, error) {
		return activities.GateResult{Verdict: gate.Verdict{Verdict: gate.Blocked}}, nil
	}
	failing := func(ctx context.Context) error { return errors.New("model returned 503") }
	env.RegisterActivityWithOptions(shard, activity.RegisterOptions{Name: "AdversarialShard"})
	env.RegisterActivityWithOptions(gateFn, activity.RegisterOptions{Name: "Gate"})
	env.RegisterActivityWithOptions(failing, activity.RegisterOptions{Name: "Flaky"})
	if _, err := env.ExecuteActivity("AdversarialShard", activities.ShardInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity("Gate", activities.GateInput{Phase: gate.PhasePreShadow}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity("Flaky"); err == nil {
		t.Fatal("Flaky succeeded")
	}
	out := scrape(t, m)
	for _, want := range []string{
		`sandgate_adversarial_attempts_total{outcome="breached"} 2`,
		`sandgate_adversarial_attempts_total{outcome="errored"} 1`,
		`sandgate_gate_verdicts_total{phase="` + gate.PhasePreShadow + `",verdict="` + gate.Blocked + `"} 1`,
		`sandgate_activity_executions_total{activity="AdversarialShard",outcome="ok"} 1`,
		`sandgate_activity_executions_total{activity="Flaky",outcome="error"} 1`,
		`sandgate_activity_duration_seconds_count{activity="Gate"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestServeMetricsBadAddressNamesFlag(t *testing.T) {
	if _, err := ServeMetrics(t.Context(), "not-an-address", NewMetrics(), nil); err == nil || !strings.Contains(err.Error(), "--metrics-listen") {
		t.Fatalf("error %v, want one naming --metrics-listen", err)
	}
}

// BenchmarkSDKCounter reports what one SDK counter increment costs through
// sdkCollector against a client_golang CounterVec with the same labels
// measured in the same run (ratio_vs_countervec): the SDK increments on
// every poll and task, so it must stay cheap.
func BenchmarkSDKCounter(b *testing.B) {
	const n = 200000
	tags := map[string]string{"namespace": "default", "task_queue": "q"}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baseline_total", Help: "baseline"}, []string{"namespace", "task_queue"})
	began := time.Now()
	for range n {
		vec.With(tags).Inc()
	}
	base := time.Since(began)
	c := NewMetrics().SDKHandler().WithTags(tags).Counter("temporal_request")
	b.ResetTimer()
	for b.Loop() {
		c.Inc(1)
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/(float64(base.Nanoseconds())/n), "ratio_vs_countervec")
}
