package dp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Sampling is how DP-SGD draws each batch.
type Sampling string

const (
	// Poisson includes every example in each batch independently with
	// probability q; the accountant's assumption. The noisy gradient sum is
	// divided by the expected batch size q·n.
	Poisson Sampling = "poisson"
	// FixedSize draws round(q·n) examples without replacement per step.
	FixedSize Sampling = "fixed_size"
)

// Options configures Train. Zero values are refused rather than defaulted
// where a default would silently change the privacy guarantee.
type Options struct {
	ClipNorm        float64  // C: per-example gradient L2 bound, > 0
	NoiseMultiplier float64  // σ: noise std is σ·C, > 0
	SampleRate      float64  // q in (0, 1]
	Steps           int      // T ≥ 1
	LearningRate    float64  // > 0
	Sampling        Sampling // "" means Poisson
	Delta           float64  // δ the Report's ε is stated at, in (0, 1)
	Seed            uint64   // sampling and noise are deterministic given Seed
	// Orders and Conversion default to DefaultOrders() and Balle2020.
	Orders     []int
	Conversion Conversion
}

// Model is a binary logistic regression: P(y=1|x) = sigmoid(w·x + b).
type Model struct {
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
}

// Logit returns w·x + b.
func (m Model) Logit(x []float64) float64 {
	z := m.Bias
	for j, w := range m.Weights {
		z += w * x[j]
	}
	return z
}

// Prob returns P(y=1|x).
func (m Model) Prob(x []float64) float64 { return sigmoid(m.Logit(x)) }

// Report is the privacy guarantee of one training run, with what it
// assumed, so it can be printed beside the audit's empirical ε.
type Report struct {
	Epsilon    float64    `json:"epsilon"`
	Delta      float64    `json:"delta"`
	Order      int        `json:"order"` // RDP order achieving Epsilon
	Steps      int        `json:"steps"`
	Sigma      float64    `json:"noise_multiplier"`
	Q          float64    `json:"sample_rate"`
	ClipNorm   float64    `json:"clip_norm"`
	Sampling   Sampling   `json:"sampling"`
	Orders     []int      `json:"orders"`
	Conversion Conversion `json:"conversion"`
	// Accounting states the analysis in words, e.g. that fixed-size
	// batches were accounted as Poisson sampling.
	Accounting string `json:"accounting"`
}

// Train runs DP-SGD on binary logistic regression: each step draws a batch
// (Options.Sampling), clips every example's gradient of the log loss with
// respect to (w, b) to L2 norm C, sums, adds N(0, σ²C²) to every
// coordinate, divides by the batch size (expected size q·n for Poisson)
// and takes a gradient step. X is n rows of d features, y holds 0/1
// labels. The result is deterministic given Options.Seed.
func Train(ctx context.Context, X [][]float64, y []int, opt Options) (Model, Report, error) {
	if err := checkData(X, y); err != nil {
		return Model{}, Report{}, err
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return Model{}, Report{}, err
	}
	n, d := len(X), len(X[0])
	eps, order, err := EpsilonWith(opt.SampleRate, opt.NoiseMultiplier, opt.Steps, opt.Delta, opt.Orders, opt.Conversion)
	if err != nil {
		return Model{}, Report{}, fmt.Errorf("accounting: %w", err)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6470736764))
	theta := make([]float64, d+1) // weights then bias
	sum := make([]float64, d+1)
	g := make([]float64, d+1)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	batch := make([]int, 0, n)
	fixed := max(1, int(math.Round(opt.SampleRate*float64(n))))
	for step := range opt.Steps {
		if err := ctx.Err(); err != nil {
			return Model{}, Report{}, fmt.Errorf("dp-sgd step %d of %d: %w", step, opt.Steps, err)
		}
		batch = batch[:0]
		denom := opt.SampleRate * float64(n)
		if opt.Sampling == FixedSize {
			// Partial Fisher–Yates: the first `fixed` slots become the batch.
			for k := range fixed {
				j := k + rng.IntN(n-k)
				perm[k], perm[j] = perm[j], perm[k]
				batch = append(batch, perm[k])
			}
			denom = float64(fixed)
		} else {
			batch = poissonBatch(rng, n, opt.SampleRate, batch)
		}
		clear(sum)
		for _, i := range batch {
			x := X[i]
			z := theta[d]
			for j := range d {
				z += theta[j] * x[j]
			}
			r := sigmoid(z) - float64(y[i])
			var norm2 float64
			for j := range d {
				g[j] = r * x[j]
				norm2 += g[j] * g[j]
			}
			g[d] = r
			norm2 += r * r
			scale := 1.0
			if norm := math.Sqrt(norm2); norm > opt.ClipNorm {
				scale = opt.ClipNorm / norm
			}
			for j := range g {
				sum[j] += scale * g[j]
			}
		}
		std := opt.NoiseMultiplier * opt.ClipNorm
		for j := range theta {
			theta[j] -= opt.LearningRate * (sum[j] + std*rng.NormFloat64()) / denom
		}
	}
	acc := "RDP of the Poisson-subsampled Gaussian (Mironov, Talwar, Zhang 2019), add/remove-one neighbours, integer orders, " + string(opt.Conversion) + " conversion"
	if opt.Sampling == FixedSize {
		acc += "; fixed-size batches accounted as Poisson sampling at q (common practice, an approximation)"
	}
	rep := Report{
		Epsilon: eps, Delta: opt.Delta, Order: order, Steps: opt.Steps,
		Sigma: opt.NoiseMultiplier, Q: opt.SampleRate, ClipNorm: opt.ClipNorm,
		Sampling: opt.Sampling, Orders: opt.Orders, Conversion: opt.Conversion, Accounting: acc,
	}
	return Model{Weights: theta[:d:d], Bias: theta[d]}, rep, nil
}

// poissonBatch appends each index in [0, n) with probability q, jumping
// over skipped indices with geometric gaps so a step costs O(q·n) draws.
func poissonBatch(rng *rand.Rand, n int, q float64, batch []int) []int {
	if q >= 1 {
		for i := range n {
			batch = append(batch, i)
		}
		return batch
	}
	l1q := math.Log1p(-q)
	for i := -1; ; {
		// Gap to the next included index: Geometric(q) on {1, 2, ...}.
		u := 1 - rng.Float64() // (0, 1]
		gap := math.Floor(math.Log(u)/l1q) + 1
		if gap > float64(n-i) {
			return batch
		}
		i += int(gap)
		if i >= n {
			return batch
		}
		batch = append(batch, i)
	}
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case !(o.ClipNorm > 0) || math.IsInf(o.ClipNorm, 0):
		return o, fmt.Errorf("ClipNorm = %g: the per-example clipping bound C must be positive and finite (1.0 is common)", o.ClipNorm)
	case !(o.NoiseMultiplier > 0) || math.IsInf(o.NoiseMultiplier, 0):
		return o, fmt.Errorf("NoiseMultiplier = %g: σ must be positive and finite; σ = 0 gives no privacy", o.NoiseMultiplier)
	case !(o.SampleRate > 0 && o.SampleRate <= 1):
		return o, fmt.Errorf("SampleRate = %g: q must be in (0, 1], batch size / n", o.SampleRate)
	case o.Steps < 1:
		return o, fmt.Errorf("Steps = %d: need at least 1 step", o.Steps)
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return o, fmt.Errorf("LearningRate = %g: must be positive and finite", o.LearningRate)
	case !(o.Delta > 0 && o.Delta < 1):
		return o, fmt.Errorf("Delta = %g: δ must be in (0, 1), usually below 1/n", o.Delta)
	}
	switch o.Sampling {
	case "":
		o.Sampling = Poisson
	case Poisson, FixedSize:
	default:
		return o, fmt.Errorf("Sampling = %q: use %q or %q", o.Sampling, Poisson, FixedSize)
	}
	if o.Orders == nil {
		o.Orders = DefaultOrders()
	}
	if o.Conversion == "" {
		o.Conversion = Balle2020
	}
	return o, nil
}

func checkData(X [][]float64, y []int) error {
	if len(X) == 0 {
		return fmt.Errorf("X is empty: need at least one training row")
	}
	if len(X) != len(y) {
		return fmt.Errorf("X has %d rows but y has %d labels: pass one label per row", len(X), len(y))
	}
	d := len(X[0])
	if d == 0 {
		return fmt.Errorf("X[0] has no features")
	}
	for i, row := range X {
		if len(row) != d {
			return fmt.Errorf("X[%d] has %d features, X[0] has %d: every row needs the same number", i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("X[%d][%d] is %g: features must be finite", i, j, v)
			}
		}
		if y[i] != 0 && y[i] != 1 {
			return fmt.Errorf("y[%d] = %d: binary logistic regression needs labels 0 or 1", i, y[i])
		}
	}
	return nil
}
