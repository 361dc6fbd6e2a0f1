package robustness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func binary(p1 float64) []float64 { return []float64{1 - p1, p1} }

// classifierFunc is an in-package toy model that records its batch sizes.
type classifierFunc struct {
	mu      sync.Mutex
	f       func(x []float64) []float64
	batches []int
}

func (c *classifierFunc) Predict(ctx context.Context, batch [][]float64) ([][]float64, error) {
	c.mu.Lock()
	c.batches = append(c.batches, len(batch))
	c.mu.Unlock()
	out := make([][]float64, len(batch))
	for i, x := range batch {
		out[i] = c.f(x)
	}
	return out, nil
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// meanModel: class 1 iff the mean pixel exceeds t (a linear classifier over
// pixel sums).
func meanModel(k, t float64) *classifierFunc {
	return &classifierFunc{f: func(x []float64) []float64 { return binary(sigmoid(k * (mean(x) - t))) }}
}

// maxModel: class 1 iff some pixel exceeds 0.9 — one pixel flips it.
func maxModel() *classifierFunc {
	return &classifierFunc{f: func(x []float64) []float64 {
		m := 0.0
		for _, v := range x {
			m = max(m, v)
		}
		return binary(sigmoid(30 * (m - 0.9)))
	}}
}

func fill(d int, v float64) []float64 {
	x := make([]float64, d)
	for i := range x {
		x[i] = v
	}
	return x
}

func TestTallyTextAttackVector(t *testing.T) {
	s := Tally("textattack", 541, 328, 131)
	if math.Round(s.SuccessRate*10000)/100 != 62.26 {
		t.Errorf("success rate = %v, want 62.26%%", s.SuccessRate)
	}
	if s.AccuracyUnderAttack != 0.328 || s.Total != 1000 {
		t.Errorf("accuracy under attack = %v of %d, want 0.328 of 1000", s.AccuracyUnderAttack, s.Total)
	}
	if z := Tally("x", 0, 0, 5); z.SuccessRate != 0 || z.AccuracyUnderAttack != 0 {
		t.Errorf("all skipped: %+v", z)
	}
}

func TestClopperPearsonUpper(t *testing.T) {
	if got := ClopperPearsonUpper(0, 500, 0.025); math.Abs(got-0.0073506) > 5e-8 {
		t.Errorf("ub(0,500) = %v, want 0.0073506", got)
	}
	if got := ClopperPearsonUpper(9, 9, 0.05); got != 1 {
		t.Errorf("ub(n,n) = %v, want 1", got)
	}
	ub := ClopperPearsonUpper(12, 300, 0.05)
	if p := (distuv.Beta{Alpha: 13, Beta: 288}).CDF(ub); math.Abs(p-0.95) > 1e-9 {
		t.Errorf("ub(12,300) = %v has Beta CDF %v, want 0.95", ub, p)
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(10)
	clf := b.Classifier(meanModel(1, 0.5))
	ctx := context.Background()
	if _, err := clf.Predict(ctx, make([][]float64, 6)); err != nil {
		t.Fatal(err)
	}
	_, err := clf.Predict(ctx, make([][]float64, 5))
	var be *BudgetError
	if !errors.Is(err, ErrBudgetExhausted) || !errors.As(err, &be) || be.Used != 6 || be.Requested != 5 || be.Budget != 10 {
		t.Fatalf("err = %v, want a BudgetError 6 used, 5 requested", err)
	}
	if _, err := clf.Predict(ctx, make([][]float64, 4)); err != nil || b.Used() != 10 {
		t.Errorf("last 4 queries: err %v, used %d", err, b.Used())
	}
}

func TestNoiseFlipRate(t *testing.T) {
	const d = 16
	brittle := [][]float64{fill(d, 0.505), fill(d, 0.51), fill(d, 0.495)}
	robust := [][]float64{fill(d, 0.1), fill(d, 0.15), fill(d, 0.9)}
	cfg := NoiseConfig{Epsilons: []float64{0.01, 0.2}, Draws: 50, Seed: 3}
	ctx := context.Background()

	m := meanModel(50, 0.5)
	rb, err := NoiseFlipRate(ctx, m, brittle, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	small, big := rb.Levels[0], rb.Levels[1]
	if small.Flips != 0 || big.Flips < 30 || big.Rate != float64(big.Flips)/150 {
		t.Errorf("brittle: ε=0.01 %d flips, ε=0.2 %d flips (rate %v), want 0 and many", small.Flips, big.Flips, big.Rate)
	}
	if big.Upper <= big.Rate || big.Attack.Summary.Succeeded == 0 || big.Attack.Examples[0].Adversarial == nil {
		t.Errorf("brittle ε=0.2: upper %v, summary %+v", big.Upper, big.Attack.Summary)
	}
	for _, x := range big.Attack.Examples {
		for _, v := range x.Adversarial {
			if v < 0 || v > 1 {
				t.Fatalf("perturbed value %v outside the clip range", v)
			}
		}
	}
	// Per level: 3 clean queries + 3 × 50 noisy ones, K copies per call.
	if rb.Queries != 2*(3+150) {
		t.Errorf("queries = %d, want %d", rb.Queries, 2*(3+150))
	}
	for _, n := range m.batches[1:] {
		if n != 50 && n != 3 {
			t.Errorf("batch of %d, want K = 50 copies per call", n)
		}
	}

	// A robust model: no flip, the upper bound is 1 − a^{1/(N·K)}.
	// Label 1 for the third input is right (mean 0.9), label 1 for the
	// first is wrong: it is skipped and not in the denominator.
	rr, err := NoiseFlipRate(ctx, meanModel(50, 0.5), robust, []int{1, 0, 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rr.Levels[1]
	if l.Flips != 0 || l.Inputs != 2 || l.Skipped != 1 || math.Abs(l.Upper-(1-math.Pow(0.05, 1.0/100))) > 1e-15 {
		t.Errorf("robust: %+v", l)
	}
	if ex := l.Attack.Examples[0]; ex.Outcome != Skipped || ex.Queries != 1 {
		t.Errorf("misclassified input: %+v, want skipped after one query", ex)
	}

	again, _ := NoiseFlipRate(ctx, meanModel(50, 0.5), brittle, nil, cfg)
	// Sprint, not DeepEqual: failed examples carry a NaN perturbation.
	if fmt.Sprint(again.Levels) != fmt.Sprint(rb.Levels) {
		t.Error("same seed, different results")
	}
	cfg.Gaussian = true
	g, _ := NoiseFlipRate(ctx, meanModel(50, 0.5), brittle, nil, cfg)
	if g.Levels[1].Distribution != "gaussian" || g.Levels[1].Flips == big.Flips && reflect.DeepEqual(g.Levels[1].Attack, big.Attack) {
		t.Errorf("gaussian option ignored: %+v", g.Levels[1])
	}
	if _, err := NoiseFlipRate(ctx, m, brittle, nil, NoiseConfig{}); err == nil {
		t.Error("no epsilons: no error")
	}
}

func TestPixelAttack(t *testing.T) {
	const h, w = 8, 8
	imgs := [][]float64{fill(h*w, 0.2), fill(h*w, 0.1)}
	cfg := PixelConfig{Height: h, Width: w, Population: 20, Iterations: 10, Seed: 1}
	ctx := context.Background()

	brittle := maxModel()
	res, err := PixelAttack(ctx, brittle, imgs, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Succeeded != 2 || res.Summary.SuccessRate != 1 || res.Summary.AccuracyUnderAttack != 0 {
		t.Fatalf("brittle summary = %+v", res.Summary)
	}
	for _, e := range res.Examples {
		changed := 0
		for j := range e.Adversarial {
			if e.Adversarial[j] != imgs[e.Index][j] {
				changed++
			}
		}
		if changed != 1 || e.AdversarialPred != 1 || e.Queries%20 != 1 {
			t.Errorf("example %d: %d pixels changed, pred %d, %d queries", e.Index, changed, e.AdversarialPred, e.Queries)
		}
	}
	for _, n := range brittle.batches[1:] {
		if n != 20 {
			t.Errorf("population evaluated in a batch of %d, want 20", n)
		}
	}

	// One pixel moves the mean by ≤ 0.8/64: a mean classifier holds.
	robust := meanModel(50, 0.5)
	res, err = PixelAttack(ctx, robust, imgs, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Failed != 2 || res.Summary.Queries != 2+2*20*11 {
		t.Errorf("robust summary = %+v, want 2 failed, %d queries", res.Summary, 2+2*20*11)
	}

	cfg.QueryBudget = 50
	res, err = PixelAttack(ctx, meanModel(50, 0.5), imgs[:1], nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Examples[0]; !e.BudgetExhausted || e.Outcome != Failed || e.Queries != 41 {
		t.Errorf("budgeted example = %+v, want failed after 1+40 queries", e)
	}
	if _, err := PixelAttack(ctx, robust, [][]float64{fill(10, 0)}, nil, PixelConfig{Height: h, Width: w}); err == nil {
		t.Error("wrong image size: no error")
	}
}

// linear is p1 = sigmoid(w·x + b); the L2 distance to its boundary is
// |w·x + b| / ‖w‖.
func linear(w []float64, b float64) *classifierFunc {
	return &classifierFunc{f: func(x []float64) []float64 {
		z := b
		for i := range x {
			z += w[i] * x[i]
		}
		return binary(sigmoid(z))
	}}
}

func TestHopSkipJump(t *testing.T) {
	const d = 16
	w := make([]float64, d)
	x := make([]float64, d)
	for i := range w {
		w[i], x[i] = 1, 0.7
		if i >= d/2 {
			w[i], x[i] = -1, 0.3
		}
	}
	// margin 3.2, ‖w‖ = 4: the closest boundary point is 0.8 away.
	opt := 0.8 / math.Sqrt(8*0.49+8*0.09)
	ctx := context.Background()
	cfg := HSJConfig{MaxIter: 15, InitEval: 50, Seed: 2}
	res, err := HopSkipJump(ctx, linear(w, 0), [][]float64{x}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Examples[0]
	t.Logf("HopSkipJump: perturbation %.5f, optimum %.5f, %d queries", e.Perturbation, opt, e.Queries)
	if e.Outcome != Succeeded || e.Perturbation < opt*(1-1e-9) || e.Perturbation > 1.05*opt {
		t.Errorf("perturbation %v (outcome %s), want within [1, 1.05]× the optimum %v", e.Perturbation, e.Outcome, opt)
	}
	if e.AdversarialPred != 0 || res.Summary.MedianPerturbation != e.Perturbation {
		t.Errorf("example %+v, summary %+v", e, res.Summary)
	}

	// The same attack with a norm bound below the optimum cannot succeed.
	cfg.MaxPerturbation = opt / 2
	res, _ = HopSkipJump(ctx, linear(w, 0), [][]float64{x}, nil, cfg)
	if e := res.Examples[0]; e.Outcome != Failed || math.IsNaN(e.Perturbation) || e.Adversarial != nil {
		t.Errorf("bounded attack = %+v, want failed with its best perturbation", e)
	}

	// A constant model has no adversarial: InitSize draws, then failed.
	constant := &classifierFunc{f: func([]float64) []float64 { return binary(0) }}
	res, _ = HopSkipJump(ctx, constant, [][]float64{x}, nil, HSJConfig{InitSize: 7})
	if res.Summary.Failed != 1 || res.Summary.Queries != 8 {
		t.Errorf("constant model: %+v, want failed after 1+7 queries", res.Summary)
	}

	// A total budget stops the attack with a typed error and is respected.
	b := NewBudget(300)
	res, err = HopSkipJump(ctx, b.Classifier(linear(w, 0)), [][]float64{x, x}, nil, HSJConfig{Seed: 2})
	if !errors.Is(err, ErrBudgetExhausted) || b.Used() > 300 || res == nil || res.Summary.Queries != b.Used() {
		t.Errorf("budget 300: err %v, used %d, result %+v", err, b.Used(), res)
	}
}

func TestTabularAttack(t *testing.T) {
	// Columns: income, age, sex. The model leans on sex, which is
	// immutable; only income can flip it.
	model := &classifierFunc{f: func(x []float64) []float64 {
		return binary(sigmoid((x[0]-50000)/2000 + 10*x[2] - 5 + 0.01*(x[1]-40)))
	}}
	rows := [][]float64{{55000, 40, 0}, {52000, 30, 0}, {20000, 50, 0}}
	feats := func(step float64) []Feature {
		return []Feature{
			{Name: "income", Lo: 0, Hi: 100000, MaxRelStep: step},
			{Name: "age", Lo: 18, Hi: 90, MaxRelStep: 0.05},
			{Name: "sex", Lo: 0, Hi: 1, MaxRelStep: 1, Immutable: true},
		}
	}
	ctx := context.Background()
	res, err := TabularAttack(ctx, model, rows, nil, TabularConfig{Features: feats(0.1), Iterations: 5, Candidates: 8, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Rows 0 and 1 are within 10,000 of the boundary; row 2 is not.
	got := []Outcome{res.Examples[0].Outcome, res.Examples[1].Outcome, res.Examples[2].Outcome}
	if !reflect.DeepEqual(got, []Outcome{Succeeded, Succeeded, Failed}) {
		t.Fatalf("outcomes = %v", got)
	}
	for _, e := range res.Examples[:2] {
		a, x := e.Adversarial, rows[e.Index]
		if a[2] != x[2] || math.Abs(a[0]-x[0]) > 10000 || math.Abs(a[1]-x[1]) > 0.05*72+1e-9 {
			t.Errorf("row %d: %v → %v breaks the feature bounds", e.Index, x, a)
		}
	}
	if res.Summary.SuccessRate != 2.0/3 {
		t.Errorf("flip rate = %v, want 2/3", res.Summary.SuccessRate)
	}
	// With a 1% step (≤ 1,000 of income) nothing flips.
	res, err = TabularAttack(ctx, model, rows, nil, TabularConfig{Features: feats(0.01), Iterations: 5, Candidates: 8, Seed: 4})
	if err != nil || res.Summary.Succeeded != 0 || res.Summary.Queries != 3+3*5*8 {
		t.Errorf("small steps: err %v, summary %+v", err, res.Summary)
	}
	if _, err := TabularAttack(ctx, model, [][]float64{{200000, 40, 0}}, nil, TabularConfig{Features: feats(0.1)}); err == nil {
		t.Error("row outside its range: no error")
	}
}

type regressorFunc func(x []float64) float64

func (r regressorFunc) Predict(_ context.Context, batch [][]float64) ([]float64, error) {
	out := make([]float64, len(batch))
	for i, x := range batch {
		out[i] = r(x)
	}
	return out, nil
}

func TestRegressorNoise(t *testing.T) {
	sum := regressorFunc(func(x []float64) float64 { return x[0] + x[1] + x[2] + x[3] })
	inputs := [][]float64{{1, 2, 3, 4}, {0, 0, 0, 0}}
	b := NewBudget(0)
	res, err := RegressorNoise(context.Background(), b.Regressor(sum), inputs, RegressorConfig{Epsilon: 0.1, Draws: 200, Tolerance: 0.2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxAbsChange > 0.4 || res.MaxAbsChange < 0.2 || res.MeanAbsChange <= 0 || res.ShareAboveTolerance <= 0 || res.ShareAboveTolerance >= 0.5 {
		t.Errorf("result = %+v", res)
	}
	if res.Queries != 402 || b.Used() != 402 || res.Trials != 400 {
		t.Errorf("queries %d, budget used %d, trials %d", res.Queries, b.Used(), res.Trials)
	}
	b = NewBudget(250)
	if _, err := RegressorNoise(context.Background(), b.Regressor(sum), inputs, RegressorConfig{Epsilon: 0.1, Draws: 200}); !errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("budget 250: err = %v", err)
	}
}

func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := PixelAttack(ctx, maxModel(), [][]float64{fill(4, 0.2)}, nil, PixelConfig{Height: 2, Width: 2, Population: 4})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("pixel: err = %v, want context.Canceled", err)
	}
	_, err = NoiseFlipRate(ctx, maxModel(), [][]float64{fill(4, 0.2)}, nil, NoiseConfig{Epsilons: []float64{0.1}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("noise: err = %v, want context.Canceled", err)
	}
}
