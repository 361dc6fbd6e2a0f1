package privacy

import (
	"math"
	"testing"
)

// Test vectors from /work/shared/reference/metrics.md, checked to the
// precision printed there.

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g (±%g)", name, got, want, tol)
	}
}

func TestVectorTFPStatistics(t *testing.T) {
	logits := [][]float64{{1, 2, -3}, {-1, 1, 0}}
	labels := []int{1, 2}
	want := []MIAStats{
		{Confidence: 0.72747516, Loss: 0.31817543, Logit: 0.98185009, Hinge: 1},
		{Confidence: 0.24472847, Loss: 1.40760596, Logit: -1.12692802, Hinge: -1},
	}
	got, err := StatsFromLogits(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		near(t, "confidence", got[i].Confidence, w.Confidence, 5e-9)
		near(t, "loss", got[i].Loss, w.Loss, 5e-9)
		// φ is exact here (2 − ln(e + e⁻³) = 0.9818500721); the printed
		// value carries TFP's rounding in its last digit, 1.8e-8 away.
		near(t, "logit", got[i].Logit, w.Logit, 3e-8)
		near(t, "hinge", got[i].Hinge, w.Hinge, 1e-12)
	}
	// The same statistics from the softmax probabilities.
	probs := make([][]float64, len(logits))
	for i, z := range logits {
		lse := logSumExp(z, -1)
		for _, v := range z {
			probs[i] = append(probs[i], math.Exp(v-lse))
		}
	}
	fromP, err := StatsFromProbs(probs, labels)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		near(t, "confidence(probs)", fromP[i].Confidence, w.Confidence, 5e-9)
		near(t, "loss(probs)", fromP[i].Loss, w.Loss, 5e-9)
		near(t, "logit(probs)", fromP[i].Logit, w.Logit, 3e-8)
		near(t, "hinge(probs)", fromP[i].Hinge, w.Hinge, 1e-9)
	}
}

func TestVectorTFPAudit(t *testing.T) {
	members := make([]float64, 500)
	nonMembers := make([]float64, 500)
	for i := range members {
		members[i] = 1
	}
	// Threshold 0.5: every member above, every non-member below.
	fp, fn := 0, 0
	for _, v := range nonMembers {
		if v >= 0.5 {
			fp++
		}
	}
	for _, v := range members {
		if v < 0.5 {
			fn++
		}
	}
	b, err := NasrEpsilon(fp, len(nonMembers), fn, len(members), 0.01, 0)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "TFP audit ε", b.Epsilon, 4.541915810224092, 1e-12)
}

func TestVectorNasr(t *testing.T) {
	b, err := NasrEpsilon(0, 500, 0, 500, 0.05, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "FPR_ub", b.FPRUpper, 0.0073506, 5e-8)
	near(t, "ε_lb(0/500, 0/500)", b.Epsilon, 4.90558, 5e-6)
	if b.Confidence != 0.95 || b.ThresholdsScanned != 1 || b.Correction != CorrectionNone || b.Delta != 1e-5 {
		t.Errorf("bound metadata %+v", b)
	}
	b, err = NasrEpsilon(10, 1000, 100, 1000, 0.05, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "ε_lb(10/1000, 100/1000)", b.Epsilon, 3.87196, 5e-6)
}

func TestVectorSteinke(t *testing.T) {
	eps, err := OneRunEpsilon(1000, 100, 100, 0, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "one-run ε(1000,100,100,0)", eps, 3.4930, 5e-5)
	eps, err = OneRunEpsilon(1000, 1000, 1000, 1e-5, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "one-run ε(1000,1000,1000,1e-5)", eps, 5.7823, 5e-5)
}
