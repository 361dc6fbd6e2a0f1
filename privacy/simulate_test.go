package privacy

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sandgate/sandgate/privacy/dp"
)

// population draws n labelled points in d dimensions; with noisy=false the
// label follows the first coordinate (learnable), otherwise it is a coin
// flip (only memorisable).
func population(rng *rand.Rand, n, d int, noisy bool) ([][]float64, []int) {
	X := make([][]float64, n)
	y := make([]int, n)
	for i := range X {
		X[i] = make([]float64, d)
		for j := range X[i] {
			X[i][j] = rng.NormFloat64()
		}
		if noisy {
			y[i] = rng.IntN(2)
		} else if X[i][0]+0.3*rng.NormFloat64() > 0 {
			y[i] = 1
		}
	}
	return X, y
}

// lossScores returns the attack score −loss (higher ⇒ member) of a binary
// model on every example, through the two-class logits (0, w·x+b).
func lossScores(t *testing.T, m dp.Model, X [][]float64, y []int) []float64 {
	t.Helper()
	logits := make([][]float64, len(X))
	for i, x := range X {
		logits[i] = []float64{0, m.Logit(x)}
	}
	st, err := StatsFromLogits(logits, y)
	if err != nil {
		t.Fatal(err)
	}
	s, err := AttackScores(st, StatLoss)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// audit runs the loss attack on members vs non-members and returns the
// ROC and the Bonferroni-corrected ε lower bound.
func audit(t *testing.T, m dp.Model, mX [][]float64, my []int, nX [][]float64, ny []int) (ROC, EpsilonBound) {
	t.Helper()
	ms, ns := lossScores(t, m, mX, my), lossScores(t, m, nX, ny)
	r, err := NewROC(ms, ns)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ScanEpsilon(ms, ns, ScanOptions{Alpha: 0.05, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

// A DP-trained model: the loss attack cannot separate members, and the
// audited lower bound stays below the accountant's ε, as it must.
func TestSimulatedDPModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 1))
	mX, my := population(rng, 1000, 5, false)
	nX, ny := population(rng, 1000, 5, false)
	m, rep, err := dp.Train(context.Background(), mX, my, dp.Options{
		ClipNorm: 1, NoiseMultiplier: 1.5, SampleRate: 0.05, Steps: 400,
		LearningRate: 0.5, Delta: 1e-5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i, x := range nX {
		if (m.Prob(x) >= 0.5) == (ny[i] == 1) {
			correct++
		}
	}
	if acc := float64(correct) / float64(len(nX)); acc < 0.85 {
		t.Fatalf("DP model accuracy on unseen data %.3f: a useless model would pass the audit trivially", acc)
	}
	r, b := audit(t, m, mX, my, nX, ny)
	t.Logf("DP model: theoretical ε = %.3f (order %d); AUC %.3f; ε_lb = %.3f at %.0f%% confidence over %d thresholds",
		rep.Epsilon, rep.Order, r.AUC(), b.Epsilon, 100*b.Confidence, b.ThresholdsScanned)
	if !(b.Epsilon < rep.Epsilon) {
		t.Errorf("ε_lb %g ≥ theoretical ε %g: the audit contradicts the guarantee", b.Epsilon, rep.Epsilon)
	}
	if b.Epsilon > 0.3 || math.Abs(r.AUC()-0.5) > 0.05 {
		t.Errorf("DP model leaks: AUC %g, ε_lb %g", r.AUC(), b.Epsilon)
	}
}

// An overfit model: plain gradient descent (negligible noise, full batch,
// no effective clipping) memorises random labels in high dimension, so
// members have far lower loss and the bound is clearly above 0.
func TestSimulatedOverfitModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 2))
	mX, my := population(rng, 300, 600, true)
	nX, ny := population(rng, 300, 600, true)
	m, _, err := dp.Train(context.Background(), mX, my, dp.Options{
		ClipNorm: 1e6, NoiseMultiplier: 1e-9, SampleRate: 1, Steps: 100,
		LearningRate: 1, Delta: 1e-5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, b := audit(t, m, mX, my, nX, ny)
	t.Logf("overfit model: AUC %.3f; ε_lb = %.3f at %.0f%% confidence over %d thresholds (FP %d/%d, FN %d/%d)",
		r.AUC(), b.Epsilon, 100*b.Confidence, b.ThresholdsScanned, b.FP, b.NonMembers, b.FN, b.Members)
	if !(b.Epsilon > 1) || r.AUC() < 0.8 {
		t.Errorf("overfit model: AUC %g, ε_lb %g, want AUC ≥ 0.8 and ε_lb > 1", r.AUC(), b.Epsilon)
	}
	p01, _ := r.TPRAtFPR(0.001)
	p1, _ := r.TPRAtFPR(0.01)
	t.Log(Explain(AuditFindings{AUC: r.AUC(), TPRAt01: p01.TPR, TPRAt1: p1.TPR, Epsilon: b, Attack: "loss threshold"}))
}
