package stress

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sandgate/sandgate/internal/openloop"
)

// Criteria decide whether a step held (see the package doc).
type Criteria struct {
	SLOP99 time.Duration
	// MaxFailureRate bounds (timeouts + errors) / sent; default 0.01.
	MaxFailureRate float64
	// MinAchievedRatio bounds achieved / offered from below; default 0.9.
	MinAchievedRatio float64
}

func (c Criteria) withDefaults() Criteria {
	if c.MaxFailureRate == 0 {
		c.MaxFailureRate = 0.01
	}
	if c.MinAchievedRatio == 0 {
		c.MinAchievedRatio = 0.9
	}
	return c
}

// Validate names the criterion that is out of range.
func (c Criteria) Validate() error {
	var bad []string
	if c.SLOP99 <= 0 {
		bad = append(bad, fmt.Sprintf("slo_p99 %v must be positive", c.SLOP99))
	}
	if c.MaxFailureRate < 0 || c.MaxFailureRate >= 1 || math.IsNaN(c.MaxFailureRate) {
		bad = append(bad, fmt.Sprintf("max_failure_rate %v must be in [0, 1)", c.MaxFailureRate))
	}
	if c.MinAchievedRatio < 0 || c.MinAchievedRatio > 1 || math.IsNaN(c.MinAchievedRatio) {
		bad = append(bad, fmt.Sprintf("min_achieved_ratio %v must be in [0, 1]", c.MinAchievedRatio))
	}
	if len(bad) > 0 {
		return fmt.Errorf("stress criteria: %s", strings.Join(bad, "; "))
	}
	return nil
}

// StepRow is one step of one profile: table results/stress/steps.
type StepRow struct {
	Profile string `parquet:"profile" json:"profile"`
	// LinkBytesPerSecond is the profile's byte rate per direction (0 = none).
	LinkBytesPerSecond int64   `parquet:"link_bytes_per_second" json:"link_bytes_per_second"`
	Step               int32   `parquet:"step" json:"step"`
	OfferedRPS         float64 `parquet:"offered_rps" json:"offered_rps"`
	AchievedRPS        float64 `parquet:"achieved_rps" json:"achieved_rps"`
	DurationMS         float64 `parquet:"duration_ms" json:"duration_ms"`
	TimeoutMS          float64 `parquet:"timeout_ms" json:"timeout_ms"`
	Sent               int64   `parquet:"sent" json:"sent"`
	OK                 int64   `parquet:"ok" json:"ok"`
	Timeouts           int64   `parquet:"timeouts" json:"timeouts"`
	Errors             int64   `parquet:"errors" json:"errors"`
	P50MS              float64 `parquet:"p50_ms" json:"p50_ms"`
	P95MS              float64 `parquet:"p95_ms" json:"p95_ms"`
	P99MS              float64 `parquet:"p99_ms" json:"p99_ms"`
	MaxMS              float64 `parquet:"max_ms" json:"max_ms"`
	// MaxSendLagMS is how late the generator sent its latest request: a
	// large value means the harness, not the model, was the bottleneck.
	MaxSendLagMS float64 `parquet:"max_send_lag_ms" json:"max_send_lag_ms"`
	// BytesIn and BytesOut went through the profile's relay in this step.
	BytesIn  int64 `parquet:"bytes_in" json:"bytes_in"`
	BytesOut int64 `parquet:"bytes_out" json:"bytes_out"`
	// The criteria the step was judged by, and the verdict.
	SLOP99MS         float64 `parquet:"slo_p99_ms" json:"slo_p99_ms"`
	MaxFailureRate   float64 `parquet:"max_failure_rate" json:"max_failure_rate"`
	MinAchievedRatio float64 `parquet:"min_achieved_ratio" json:"min_achieved_ratio"`
	Expected         bool    `parquet:"expected_load" json:"expected_load"`
	Held             bool    `parquet:"held" json:"held"`
	Reason           string  `parquet:"reason" json:"reason,omitempty"`
}

// RequestRow is one request: table results/stress/requests.
type RequestRow struct {
	Profile     string  `parquet:"profile" json:"profile"`
	Step        int32   `parquet:"step" json:"step"`
	OfferedRPS  float64 `parquet:"offered_rps" json:"offered_rps"`
	Seq         int32   `parquet:"seq" json:"seq"`
	ScheduledMS float64 `parquet:"scheduled_ms" json:"scheduled_ms"`
	LatencyMS   float64 `parquet:"latency_ms" json:"latency_ms"`
	SendLagMS   float64 `parquet:"send_lag_ms" json:"send_lag_ms"`
	Outcome     string  `parquet:"outcome" json:"outcome"` // ok, timeout, error
	Status      int32   `parquet:"status" json:"status"`
	Error       string  `parquet:"error" json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Quantile is the nearest-rank q-quantile of sorted: the ⌈q·n⌉-th
// smallest; 0 for none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(n) - 1e-9))
	return sorted[max(0, min(k, n)-1)]
}

// summarize turns one step's requests into its row and judges it.
func summarize(profile string, step int, offered float64, dur, timeout time.Duration, reqs []openloop.Request, c Criteria) StepRow {
	c = c.withDefaults()
	row := StepRow{Profile: profile, Step: int32(step), OfferedRPS: offered, DurationMS: ms(dur), TimeoutMS: ms(timeout), Sent: int64(len(reqs)),
		SLOP99MS: ms(c.SLOP99), MaxFailureRate: c.MaxFailureRate, MinAchievedRatio: c.MinAchievedRatio}
	lat := make([]time.Duration, 0, len(reqs))
	var first, last time.Duration
	var lag time.Duration
	for _, r := range reqs {
		lat = append(lat, r.Latency)
		lag = max(lag, r.SendLag)
		switch r.Outcome {
		case openloop.OK:
			if row.OK == 0 || r.Done < first {
				first = r.Done
			}
			last = max(last, r.Done)
			row.OK++
		case openloop.TimedOut:
			row.Timeouts++
		default:
			row.Errors++
		}
	}
	slices.Sort(lat)
	row.P50MS, row.P95MS, row.P99MS = ms(Quantile(lat, 0.50)), ms(Quantile(lat, 0.95)), ms(Quantile(lat, 0.99))
	if len(lat) > 0 {
		row.MaxMS = ms(lat[len(lat)-1])
	}
	row.MaxSendLagMS = ms(lag)
	row.AchievedRPS = achieved(row.OK, row.Sent, offered, last-first)
	row.Held, row.Reason = judge(row)
	return row
}

// achieved is the rate replies came back at: (ok − 1) intervals over the
// span from the first successful reply to the last, the span being at least
// the schedule's own, so a burst of late replies never reads as faster than
// offered.
func achieved(ok, sent int64, offered float64, span time.Duration) float64 {
	if ok == 0 {
		return 0
	}
	if ok == 1 || sent < 2 {
		return min(offered, float64(ok)*offered/float64(max(sent, 1)))
	}
	sched := float64(sent-1) / offered
	return float64(ok-1) / max(span.Seconds(), sched)
}

// judge applies the criteria recorded in the row itself, so the verdict can
// be recomputed from the row.
func judge(r StepRow) (bool, string) {
	var why []string
	if r.Sent == 0 {
		return false, "no requests"
	}
	if r.P99MS > r.SLOP99MS {
		why = append(why, fmt.Sprintf("p99 %.1f ms > slo %.1f ms", r.P99MS, r.SLOP99MS))
	}
	if f := float64(r.Timeouts+r.Errors) / float64(r.Sent); f > r.MaxFailureRate {
		why = append(why, fmt.Sprintf("failure rate %.4f > %.4f (%d timeouts, %d errors of %d)", f, r.MaxFailureRate, r.Timeouts, r.Errors, r.Sent))
	}
	if r.AchievedRPS < r.MinAchievedRatio*r.OfferedRPS {
		why = append(why, fmt.Sprintf("achieved %.1f/s < %.2f × offered %.1f/s", r.AchievedRPS, r.MinAchievedRatio, r.OfferedRPS))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// Knee is the highest offered rate of a held step with every lower step
// held (0 when the lowest failed); censored when every step held. Rows may
// be of one profile only and in any order.
func Knee(rows []StepRow) (knee float64, censored bool) {
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b StepRow) int { return cmpFloat(a.OfferedRPS, b.OfferedRPS) })
	for _, r := range sorted {
		if !r.Held {
			return knee, false
		}
		knee = r.OfferedRPS
	}
	return knee, len(sorted) > 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ProfileResult is a profile's outcome.
type ProfileResult struct {
	Profile  string
	Knee     float64
	Censored bool
	// At the expected load.
	TimeoutRate float64
	ErrorRate   float64
	P99MS       float64
	Measured    bool // the expected-load step ran
}

// Result summarises rows of any number of profiles, in the order profiles
// first appear.
func Result(rows []StepRow) []ProfileResult {
	var order []string
	by := map[string][]StepRow{}
	for _, r := range rows {
		if _, ok := by[r.Profile]; !ok {
			order = append(order, r.Profile)
		}
		by[r.Profile] = append(by[r.Profile], r)
	}
	out := make([]ProfileResult, 0, len(order))
	for _, p := range order {
		pr := ProfileResult{Profile: p}
		pr.Knee, pr.Censored = Knee(by[p])
		for _, r := range by[p] {
			if r.Expected && r.Sent > 0 {
				pr.Measured = true
				pr.TimeoutRate = float64(r.Timeouts) / float64(r.Sent)
				pr.ErrorRate = float64(r.Errors) / float64(r.Sent)
				pr.P99MS = r.P99MS
			}
		}
		out = append(out, pr)
	}
	return out
}

// Metric names; per profile with a ".<profile>" suffix, and without it the
// worst over profiles (lowest knee, highest rates and p99).
const (
	MetricKnee        = "stress.knee_rps"
	MetricTimeoutRate = "stress.timeout_rate"
	MetricErrorRate   = "stress.error_rate"
	MetricP99         = "stress.p99_ms"
	MetricCensored    = "stress.knee_censored"
)

// Metrics are the gate metrics of the rows (see the Metric constants).
func Metrics(rows []StepRow) map[string]float64 {
	m := map[string]float64{}
	first := true
	for _, pr := range Result(rows) {
		cens := 0.0
		if pr.Censored {
			cens = 1
		}
		m[MetricKnee+"."+pr.Profile] = pr.Knee
		m[MetricCensored+"."+pr.Profile] = cens
		if first || pr.Knee < m[MetricKnee] {
			m[MetricKnee], m[MetricCensored] = pr.Knee, cens
		}
		if pr.Measured {
			m[MetricTimeoutRate+"."+pr.Profile] = pr.TimeoutRate
			m[MetricErrorRate+"."+pr.Profile] = pr.ErrorRate
			m[MetricP99+"."+pr.Profile] = pr.P99MS
			m[MetricTimeoutRate] = max(m[MetricTimeoutRate], pr.TimeoutRate)
			m[MetricErrorRate] = max(m[MetricErrorRate], pr.ErrorRate)
			m[MetricP99] = max(m[MetricP99], pr.P99MS)
		}
		first = false
	}
	return m
}
