package stress

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/openloop"
)

func TestQuantileNearestRank(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 100; i++ {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := Quantile(xs, tc.q); got != tc.want {
			t.Errorf("q %v: %v, want %v", tc.q, got, tc.want)
		}
	}
	// n = 10: the 0.99-quantile is the 10th, not the 9th.
	if got := Quantile(xs[:10], 0.99); got != 10*time.Millisecond {
		t.Errorf("n=10 p99 %v, want 10ms", got)
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("empty quantile not 0")
	}
}

func row(rate float64, held bool) StepRow { return StepRow{Profile: "p", OfferedRPS: rate, Held: held} }

func TestKneeVectors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rows     []StepRow
		knee     float64
		censored bool
	}{
		{"all held", []StepRow{row(10, true), row(20, true), row(40, true)}, 40, true},
		{"breaks at 40", []StepRow{row(10, true), row(20, true), row(40, false), row(80, false)}, 20, false},
		{"a lucky pass after a failure does not count", []StepRow{row(10, true), row(20, false), row(40, true)}, 10, false},
		{"first step fails", []StepRow{row(10, false), row(20, true)}, 0, false},
		{"order of rows does not matter", []StepRow{row(40, false), row(10, true), row(20, true)}, 20, false},
		{"no rows", nil, 0, false},
	} {
		knee, cens := Knee(tc.rows)
		if knee != tc.knee || cens != tc.censored {
			t.Errorf("%s: knee %v censored %v, want %v %v", tc.name, knee, cens, tc.knee, tc.censored)
		}
	}
}

// reqs builds n requests at rate, each answered after lat, the last
// failures of them with outcome bad.
func reqs(n int, rate float64, lat time.Duration, failures int, bad openloop.Outcome) []openloop.Request {
	out := make([]openloop.Request, n)
	for i := range out {
		at := time.Duration(float64(i) / rate * float64(time.Second))
		out[i] = openloop.Request{Scheduled: at, Latency: lat, Done: at + lat, Outcome: openloop.OK, Status: 200}
		if i >= n-failures {
			out[i].Outcome = bad
		}
	}
	return out
}

func TestSummarizeJudges(t *testing.T) {
	c := Criteria{SLOP99: 100 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		reqs   []openloop.Request
		held   bool
		reason string
	}{
		{"steady", reqs(100, 50, 20*time.Millisecond, 0, openloop.OK), true, ""},
		{"slow", reqs(100, 50, 150*time.Millisecond, 0, openloop.OK), false, "p99 150.0 ms > slo 100.0 ms"},
		// 1 of 100 is within the default 1%; 2 is not.
		{"one timeout", reqs(100, 50, 20*time.Millisecond, 1, openloop.TimedOut), true, ""},
		{"two errors", reqs(100, 50, 20*time.Millisecond, 2, openloop.Failed), false, "failure rate 0.0200 > 0.0100"},
	} {
		r := summarize("p", 0, 50, 2*time.Second, time.Second, tc.reqs, c)
		if r.Held != tc.held || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("%s: held %v (%s), want %v (%s)", tc.name, r.Held, r.Reason, tc.held, tc.reason)
		}
	}
	// A backlog: replies come back at 25/s while 50/s are offered.
	back := reqs(100, 50, 0, 0, openloop.OK)
	for i := range back {
		back[i].Done = time.Duration(float64(i) / 25 * float64(time.Second))
		back[i].Latency = back[i].Done - back[i].Scheduled
	}
	r := summarize("p", 0, 50, 2*time.Second, 10*time.Second, back, Criteria{SLOP99: time.Hour})
	if math.Abs(r.AchievedRPS-25) > 0.01 || r.Held || !strings.Contains(r.Reason, "achieved 25.0/s") {
		t.Errorf("backlog: achieved %.2f held %v (%s), want 25/s and not held", r.AchievedRPS, r.Held, r.Reason)
	}
	// Steady replies: achieved is the offered rate exactly.
	r = summarize("p", 0, 50, 2*time.Second, time.Second, reqs(100, 50, 20*time.Millisecond, 0, openloop.OK), c)
	if math.Abs(r.AchievedRPS-50) > 1e-9 {
		t.Errorf("steady achieved %v, want 50", r.AchievedRPS)
	}
	if r.P50MS != 20 || r.P99MS != 20 || r.Sent != 100 || r.OK != 100 {
		t.Errorf("steady row %+v", r)
	}
}

// The verdict can be recomputed from a row's own columns, as a notebook
// reading the Parquet does.
func TestVerdictRecomputableFromRow(t *testing.T) {
	r := summarize("wan", 3, 80, time.Second, time.Second, reqs(80, 80, 250*time.Millisecond, 5, openloop.TimedOut), Criteria{SLOP99: 200 * time.Millisecond})
	b, _ := json.Marshal(r)
	var back StepRow
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	held := back.P99MS <= back.SLOP99MS && float64(back.Timeouts+back.Errors)/float64(back.Sent) <= back.MaxFailureRate &&
		back.AchievedRPS >= back.MinAchievedRatio*back.OfferedRPS
	if held != back.Held {
		t.Errorf("recomputed %v, row says %v (%s)", held, back.Held, back.Reason)
	}
}

func TestMetricsPerProfileAndWorst(t *testing.T) {
	rows := []StepRow{
		{Profile: "lan", OfferedRPS: 10, Held: true, Sent: 100},
		{Profile: "lan", OfferedRPS: 20, Held: true, Sent: 100, Expected: true, Timeouts: 0, P99MS: 30},
		{Profile: "lan", OfferedRPS: 40, Held: true, Sent: 100},
		{Profile: "wan", OfferedRPS: 10, Held: true, Sent: 100},
		{Profile: "wan", OfferedRPS: 20, Held: false, Sent: 100, Expected: true, Timeouts: 7, Errors: 1, P99MS: 900},
	}
	m := Metrics(rows)
	want := map[string]float64{
		"stress.knee_rps.lan": 40, "stress.knee_censored.lan": 1, "stress.knee_rps.wan": 10, "stress.knee_censored.wan": 0,
		"stress.knee_rps": 10, "stress.knee_censored": 0,
		"stress.timeout_rate.lan": 0, "stress.timeout_rate.wan": 0.07, "stress.timeout_rate": 0.07,
		"stress.error_rate.wan": 0.01, "stress.error_rate": 0.01, "stress.p99_ms.wan": 900, "stress.p99_ms": 900,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || math.Abs(got-v) > 1e-12 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestStepsIncludeExpected(t *testing.T) {
	o := Options{Rates: []float64{40, 10, 20, 10}, ExpectedRPS: 15}
	got := o.Steps()
	want := []float64{10, 15, 20, 40}
	if len(got) != len(want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("steps %v, want %v", got, want)
		}
	}
}

func TestChatBodySize(t *testing.T) {
	for _, size := range []int{0, 1000, 64 << 10, 256 << 10} {
		b, err := ChatBody("m", size, 32)
		if err != nil {
			t.Fatal(err)
		}
		if size > 200 && (len(b) < size-64 || len(b) > size+64) {
			t.Errorf("size %d: body of %d bytes", size, len(b))
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("size %d: not JSON: %v", size, err)
		}
	}
}
