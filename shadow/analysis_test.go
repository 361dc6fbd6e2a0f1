package shadow

import (
	"strings"
	"testing"
)

func goodWindow() Summary {
	return Summary{
		Requests: 100, Errors: 0, Compared: 100, NoiseCompared: 100,
		ExactAgreement: 0.80, NoiseFloorAgreement: 0.82,
		MeanSimilarity: 0.9, NoiseFloorSimilarity: 0.91,
		IncumbentP50MS: 10, IncumbentP95MS: 18, IncumbentP99MS: 20,
		CandidateP50MS: 11, CandidateP95MS: 19, CandidateP99MS: 22,
		LatencyMannWhitneyP: 0.4,
	}
}

func TestMeasure(t *testing.T) {
	spec := DefaultAnalysisSpec()
	with := func(f func(*Summary)) Summary { s := goodWindow(); f(&s); return s }
	cases := []struct {
		name   string
		spec   AnalysisSpec
		sum    Summary
		phase  string
		reason string // substring
	}{
		{"within the noise floor passes", spec, goodWindow(), PhaseSuccessful, "every metric"},
		// 0.60 − 0.82 = −0.22 < −0.15: clearly worse than the incumbent is with itself.
		{"agreement far below the noise floor fails", spec, with(func(s *Summary) { s.ExactAgreement = 0.60 }), PhaseFailed, "agreement_delta"},
		// −0.10 sits between the bands.
		{"agreement between bands is inconclusive", spec, with(func(s *Summary) { s.ExactAgreement = 0.72 }), PhaseInconclusive, "neither"},
		// Low agreement is fine when the incumbent disagrees with itself as much.
		{"low agreement with a low noise floor passes", spec, with(func(s *Summary) { s.ExactAgreement, s.NoiseFloorAgreement = 0.30, 0.31 }), PhaseSuccessful, ""},
		{"error rate above the failure bound fails", spec, with(func(s *Summary) { s.Errors = 6 }), PhaseFailed, "error_rate"},
		{"slow p99 fails", spec, with(func(s *Summary) { s.CandidateP99MS = 40 }), PhaseFailed, "latency_p99_ratio"},
		{"too few pairs is inconclusive, not a pass", spec, with(func(s *Summary) { s.Requests, s.Compared, s.NoiseCompared = 10, 10, 10 }), PhaseInconclusive, "minSamples"},
		{"no noise floor is inconclusive", spec, with(func(s *Summary) { s.NoiseCompared = 0 }), PhaseInconclusive, "noise floor"},
		{"failure beats inconclusive", spec, with(func(s *Summary) { s.NoiseCompared = 0; s.Errors = 50 }), PhaseFailed, "error_rate"},
		{"success-only condition not met fails", AnalysisSpec{Metrics: []MetricSpec{{Name: MetricLatencyMannWhitneyP, Success: &Condition{">=", 0.05}}}, Count: 1},
			with(func(s *Summary) { s.LatencyMannWhitneyP = 0.001 }), PhaseFailed, "success condition"},
		{"classifier agreement", AnalysisSpec{Metrics: []MetricSpec{{Name: MetricExactAgreement, Success: &Condition{">=", 0.95}, Failure: &Condition{"<", 0.9}}}, Count: 1, MinSamples: 50},
			with(func(s *Summary) { s.ExactAgreement, s.NoiseCompared = 0.97, 0 }), PhaseSuccessful, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := Measure(c.spec, 3, c.sum)
			if m.Phase != c.phase || !strings.Contains(m.Reason, c.reason) || m.Window != 3 {
				t.Fatalf("got %s %q (window %d), want %s containing %q; metrics %+v", m.Phase, m.Reason, m.Window, c.phase, c.reason, m.Metrics)
			}
		})
	}
}

func TestWindowValue(t *testing.T) {
	s := goodWindow()
	for name, want := range map[string]float64{
		MetricAgreementDelta: 0.80 - 0.82, MetricSimilarityDelta: 0.9 - 0.91, MetricExactAgreement: 0.8,
		MetricErrorRate: 0, MetricLatencyP99Ratio: 22.0 / 20, MetricLatencyP95Ratio: 19.0 / 18, MetricLatencyMannWhitneyP: 0.4,
	} {
		v, ok, why := WindowValue(name, s)
		if !ok || !near(v, want) {
			t.Errorf("%s = %v (ok %v %s), want %v", name, v, ok, why, want)
		}
	}
	if _, ok, _ := WindowValue(MetricLatencyP99Ratio, Summary{Requests: 5, Errors: 5}); ok {
		t.Error("latency ratio with no candidate latencies must not be ok")
	}
}

func TestRunStateLimits(t *testing.T) {
	S, F, I := PhaseSuccessful, PhaseFailed, PhaseInconclusive
	cases := []struct {
		name    string
		spec    AnalysisSpec
		windows []string
		phase   string
		after   int // measurements counted when it ended
		reason  string
	}{
		{"all pass for count", AnalysisSpec{Count: 3}, []string{S, S, S}, S, 3, "3 windows"},
		{"still running before count", AnalysisSpec{Count: 5}, []string{S, S}, PhaseRunning, 2, "window"},
		{"first failure fails with limit 0", AnalysisSpec{Count: 5}, []string{S, F, S}, F, 2, "failureLimit 0"},
		{"failure limit tolerates one", AnalysisSpec{Count: 4, FailureLimit: 1}, []string{F, S, S, S}, S, 4, ""},
		{"failure limit exceeded", AnalysisSpec{Count: 6, FailureLimit: 1}, []string{F, S, F, S}, F, 3, "2 failed windows > failureLimit 1"},
		{"inconclusive limit exceeded", AnalysisSpec{Count: 6, InconclusiveLimit: 1}, []string{I, S, I}, I, 3, "inconclusiveLimit 1"},
		{"consecutive successes end early", AnalysisSpec{Count: 10, ConsecutiveSuccessLimit: 3, InconclusiveLimit: 5}, []string{S, I, S, S, S, S}, S, 5, "3 successful windows in a row"},
		{"streak never reached", AnalysisSpec{Count: 4, ConsecutiveSuccessLimit: 3, InconclusiveLimit: 5}, []string{S, S, I, S}, I, 4, "without 3 successes"},
		{"failure resets the streak", AnalysisSpec{Count: 10, ConsecutiveSuccessLimit: 2, FailureLimit: 3}, []string{S, F, S, S}, S, 4, "2 successful"},
		{"finished run ignores more windows", AnalysisSpec{Count: 1}, []string{F, S, S}, F, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r RunState
			for i, p := range c.windows {
				r = r.Apply(c.spec, Measurement{Window: i, Phase: p, Reason: "r"})
			}
			if r.Phase != c.phase || r.Measurements != c.after || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("got %s after %d (%q), want %s after %d containing %q", r.Phase, r.Measurements, r.Reason, c.phase, c.after, c.reason)
			}
		})
	}
}

func TestAnalysisSpecValidate(t *testing.T) {
	if err := DefaultAnalysisSpec().Validate(); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	bad := AnalysisSpec{
		Metrics: []MetricSpec{{Name: "agreement"}, {Name: MetricErrorRate, Failure: &Condition{"=>", 1}}},
		Count:   0, FailureLimit: -1,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad spec accepted")
	}
	for _, want := range []string{`metrics[0].name "agreement": unknown`, "metrics[0] (agreement): give a success or a failure", `metrics[1].failure.op "=>"`, "analysis.count 0", "analysis.failureLimit -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
