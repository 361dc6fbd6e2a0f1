package shadow

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Window metrics an AnalysisSpec can put conditions on. Each is computed
// from one window's Summary by WindowValue.
const (
	// MetricAgreementDelta is exact agreement (candidate vs incumbent) minus
	// the noise floor (incumbent vs itself): 0 means "as consistent as the
	// incumbent is with itself", negative means worse. For a deterministic
	// classifier the noise floor is 1 and this is plain agreement − 1.
	MetricAgreementDelta = "agreement_delta"
	// MetricSimilarityDelta is mean token-Jaccard similarity minus its noise floor.
	MetricSimilarityDelta = "similarity_delta"
	// MetricRougeLDelta is mean ROUGE-L F1 minus its noise floor.
	MetricRougeLDelta = "rouge_l_delta"
	// MetricExactAgreement is candidate vs incumbent exact agreement alone.
	MetricExactAgreement = "exact_agreement"
	// MetricErrorRate is the share of requests the candidate failed.
	MetricErrorRate = "error_rate"
	// MetricLatencyP99Ratio is candidate p99 / incumbent p99.
	MetricLatencyP99Ratio = "latency_p99_ratio"
	// MetricLatencyP95Ratio is candidate p95 / incumbent p95.
	MetricLatencyP95Ratio = "latency_p95_ratio"
	// MetricLatencyMannWhitneyP is the two-sided Mann-Whitney p-value of
	// the two latency samples: small means the distributions differ.
	MetricLatencyMannWhitneyP = "latency_mann_whitney_p"
)

// windowMetrics lists the metrics in the order errors and docs name them.
var windowMetrics = []string{
	MetricAgreementDelta, MetricSimilarityDelta, MetricRougeLDelta, MetricExactAgreement,
	MetricErrorRate, MetricLatencyP99Ratio, MetricLatencyP95Ratio, MetricLatencyMannWhitneyP,
}

// Phases of a Measurement (one window) and of a Run (the whole analysis),
// named as in Argo Rollouts so operators read them the same way.
const (
	PhaseRunning      = "Running"
	PhaseSuccessful   = "Successful"
	PhaseFailed       = "Failed"
	PhaseInconclusive = "Inconclusive"
)

// Condition compares a metric with a threshold: Op is one of >=, >, <=, <.
type Condition struct {
	Op    string  `json:"op" yaml:"op"`
	Value float64 `json:"value" yaml:"value"`
}

func (c Condition) holds(v float64) bool {
	switch c.Op {
	case ">=":
		return v >= c.Value
	case ">":
		return v > c.Value
	case "<=":
		return v <= c.Value
	case "<":
		return v < c.Value
	}
	return false
}

func (c Condition) String() string { return fmt.Sprintf("%s %g", c.Op, c.Value) }

// MetricSpec judges one window metric as Argo judges a measurement: the
// failure condition holding fails it; else the success condition holding
// passes it; a success condition that does not hold fails it when there is
// no failure condition and is inconclusive when there is one (the value sits
// between the two bands). With only a failure condition, not holding passes.
type MetricSpec struct {
	Name    string     `json:"name" yaml:"name"`
	Success *Condition `json:"success,omitempty" yaml:"success,omitempty"`
	Failure *Condition `json:"failure,omitempty" yaml:"failure,omitempty"`
}

// AnalysisSpec is the whole decision: what each window must show and how
// many windows may fail or be inconclusive (Argo Rollouts' AnalysisTemplate
// limits). A window whose sample is too small is inconclusive, never a pass.
type AnalysisSpec struct {
	Metrics []MetricSpec `json:"metrics" yaml:"metrics"`
	// Count is how many windows the phase runs at most.
	Count int `json:"count" yaml:"count"`
	// MinSamples is the fewest compared pairs (both replies ok) a window
	// needs; metrics with a noise floor also need as many noise pairs.
	MinSamples int `json:"minSamples" yaml:"minSamples"`
	// FailureLimit: the run fails when failed windows exceed it (0: the
	// first failed window fails the run, as in Argo).
	FailureLimit int `json:"failureLimit" yaml:"failureLimit"`
	// InconclusiveLimit: the run is inconclusive when inconclusive windows exceed it.
	InconclusiveLimit int `json:"inconclusiveLimit" yaml:"inconclusiveLimit"`
	// ConsecutiveSuccessLimit > 0 ends the run as successful after that many
	// successful windows in a row; if Count windows pass without such a
	// streak the run is inconclusive. 0: the run succeeds after Count
	// windows within the limits.
	ConsecutiveSuccessLimit int `json:"consecutiveSuccessLimit" yaml:"consecutiveSuccessLimit"`
}

// DefaultAnalysisSpec is a conservative starting point: agreement within 5
// points of the noise floor passes and 15 below fails, candidate errors
// above 5% fail, a p99 more than 1.5× the incumbent's fails; twelve
// windows of at least 30 pairs, one failure or two inconclusive allowed.
func DefaultAnalysisSpec() AnalysisSpec {
	return AnalysisSpec{
		Metrics: []MetricSpec{
			{Name: MetricAgreementDelta, Success: &Condition{">=", -0.05}, Failure: &Condition{"<", -0.15}},
			{Name: MetricErrorRate, Success: &Condition{"<=", 0.01}, Failure: &Condition{">", 0.05}},
			{Name: MetricLatencyP99Ratio, Failure: &Condition{">", 1.5}},
		},
		Count: 12, MinSamples: 30, FailureLimit: 1, InconclusiveLimit: 2,
	}
}

// Validate names every field that is wrong and how to fix it.
func (s AnalysisSpec) Validate() error {
	var errs []error
	if len(s.Metrics) == 0 {
		errs = append(errs, errors.New("analysis.metrics is empty; add at least one, e.g. {name: agreement_delta, success: {op: \">=\", value: -0.05}}"))
	}
	for i, m := range s.Metrics {
		if !isWindowMetric(m.Name) {
			errs = append(errs, fmt.Errorf("analysis.metrics[%d].name %q: unknown; use one of %s", i, m.Name, strings.Join(windowMetrics, ", ")))
		}
		if m.Success == nil && m.Failure == nil {
			errs = append(errs, fmt.Errorf("analysis.metrics[%d] (%s): give a success or a failure condition (or both)", i, m.Name))
		}
		for _, c := range []struct {
			what string
			c    *Condition
		}{{"success", m.Success}, {"failure", m.Failure}} {
			if c.c == nil {
				continue
			}
			switch c.c.Op {
			case ">=", ">", "<=", "<":
			default:
				errs = append(errs, fmt.Errorf("analysis.metrics[%d].%s.op %q: use >=, >, <= or <", i, c.what, c.c.Op))
			}
			if math.IsNaN(c.c.Value) || math.IsInf(c.c.Value, 0) {
				errs = append(errs, fmt.Errorf("analysis.metrics[%d].%s.value: must be a finite number", i, c.what))
			}
		}
	}
	if s.Count < 1 {
		errs = append(errs, fmt.Errorf("analysis.count %d: must be at least 1 window", s.Count))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"minSamples", s.MinSamples}, {"failureLimit", s.FailureLimit}, {"inconclusiveLimit", s.InconclusiveLimit}, {"consecutiveSuccessLimit", s.ConsecutiveSuccessLimit}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("analysis.%s %d: must not be negative", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func isWindowMetric(name string) bool {
	for _, m := range windowMetrics {
		if m == name {
			return true
		}
	}
	return false
}

// WindowValue computes metric name from a window's summary. ok is false
// when the window cannot say: no compared pairs, no noise floor measured,
// or no latencies on one side.
func WindowValue(name string, s Summary) (v float64, ok bool, why string) {
	noNoise := "no noise floor measured (incumbent repeat calls all failed or were not made)"
	switch name {
	case MetricAgreementDelta, MetricSimilarityDelta, MetricRougeLDelta:
		if s.Compared == 0 {
			return 0, false, "no compared pairs"
		}
		if s.NoiseCompared == 0 {
			return 0, false, noNoise
		}
		switch name {
		case MetricAgreementDelta:
			return s.ExactAgreement - s.NoiseFloorAgreement, true, ""
		case MetricSimilarityDelta:
			return s.MeanSimilarity - s.NoiseFloorSimilarity, true, ""
		default:
			return s.MeanRougeL - s.NoiseFloorRougeL, true, ""
		}
	case MetricExactAgreement:
		if s.Compared == 0 {
			return 0, false, "no compared pairs"
		}
		return s.ExactAgreement, true, ""
	case MetricErrorRate:
		if s.Requests == 0 {
			return 0, false, "no requests"
		}
		return float64(s.Errors) / float64(s.Requests), true, ""
	case MetricLatencyP99Ratio, MetricLatencyP95Ratio:
		inc, cand := s.IncumbentP99MS, s.CandidateP99MS
		if name == MetricLatencyP95Ratio {
			inc, cand = s.IncumbentP95MS, s.CandidateP95MS
		}
		if inc <= 0 || cand <= 0 {
			return 0, false, "no successful latencies on one side"
		}
		return cand / inc, true, ""
	case MetricLatencyMannWhitneyP:
		if s.IncumbentP50MS <= 0 || s.CandidateP50MS <= 0 {
			return 0, false, "no successful latencies on one side"
		}
		return s.LatencyMannWhitneyP, true, ""
	}
	return 0, false, fmt.Sprintf("unknown metric %q", name)
}

// MetricResult is one metric's verdict in one window.
type MetricResult struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Phase  string  `json:"phase"`
	Reason string  `json:"reason,omitempty"`
}

// Measurement is one window's verdict: Failed if any metric failed, else
// Inconclusive if any was, else Successful. It is small by design: it
// travels through workflow history once per window.
type Measurement struct {
	Window  int            `json:"window"`
	Phase   string         `json:"phase"`
	Reason  string         `json:"reason"`
	Samples int            `json:"samples"` // compared pairs
	Metrics []MetricResult `json:"metrics"`
}

// Measure judges one window's summary against spec's metrics.
func Measure(spec AnalysisSpec, window int, s Summary) Measurement {
	m := Measurement{Window: window, Samples: s.Compared}
	var failed, inconclusive []string
	for _, ms := range spec.Metrics {
		r := MetricResult{Name: ms.Name}
		v, ok, why := WindowValue(ms.Name, s)
		switch {
		case !ok:
			r.Phase, r.Reason = PhaseInconclusive, why
		case needsPairs(ms.Name) && s.Compared < spec.MinSamples:
			r.Value, r.Phase = v, PhaseInconclusive
			r.Reason = fmt.Sprintf("%d compared pairs < minSamples %d", s.Compared, spec.MinSamples)
		case needsPairs(ms.Name) && hasNoise(ms.Name) && s.NoiseCompared < spec.MinSamples:
			r.Value, r.Phase = v, PhaseInconclusive
			r.Reason = fmt.Sprintf("%d noise-floor pairs < minSamples %d", s.NoiseCompared, spec.MinSamples)
		case !needsPairs(ms.Name) && s.Requests < spec.MinSamples:
			r.Value, r.Phase = v, PhaseInconclusive
			r.Reason = fmt.Sprintf("%d requests < minSamples %d", s.Requests, spec.MinSamples)
		default:
			r.Value = v
			r.Phase, r.Reason = judge(ms, v)
		}
		switch r.Phase {
		case PhaseFailed:
			failed = append(failed, ms.Name+": "+r.Reason)
		case PhaseInconclusive:
			inconclusive = append(inconclusive, ms.Name+": "+r.Reason)
		}
		m.Metrics = append(m.Metrics, r)
	}
	switch {
	case len(failed) > 0:
		m.Phase, m.Reason = PhaseFailed, strings.Join(failed, "; ")
	case len(inconclusive) > 0:
		m.Phase, m.Reason = PhaseInconclusive, strings.Join(inconclusive, "; ")
	default:
		m.Phase, m.Reason = PhaseSuccessful, "every metric passed"
	}
	return m
}

func needsPairs(name string) bool {
	switch name {
	case MetricAgreementDelta, MetricSimilarityDelta, MetricRougeLDelta, MetricExactAgreement:
		return true
	}
	return false
}

func hasNoise(name string) bool { return name != MetricExactAgreement }

func judge(ms MetricSpec, v float64) (phase, reason string) {
	if ms.Failure != nil && ms.Failure.holds(v) {
		return PhaseFailed, fmt.Sprintf("%.4g %s (failure condition)", v, ms.Failure)
	}
	if ms.Success == nil {
		return PhaseSuccessful, fmt.Sprintf("%.4g, not %s", v, ms.Failure)
	}
	if ms.Success.holds(v) {
		return PhaseSuccessful, fmt.Sprintf("%.4g %s", v, ms.Success)
	}
	if ms.Failure == nil {
		return PhaseFailed, fmt.Sprintf("%.4g, not %s (success condition)", v, ms.Success)
	}
	return PhaseInconclusive, fmt.Sprintf("%.4g: neither %s nor %s", v, ms.Success, ms.Failure)
}

// RunState counts measurements and applies the limits. It is a plain value
// (carried across continue-as-new) and Apply is pure, so workflow code may
// call it.
type RunState struct {
	Phase                string `json:"phase"`
	Reason               string `json:"reason"`
	Measurements         int    `json:"measurements"`
	Successes            int    `json:"successes"`
	Failures             int    `json:"failures"`
	Inconclusives        int    `json:"inconclusives"`
	ConsecutiveSuccesses int    `json:"consecutive_successes"`
}

// Done reports whether the run has reached a final phase.
func (r RunState) Done() bool { return r.Phase != "" && r.Phase != PhaseRunning }

// Apply counts m and decides: Failed when failures exceed FailureLimit,
// Inconclusive when inconclusives exceed InconclusiveLimit, Successful on a
// streak of ConsecutiveSuccessLimit, and after Count windows Successful
// (or Inconclusive if a required streak never came). A finished run
// ignores further measurements.
func (r RunState) Apply(spec AnalysisSpec, m Measurement) RunState {
	if r.Done() {
		return r
	}
	r.Phase = PhaseRunning
	r.Measurements++
	switch m.Phase {
	case PhaseSuccessful:
		r.Successes++
		r.ConsecutiveSuccesses++
	case PhaseFailed:
		r.Failures++
		r.ConsecutiveSuccesses = 0
	default:
		r.Inconclusives++
		r.ConsecutiveSuccesses = 0
	}
	switch {
	case r.Failures > spec.FailureLimit:
		r.Phase = PhaseFailed
		r.Reason = fmt.Sprintf("%d failed windows > failureLimit %d (last, window %d: %s)", r.Failures, spec.FailureLimit, m.Window, m.Reason)
	case r.Inconclusives > spec.InconclusiveLimit:
		r.Phase = PhaseInconclusive
		r.Reason = fmt.Sprintf("%d inconclusive windows > inconclusiveLimit %d (last, window %d: %s)", r.Inconclusives, spec.InconclusiveLimit, m.Window, m.Reason)
	case spec.ConsecutiveSuccessLimit > 0 && r.ConsecutiveSuccesses >= spec.ConsecutiveSuccessLimit:
		r.Phase = PhaseSuccessful
		r.Reason = fmt.Sprintf("%d successful windows in a row (consecutiveSuccessLimit %d)", r.ConsecutiveSuccesses, spec.ConsecutiveSuccessLimit)
	case r.Measurements >= spec.Count && spec.ConsecutiveSuccessLimit > 0:
		r.Phase = PhaseInconclusive
		r.Reason = fmt.Sprintf("%d windows ran without %d successes in a row", r.Measurements, spec.ConsecutiveSuccessLimit)
	case r.Measurements >= spec.Count:
		r.Phase = PhaseSuccessful
		r.Reason = fmt.Sprintf("%d windows: %d successful, %d failed (limit %d), %d inconclusive (limit %d)",
			r.Measurements, r.Successes, r.Failures, spec.FailureLimit, r.Inconclusives, spec.InconclusiveLimit)
	default:
		r.Reason = fmt.Sprintf("window %d %s", m.Window, strings.ToLower(m.Phase))
	}
	return r
}
