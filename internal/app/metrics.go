package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/activities"
)

// Metrics is one worker process's Prometheus registry: the Temporal SDK's
// own series (temporal_*: polls, task latencies, activity and workflow
// outcomes as the SDK sees them) and sandgate's (sandgate_*), served on
// /metrics. Our counters live here, fed by a worker interceptor, so the
// domain packages stay free of metrics code.
type Metrics struct {
	reg *prometheus.Registry
	sdk *sdkCollector

	activityRuns     *prometheus.CounterVec
	activityDuration *prometheus.HistogramVec
	attempts         *prometheus.CounterVec
	gateVerdicts     *prometheus.CounterVec
	reports          *prometheus.CounterVec
}

// NewMetrics creates a registry with the Go runtime and process collectors,
// the SDK collector and sandgate's series.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), sdk: newSDKCollector()}
	m.activityRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandgate_activity_executions_total",
		Help: "Activity attempts this worker finished, by activity and outcome (ok, error, canceled, timeout).",
	}, []string{"activity", "outcome"})
	m.activityDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sandgate_activity_duration_seconds",
		Help:    "Wall time of one activity attempt on this worker.",
		Buckets: []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	}, []string{"activity"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandgate_adversarial_attempts_total",
		Help: "Adversarial prompts sent to candidate models by finished shards, by outcome; errored counts model errors and timeouts.",
	}, []string{"outcome"})
	m.gateVerdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandgate_gate_verdicts_total",
		Help: "Gate decisions recorded by this worker, by phase and verdict.",
	}, []string{"phase", "verdict"})
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandgate_release_reports_total",
		Help: "Release reports written by this worker, by model and verdict: one per finished release.",
	}, []string{"model", "verdict"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sdk,
		m.activityRuns, m.activityDuration, m.attempts, m.gateVerdicts, m.reports,
	)
	return m
}

// Registry is where the integrator can register further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SDKHandler is the handler to put in client.Options.MetricsHandler (see
// TemporalConfig.Metrics): the SDK reports through it.
func (m *Metrics) SDKHandler() client.MetricsHandler { return sdkHandler{c: m.sdk} }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Interceptor counts activity outcomes and the results sandgate cares
// about; pass it in worker.Options.Interceptors (NewWorkerWithOptions does).
func (m *Metrics) Interceptor() interceptor.WorkerInterceptor { return &metricsInterceptor{m: m} }

// ServeMetrics serves /metrics on addr until ctx ends. It returns the
// address actually bound (addr may use port 0) once the listener is up, so
// a bad address is an error at startup, not a log line later.
func ServeMetrics(ctx context.Context, addr string, m *Metrics, logger *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics listen %s (--metrics-listen host:port): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), nil
}

type metricsInterceptor struct {
	interceptor.WorkerInterceptorBase
	m *Metrics
}

func (i *metricsInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &activityMetrics{m: i.m}
	a.Next = next
	return a
}

type activityMetrics struct {
	interceptor.ActivityInboundInterceptorBase
	m *Metrics
}

func (a *activityMetrics) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	name := activity.GetInfo(ctx).ActivityType.Name
	began := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	a.m.activityDuration.WithLabelValues(name).Observe(time.Since(began).Seconds())
	a.m.activityRuns.WithLabelValues(name, outcome(ctx, err)).Inc()
	if err == nil {
		a.m.observeResult(in.Args, res)
	}
	return res, err
}

func outcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.DeadlineExceeded) || temporal.IsTimeoutError(err):
		return "timeout"
	case errors.Is(err, context.Canceled) || temporal.IsCanceledError(err) || ctx.Err() != nil:
		return "canceled"
	}
	return "error"
}

// observeResult reads the few activity results that carry release facts.
// The SDK hands the interceptor the typed arguments and result.
func (m *Metrics) observeResult(args []any, res any) {
	switch r := res.(type) {
	case activities.ShardResult:
		c := r.Tally.Overall
		m.attempts.WithLabelValues("breached").Add(float64(c.Breached))
		m.attempts.WithLabelValues("defended").Add(float64(c.Defended))
		m.attempts.WithLabelValues("errored").Add(float64(c.Errored))
	case activities.GateResult:
		phase := ""
		if len(args) > 0 {
			if in, ok := args[0].(activities.GateInput); ok {
				phase = in.Phase
			}
		}
		m.gateVerdicts.WithLabelValues(phase, r.Verdict.Verdict).Inc()
	case activities.ReportRef:
		if len(args) > 0 {
			if in, ok := args[0].(activities.ReportInput); ok {
				m.reports.WithLabelValues(in.Report.ModelName, in.Report.Verdict).Inc()
			}
		}
	}
}

// The SDK names its metrics and tags freely (the same metric may be reported
// with different tag sets), while a Prometheus family needs one fixed set
// of label names. sdkCollector keeps every series it was given and, at
// scrape time, labels each family with the union of its tag names, leaving
// the absent ones empty.

type metricKind int

const (
	kindCounter metricKind = iota
	kindGauge
	kindTimer
)

// timerBuckets are in seconds: SDK timers span sub-millisecond polls to
// hour-long activities.
var timerBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

type sdkSeries struct {
	labels  map[string]string
	value   float64  // counter or gauge
	count   uint64   // timer
	sum     float64  // timer, seconds
	buckets []uint64 // timer: observations <= each of timerBuckets (cumulative)
}

type sdkFamily struct {
	kind   metricKind
	series map[string]*sdkSeries
}

type sdkCollector struct {
	mu       sync.Mutex
	families map[string]*sdkFamily
}

func newSDKCollector() *sdkCollector { return &sdkCollector{families: map[string]*sdkFamily{}} }

// Describe sends nothing: the families are only known once the SDK reports,
// which makes this an unchecked collector.
func (c *sdkCollector) Describe(chan<- *prometheus.Desc) {}

func (c *sdkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, f := range c.families {
		names := map[string]bool{}
		for _, s := range f.series {
			for k := range s.labels {
				names[k] = true
			}
		}
		labelNames := make([]string, 0, len(names))
		for k := range names {
			labelNames = append(labelNames, k)
		}
		sort.Strings(labelNames)
		desc := prometheus.NewDesc(name, "Temporal Go SDK metric "+name+".", labelNames, nil)
		for _, s := range f.series {
			values := make([]string, len(labelNames))
			for i, k := range labelNames {
				values[i] = s.labels[k]
			}
			var m prometheus.Metric
			var err error
			switch f.kind {
			case kindCounter:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, values...)
			case kindGauge:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, values...)
			case kindTimer:
				b := make(map[float64]uint64, len(timerBuckets))
				for i, le := range timerBuckets {
					b[le] = s.buckets[i]
				}
				m, err = prometheus.NewConstHistogram(desc, s.count, s.sum, b, values...)
			}
			if err != nil {
				ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			ch <- m
		}
	}
}

// series returns the series for name and labels, creating it; a name
// reported as two kinds gets the kind as a suffix the second time.
func (c *sdkCollector) series(name string, kind metricKind, labels map[string]string, key string) *sdkSeries {
	name = promName(name)
	f := c.families[name]
	if f != nil && f.kind != kind {
		name += [...]string{"_counter", "_gauge", "_timer"}[kind]
		f = c.families[name]
	}
	if f == nil {
		f = &sdkFamily{kind: kind, series: map[string]*sdkSeries{}}
		c.families[name] = f
	}
	s := f.series[key]
	if s == nil {
		s = &sdkSeries{labels: labels}
		if kind == kindTimer {
			s.buckets = make([]uint64, len(timerBuckets))
		}
		f.series[key] = s
	}
	return s
}

// sdkHandler implements client.MetricsHandler with fixed tags.
type sdkHandler struct {
	c      *sdkCollector
	labels map[string]string
	key    string // labels in a canonical form, the series key
}

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	labels := make(map[string]string, len(h.labels)+len(tags))
	for k, v := range h.labels {
		labels[k] = v
	}
	for k, v := range tags {
		labels[strings.ReplaceAll(promName(k), ":", "_")] = v
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return sdkHandler{c: h.c, labels: labels, key: b.String()}
}

func (h sdkHandler) Counter(name string) client.MetricsCounter {
	return counterFunc(func(d int64) {
		h.c.mu.Lock()
		h.c.series(name, kindCounter, h.labels, h.key).value += float64(d)
		h.c.mu.Unlock()
	})
}

func (h sdkHandler) Gauge(name string) client.MetricsGauge {
	return gaugeFunc(func(v float64) {
		h.c.mu.Lock()
		h.c.series(name, kindGauge, h.labels, h.key).value = v
		h.c.mu.Unlock()
	})
}

func (h sdkHandler) Timer(name string) client.MetricsTimer {
	return timerFunc(func(d time.Duration) {
		sec := d.Seconds()
		h.c.mu.Lock()
		s := h.c.series(name, kindTimer, h.labels, h.key)
		s.count++
		s.sum += sec
		for i, le := range timerBuckets {
			if sec <= le {
				s.buckets[i]++
			}
		}
		h.c.mu.Unlock()
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// promName maps a name to Prometheus' [a-zA-Z_:][a-zA-Z0-9_:]*.
func promName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
