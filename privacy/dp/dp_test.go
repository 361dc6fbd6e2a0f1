package dp

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestRDPNoSubsamplingIsGaussian(t *testing.T) {
	for _, sigma := range []float64{0.5, 1, 1.1, 4} {
		r, err := RDP(1, sigma, DefaultOrders())
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range DefaultOrders() {
			if want := float64(a) / (2 * sigma * sigma); r[i] != want {
				t.Fatalf("σ=%g α=%d: RDP %g, want α/(2σ²) = %g", sigma, a, r[i], want)
			}
		}
	}
	// The subsampled binomial sum must approach the closed form as q → 1.
	r, _ := RDP(1-1e-12, 1.5, []int{2, 8, 32})
	for i, a := range []int{2, 8, 32} {
		if want := float64(a) / (2 * 1.5 * 1.5); math.Abs(r[i]-want) > 1e-9*want+1e-9 {
			t.Errorf("q→1, α=%d: %g, want %g", a, r[i], want)
		}
	}
}

func TestRDPOrder2ClosedForm(t *testing.T) {
	// For α = 2 the binomial sum is (1−q)² + 2q(1−q) + q²·e^{1/σ²}
	// = 1 + q²(e^{1/σ²} − 1).
	q, sigma := 0.01, 1.0
	r, err := RDP(q, sigma, []int{2})
	if err != nil {
		t.Fatal(err)
	}
	want := math.Log1p(q * q * math.Expm1(1/(sigma*sigma)))
	if math.Abs(r[0]-want) > 1e-15 {
		t.Errorf("RDP(α=2) = %.17g, want %.17g", r[0], want)
	}
}

// TensorFlow Privacy, tutorials/README.md ("Expected Output" of
// mnist_dpsgd_tutorial.py, default row of its table): noise multiplier
// 1.12, batch 256 of 60,000 examples, 234 steps per epoch, δ = 1e-5 →
// ε = 1.00 after 1 epoch, 1.04 after 2, 2.92 after 60. Those figures were
// produced with the standard conversion (Mironov 2017); our integer orders
// reproduce all three to the printed two decimals.
func TestEpsilonTFPrivacyMNIST(t *testing.T) {
	q := 256.0 / 60000
	for _, c := range []struct {
		epochs int
		want   float64
	}{{1, 1.00}, {2, 1.04}, {60, 2.92}} {
		eps, order, err := EpsilonWith(q, 1.12, 234*c.epochs, 1e-5, DefaultOrders(), Mironov2017)
		if err != nil {
			t.Fatal(err)
		}
		if math.Round(eps*100)/100 != c.want {
			t.Errorf("%d epochs: ε = %.4f (order %d), TF Privacy prints %.2f", c.epochs, eps, order, c.want)
		}
	}
	// The improved conversion is tighter for the same run.
	eps, _, _ := Epsilon(q, 1.12, 234*60, 1e-5)
	if !(eps < 2.92 && eps > 2.3) {
		t.Errorf("balle2020 ε = %.4f, want below the standard 2.92", eps)
	}
}

// Opacus docs, opacus.scripts.compute_dp_sgd_privacy: sample rate 1%,
// noise multiplier 1.0, 300 steps, δ = 1e-5, alphas [2, 5, 10, 20, 100]
// → "epsilon = 2.39 … The optimal alpha is 5.0" (current Opacus uses the
// improved conversion).
func TestEpsilonOpacusExample(t *testing.T) {
	eps, order, err := EpsilonWith(0.01, 1.0, 300, 1e-5, []int{2, 5, 10, 20, 100}, Balle2020)
	if err != nil {
		t.Fatal(err)
	}
	if math.Round(eps*100)/100 != 2.39 || order != 5 {
		t.Errorf("ε = %.4f at α = %d, Opacus prints 2.39 at α = 5", eps, order)
	}
}

func TestEpsilonMonotone(t *testing.T) {
	prev := 0.0
	for _, steps := range []int{1, 10, 100, 1000} {
		eps, _, err := Epsilon(0.02, 1.0, steps, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if eps <= prev {
			t.Errorf("ε(%d steps) = %g not above ε of fewer steps %g", steps, eps, prev)
		}
		prev = eps
	}
	lo, _, _ := Epsilon(0.02, 2.0, 1000, 1e-5)
	if lo >= prev {
		t.Errorf("more noise gave ε %g ≥ %g", lo, prev)
	}
}

func TestAccountantRejects(t *testing.T) {
	for _, c := range []struct {
		q, sigma float64
		steps    int
		delta    float64
		field    string
	}{
		{-0.1, 1, 10, 1e-5, "sample rate"},
		{1.5, 1, 10, 1e-5, "sample rate"},
		{0.1, 0, 10, 1e-5, "sigma"},
		{0.1, math.NaN(), 10, 1e-5, "sigma"},
		{0.1, 1, -1, 1e-5, "steps"},
		{0.1, 1, 10, 0, "delta"},
		{0.1, 1, 10, 1, "delta"},
	} {
		_, _, err := Epsilon(c.q, c.sigma, c.steps, c.delta)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Epsilon(%g, %g, %d, %g) error %v, want one naming %s", c.q, c.sigma, c.steps, c.delta, err, c.field)
		}
	}
	if _, err := RDP(0.1, 1, []int{1}); err == nil {
		t.Error("order 1 accepted")
	}
	if _, _, err := EpsilonFromRDP([]int{2}, []float64{1}, 1e-5, "zcdp"); err == nil {
		t.Error("unknown conversion accepted")
	}
}

// separable draws n points in d dimensions with label 1 when the first
// coordinate (plus noise) is positive.
func separable(seed uint64, n, d int) ([][]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	X := make([][]float64, n)
	y := make([]int, n)
	for i := range X {
		X[i] = make([]float64, d)
		for j := range X[i] {
			X[i][j] = rng.NormFloat64()
		}
		if X[i][0]+0.3*rng.NormFloat64() > 0 {
			y[i] = 1
		}
	}
	return X, y
}

func accuracy(m Model, X [][]float64, y []int) float64 {
	ok := 0
	for i, x := range X {
		if (m.Prob(x) >= 0.5) == (y[i] == 1) {
			ok++
		}
	}
	return float64(ok) / float64(len(X))
}

func TestTrainLearnsAndIsDeterministic(t *testing.T) {
	X, y := separable(1, 2000, 5)
	Xt, yt := separable(2, 1000, 5)
	for _, s := range []Sampling{Poisson, FixedSize} {
		opt := Options{ClipNorm: 1, NoiseMultiplier: 1.0, SampleRate: 0.05, Steps: 300,
			LearningRate: 0.5, Delta: 1e-5, Seed: 7, Sampling: s}
		m, rep, err := Train(context.Background(), X, y, opt)
		if err != nil {
			t.Fatal(err)
		}
		if acc := accuracy(m, Xt, yt); acc < 0.85 {
			t.Errorf("%s: test accuracy %.3f, want ≥ 0.85", s, acc)
		}
		want, order, _ := Epsilon(0.05, 1.0, 300, 1e-5)
		if rep.Epsilon != want || rep.Order != order || rep.Steps != 300 || rep.Sampling != s || rep.Conversion != Balle2020 {
			t.Errorf("%s: report %+v, want ε %g at order %d", s, rep, want, order)
		}
		if s == FixedSize && !strings.Contains(rep.Accounting, "approximation") {
			t.Errorf("fixed-size accounting does not say it approximates: %q", rep.Accounting)
		}
		again, _, _ := Train(context.Background(), X, y, opt)
		if !reflect.DeepEqual(m, again) {
			t.Errorf("%s: same seed, different model", s)
		}
		opt.Seed = 8
		other, _, _ := Train(context.Background(), X, y, opt)
		if reflect.DeepEqual(m, other) {
			t.Errorf("%s: seed does not change the noise", s)
		}
	}
}

func TestClippingBoundsEachStep(t *testing.T) {
	// With one example, q = 1, tiny noise and lr 1, a step moves θ by at
	// most C (plus noise) however large the feature.
	X := [][]float64{{1e6, -1e6}}
	y := []int{1}
	m, _, err := Train(context.Background(), X, y, Options{ClipNorm: 0.5, NoiseMultiplier: 1e-9,
		SampleRate: 1, Steps: 1, LearningRate: 1, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	norm := math.Sqrt(m.Weights[0]*m.Weights[0] + m.Weights[1]*m.Weights[1] + m.Bias*m.Bias)
	if math.Abs(norm-0.5) > 1e-6 {
		t.Errorf("one clipped step moved θ by %g, want C = 0.5", norm)
	}
}

func TestPoissonBatchRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	total := 0
	const n, q, steps = 1000, 0.03, 400
	var buf []int
	for range steps {
		buf = poissonBatch(rng, n, q, buf[:0])
		for k := 1; k < len(buf); k++ {
			if buf[k] <= buf[k-1] || buf[k] >= n {
				t.Fatalf("batch not strictly increasing within range: %v", buf)
			}
		}
		total += len(buf)
	}
	mean := float64(total) / steps
	// Var of the mean is n·q·(1−q)/steps ≈ 0.073; 6 sd ≈ 1.6.
	if math.Abs(mean-n*q) > 1.6 {
		t.Errorf("mean batch %g, want %g", mean, n*q)
	}
}

func TestTrainRejects(t *testing.T) {
	X, y := separable(1, 10, 2)
	good := Options{ClipNorm: 1, NoiseMultiplier: 1, SampleRate: 0.5, Steps: 2, LearningRate: 0.1, Delta: 1e-5}
	cases := map[string]func(*Options){
		"ClipNorm":        func(o *Options) { o.ClipNorm = 0 },
		"NoiseMultiplier": func(o *Options) { o.NoiseMultiplier = -1 },
		"SampleRate":      func(o *Options) { o.SampleRate = 0 },
		"Steps":           func(o *Options) { o.Steps = 0 },
		"LearningRate":    func(o *Options) { o.LearningRate = math.Inf(1) },
		"Delta":           func(o *Options) { o.Delta = 0 },
		"Sampling":        func(o *Options) { o.Sampling = "shuffle" },
	}
	for field, mutate := range cases {
		o := good
		mutate(&o)
		if _, _, err := Train(context.Background(), X, y, o); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v, want one naming the field", field, err)
		}
	}
	bad := []int{0, 1, 2, 0, 0, 0, 0, 0, 0, 0}
	if _, _, err := Train(context.Background(), X, bad, good); err == nil || !strings.Contains(err.Error(), "y[2]") {
		t.Errorf("label 2: %v", err)
	}
	if _, _, err := Train(context.Background(), X, y[:3], good); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("length mismatch: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Train(ctx, X, y, good); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled context: %v", err)
	}
}
