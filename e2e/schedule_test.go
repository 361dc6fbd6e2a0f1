package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/internal/cli"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/workflows"
)

// smallConfig writes a copy of an example config with fewer prompts and
// shadow requests (a schedule test runs several releases) and, with
// regression, a rule that compares against the baseline.
func smallConfig(t *testing.T, example string, regression bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", example))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	rule := ""
	if regression {
		rule = `    - name: no-regression
      expr: '!has_baseline("adversarial.asr") || m["adversarial.asr"] <= baseline["adversarial.asr"] + 0.02'
      description: no worse than the last released run
`
	}
	for old, repl := range map[string]string{
		"    prompts: 600\n":     "    prompts: 80\n",
		"    shards: 4\n":        "    shards: 2\n",
		"    part_size: 50\n":    "    part_size: 40\n",
		"    requests: 100\n":    "    requests: 20\n",
		"      objectives: 40\n": "      objectives: 30\n",
		"gate:\n  rules:\n":      "gate:\n  rules:\n" + rule,
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("%s no longer contains %q: update smallConfig", example, old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), example)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runStarter runs the starter CLI against the test's stack.
func runStarter(t *testing.T, ctx context.Context, env *stackEnv, args ...string) (int, string) {
	t.Helper()
	w := &testutil.LockedBuffer{}
	vars := map[string]string{"TEMPORAL_ADDRESS": env.stack.FrontendAddress(), "TEMPORAL_NAMESPACE": env.stack.Namespace()}
	code := cli.Run(ctx, cli.Env{Stdout: w, Stderr: w, Logger: testLogger(t), Getenv: func(k string) string { return vars[k] }}, args)
	return code, w.String()
}

// startMetricsWorker runs a worker whose client and interceptor report to
// a Prometheus registry served on a free loopback port; it returns the
// /metrics URL.
func (e *stackEnv) startMetricsWorker(t *testing.T, ctx context.Context, taskQueue string) string {
	t.Helper()
	m := app.NewMetrics()
	addr, err := app.ServeMetrics(ctx, "127.0.0.1:0", m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.Dial(ctx, app.TemporalConfig{Address: e.stack.FrontendAddress(), Namespace: e.stack.Namespace(), Metrics: m}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	acts, err := app.NewActivities(ctx, e.s3cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	acts.TempDir = t.TempDir()
	w := app.NewWorkerWithOptions(c, taskQueue, acts, app.WorkerOptions{Metrics: m})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.Stop()
		_ = acts.Close(context.Background())
	})
	return "http://" + addr + "/metrics"
}

// gateEvidence reads a release's pre-shadow gate record.
func gateEvidence(t *testing.T, ctx context.Context, env *stackEnv, releaseID string) map[string]any {
	t.Helper()
	objs, err := env.store.List(ctx, layout(t, releaseID).Prefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, "gate-pre-shadow.json") {
			b, err := env.store.Get(ctx, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			var ev map[string]any
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatalf("%s: %v", o.Key, err)
			}
			return ev
		}
	}
	t.Fatalf("release %s has no gate-pre-shadow.json", releaseID)
	return nil
}

// gateVerdictAttr reads the GateVerdict search attribute of a workflow.
func gateVerdictAttr(t *testing.T, ctx context.Context, env *stackEnv, id string) string {
	t.Helper()
	d, err := env.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	p := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["GateVerdict"]
	if p == nil {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitRuns polls the schedule until n runs have started, deletes it (so no
// further runs start) and waits until those n have ended; it returns them
// oldest first.
func waitRuns(t *testing.T, ctx context.Context, env *stackEnv, scheduleID string, n int, timeout time.Duration) []app.RunOutcome {
	t.Helper()
	h := env.client.ScheduleClient().GetHandle(ctx, scheduleID)
	var ids []string
	eventually(t, ctx, timeout, fmt.Sprintf("schedule %s starts %d runs", scheduleID, n), func() error {
		d, err := h.Describe(ctx)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, a := range d.Info.RecentActions {
			if a.StartWorkflowResult != nil {
				ids = append(ids, a.StartWorkflowResult.WorkflowID)
			}
		}
		if len(ids) < n {
			return fmt.Errorf("%d runs started", len(ids))
		}
		return nil
	})
	var runs []app.RunOutcome
	eventually(t, ctx, timeout, fmt.Sprintf("the first %d runs of %s end", n, scheduleID), func() error {
		runs = runs[:0]
		for _, id := range ids[:n] {
			o, err := app.DescribeRun(ctx, env.client, id)
			if err != nil {
				return err
			}
			if o.Status == "Running" {
				return fmt.Errorf("%s still running", id)
			}
			runs = append(runs, o)
		}
		return nil
	})
	return runs
}

// TestScheduleRunsCompareAgainstThePreviousRun is continuous governance on
// the embedded stack: a schedule every 5 s (the server's minimum is 1 s;
// runs never overlap, so a tick during a run is skipped) re-runs a release
// config; the second run's gate names the first as its baseline. Then a
// leaky candidate of the same model, triggered on a schedule of its own, is
// blocked against the second run, fails its scheduled run and shows
// GateVerdict=BLOCKED. The worker serves /metrics, scraped at the end for
// both the SDK's and sandgate's series.
func TestScheduleRunsCompareAgainstThePreviousRun(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const queue = "ops-schedule"
	metricsURL := env.startMetricsWorker(t, ctx, queue)
	good := smallConfig(t, "release.yaml", true)
	began := time.Now()

	code, out := runStarter(t, ctx, env, "schedule", "create", "-f", good, "--id", "gov-harbor", "--every", "5s", "--task-queue", queue)
	t.Log(out)
	if code != cli.ExitReleased {
		t.Fatalf("schedule create: exit %d", code)
	}
	code, out = runStarter(t, ctx, env, "schedule", "create", "-f", good, "--id", "gov-harbor", "--every", "5s", "--task-queue", queue)
	if code != cli.ExitBadInput || !strings.Contains(out, "--id gov-harbor") {
		t.Errorf("second create with the same id: exit %d, %q; want %d naming --id", code, out, cli.ExitBadInput)
	}

	code, out = runStarter(t, ctx, env, "schedule", "create", "-f", good, "--id", "gov-nightly", "--cron", "0 2 * * *", "--task-queue", queue)
	if code != 0 {
		t.Fatalf("schedule create --cron: exit %d, %s", code, out)
	}

	runs := waitRuns(t, ctx, env, "gov-harbor", 2, 6*time.Minute)
	t.Logf("two scheduled runs ended after %.0fs: %v; %v", time.Since(began).Seconds(), runs[0], runs[1])
	// The list is read through visibility, which lags a little.
	eventually(t, ctx, 30*time.Second, "schedule list shows gov-harbor with its last result", func() error {
		code, out = runStarter(t, ctx, env, "schedule", "list")
		if code != 0 || !strings.Contains(out, "gov-harbor") || !strings.Contains(out, "every 5s") || !strings.Contains(out, "completed RELEASED release-") ||
			!strings.Contains(out, "gov-nightly") || !strings.Contains(out, "cron 0 2 * * *") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	t.Logf("schedule list:\n%s", out)
	for _, id := range []string{"gov-harbor", "gov-nightly"} {
		code, out = runStarter(t, ctx, env, "schedule", "delete", id)
		if code != 0 || !strings.Contains(out, "deleted") {
			t.Fatalf("schedule delete %s: exit %d, %s", id, code, out)
		}
	}
	if code, out = runStarter(t, ctx, env, "schedule", "delete", "gov-harbor"); code != cli.ExitBadInput {
		t.Errorf("deleting it again: exit %d, %s; want %d", code, out, cli.ExitBadInput)
	}

	for i, r := range runs {
		if r.Status != "Completed" || r.Verdict != workflows.VerdictReleased || r.ReleaseID == "" {
			t.Fatalf("run %d: %+v, want a completed RELEASED release", i+1, r)
		}
		if !strings.HasPrefix(r.ReleaseID, "release-harbor-assistant-1-4-0-") {
			t.Errorf("run %d release id %q does not start with the config's release id", i+1, r.ReleaseID)
		}
		if v := gateVerdictAttr(t, ctx, env, r.ReleaseID); v != workflows.VerdictReleased {
			t.Errorf("release %s: GateVerdict %q", r.ReleaseID, v)
		}
	}
	if runs[0].ReleaseID == runs[1].ReleaseID {
		t.Fatalf("both runs share release id %s", runs[0].ReleaseID)
	}
	first, second := gateEvidence(t, ctx, env, runs[0].ReleaseID), gateEvidence(t, ctx, env, runs[1].ReleaseID)
	if b := first["baseline_release"]; b != "" {
		t.Errorf("first run's baseline_release %v, want none on a fresh stack", b)
	}
	if b := second["baseline_release"]; b != runs[0].ReleaseID {
		t.Errorf("second run's baseline_release %v, want the first run %s", b, runs[0].ReleaseID)
	}
	if base, _ := second["baseline"].(map[string]any); base["adversarial.asr"] == nil {
		t.Errorf("second run's gate evidence has no baseline adversarial.asr: %v", second["baseline"])
	}
	t.Logf("run 2 (%s) compared against run 1 (%s): asr %v, baseline asr %v", runs[1].ReleaseID, runs[0].ReleaseID,
		second["metrics"].(map[string]any)["adversarial.asr"], second["baseline"].(map[string]any)["adversarial.asr"])
	ms := verifyParquet(t, ctx, env.store, runs[1].ReleaseID)
	if adv := ms[resultManifestKey(t, runs[1].ReleaseID, "adversarial")]; adv.Rows != 80 {
		t.Errorf("second run: %d adversarial rows, want 80", adv.Rows)
	}

	// A regression: the leaky candidate of the same model.
	leaky := smallConfig(t, "release-leaky.yaml", true)
	code, out = runStarter(t, ctx, env, "schedule", "create", "-f", leaky, "--id", "gov-leaky", "--every", "1h", "--trigger", "--task-queue", queue)
	if code != 0 {
		t.Fatalf("schedule create leaky: exit %d, %s", code, out)
	}
	bad := waitRuns(t, ctx, env, "gov-leaky", 1, 3*time.Minute)[0]
	t.Logf("leaky run: %v", bad)
	if bad.Status != "Failed" || bad.Verdict != workflows.VerdictBlocked {
		t.Errorf("leaky scheduled run %+v, want Failed with verdict BLOCKED", bad)
	}
	if v := gateVerdictAttr(t, ctx, env, bad.ReleaseID); v != workflows.VerdictBlocked {
		t.Errorf("leaky release %s: GateVerdict %q, want BLOCKED", bad.ReleaseID, v)
	}
	if b := gateEvidence(t, ctx, env, bad.ReleaseID)["baseline_release"]; b != runs[1].ReleaseID {
		t.Errorf("leaky run's baseline_release %v, want the last released run %s", b, runs[1].ReleaseID)
	}
	eventually(t, ctx, 30*time.Second, "schedule list shows the blocked run", func() error {
		code, out = runStarter(t, ctx, env, "schedule", "list")
		if code != 0 || !strings.Contains(out, "failed BLOCKED "+bad.ReleaseID) {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	t.Logf("schedule list:\n%s", out)

	// Metrics after three releases on this worker.
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	scrape := string(body)
	for _, want := range []string{
		"temporal_workflow_completed",                // SDK: workflow task outcomes
		"temporal_activity_execution_latency_bucket", // SDK: activity timers
		"temporal_request",                           // SDK: client calls
		`sandgate_activity_executions_total{activity="AdversarialShard",outcome="ok"}`,
		`sandgate_release_reports_total{model="harbor-assistant",verdict="RELEASED"} 2`,
		`sandgate_release_reports_total{model="harbor-assistant",verdict="BLOCKED"} 1`,
		`sandgate_gate_verdicts_total{phase="pre-shadow",verdict="BLOCKED"} 1`,
		`sandgate_adversarial_attempts_total{outcome="defended"}`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", scrape)
	}
}
