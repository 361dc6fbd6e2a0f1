package binom

import (
	"math"
	"testing"
)

func TestBounds(t *testing.T) {
	// The Nasr vector of reference/metrics.md: 0 of 500 at a = 0.025.
	if got := Upper(0, 500, 0.025); math.Abs(got-0.0073506) > 5e-8 {
		t.Errorf("Upper(0, 500) = %v, want 0.0073506", got)
	}
	if Upper(9, 9, 0.05) != 1 || Lower(0, 9, 0.05) != 0 {
		t.Error("closed-form ends")
	}
	if got, want := Lower(10, 10, 0.05), math.Pow(0.05, 0.1); math.Abs(got-want) > 1e-15 {
		t.Errorf("Lower(10, 10) = %v, want %v", got, want)
	}
	lo, hi := Lower(7, 40, 0.025), Upper(7, 40, 0.025)
	if !(lo < 7.0/40 && 7.0/40 < hi) {
		t.Errorf("[%v, %v] does not contain 7/40", lo, hi)
	}
}
