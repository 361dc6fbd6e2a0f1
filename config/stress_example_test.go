package config

import "testing"

func TestStressExampleParses(t *testing.T) {
	r, _, err := Load("../examples/release-stress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Suites.Stress; s == nil || len(s.RampRates()) != 5 || s.Connections != 4 {
		t.Errorf("stress suite %+v", r.Suites.Stress)
	}
}
