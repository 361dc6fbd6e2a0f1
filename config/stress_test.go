package config

import (
	"strings"
	"testing"
)

func withStress(t *testing.T, block string) (*Release, error) {
	t.Helper()
	good := string(exampleBytes(t))
	y := strings.Replace(good, "suites:\n", "suites:\n  stress:\n"+block, 1)
	return Parse([]byte(y))
}

func TestStressConfig(t *testing.T) {
	r, err := withStress(t, "    profiles: [lan, wan]\n    start: 10\n    factor: 2\n    steps: 4\n    expected_rps: 25\n    slo_p99: 300ms\n    request_bytes: 4Ki\n")
	if err != nil {
		t.Fatal(err)
	}
	s := r.Suites.Stress
	got := s.RampRates()
	want := []float64{10, 20, 25, 40, 80}
	if len(got) != len(want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rates %v, want %v", got, want)
		}
	}
	if s.StepDuration == 0 || s.Timeout == 0 || s.MaxFailureRate != 0.01 || s.MinAchievedRatio != 0.9 || s.RequestBytes != 4096 {
		t.Errorf("defaults not applied: %+v", s)
	}
	// Absent, the stage is off.
	if r, err := Parse(exampleBytes(t)); err != nil || r.Suites.Stress != nil {
		t.Errorf("example without stress: %v %+v", err, r.Suites.Stress)
	}
}

func TestStressConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"    profiles: [lan, wna]\n    rates: [10]\n    expected_rps: 10\n    slo_p99: 1s\n", "suites.stress.profiles[1]: network profile \"wna\" is unknown"},
		{"    profiles: [lan]\n    expected_rps: 10\n    slo_p99: 1s\n", "suites.stress.rates: is missing"},
		{"    profiles: [lan]\n    rates: [10]\n    start: 5\n    expected_rps: 10\n    slo_p99: 1s\n", "give either rates or start/factor/steps"},
		{"    profiles: [lan]\n    rates: [10, -1]\n    expected_rps: 10\n    slo_p99: 1s\n", "suites.stress.rates[1]: is -1"},
		{"    profiles: [lan]\n    rates: [10]\n    slo_p99: 1s\n", "suites.stress.expected_rps: is missing"},
		{"    profiles: [lan]\n    rates: [10]\n    expected_rps: 10\n", "suites.stress.slo_p99: is missing"},
		{"    profiles: [lan]\n    rates: [10]\n    expected_rps: 10\n    slo_p99: 1s\n    connections: -2\n", "suites.stress.connections: is negative"},
		{"    profiles: [lan, lan]\n    rates: [10]\n    expected_rps: 10\n    slo_p99: 1s\n", "\"lan\" is listed twice"},
	} {
		_, err := withStress(t, tc.block)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.block, err, tc.want)
		}
	}
}
