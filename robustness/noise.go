package robustness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sandgate/sandgate/internal/binom"
)

// ClopperPearsonUpper is the one-sided Clopper–Pearson upper bound at level
// a for k successes in n trials (reference/metrics.md):
// ub(k,n) = BetaInv(1−a; k+1, n−k), ub(n,n) = 1, ub(0,n) = 1 − a^{1/n}.
// With n == 0 it is 1.
func ClopperPearsonUpper(k, n int, a float64) float64 {
	if n <= 0 {
		return 1
	}
	return binom.Upper(min(max(k, 0), n), n, a)
}

// NoiseConfig configures NoiseFlipRate.
type NoiseConfig struct {
	// Epsilons are the noise levels: δ ~ U[−ε, ε]^d, or N(0, ε²) per
	// feature with Gaussian. Required, each > 0.
	Epsilons []float64
	Gaussian bool
	// Draws is K, the perturbed copies per input and level; 0 means 100.
	Draws int
	// Lo and Hi clip every perturbed feature; both 0 means [0, 1].
	Lo, Hi float64
	// Level is a of the one-sided Clopper–Pearson upper bound; 0 means
	// 0.05 (a 95% upper bound).
	Level float64
	Seed  uint64
}

// NoiseLevel is the flip rate at one noise level.
type NoiseLevel struct {
	Epsilon      float64
	Distribution string // "uniform" (δ ~ U[−ε, ε]) or "gaussian" (σ = ε)
	// Inputs is N, the correctly classified inputs that were perturbed;
	// misclassified inputs are skipped (TextAttack) and counted in Skipped.
	Inputs  int
	Skipped int
	Draws   int // K
	Flips   int // perturbed copies whose prediction differs from the clean one
	// Rate = Flips / (N·K): the denominator counts attacked inputs only,
	// so misclassified inputs neither dilute nor inflate the rate.
	Rate float64
	// Upper is the one-sided Clopper–Pearson upper bound of Rate at
	// level a = Level (1 − a confidence).
	Upper float64
	Level float64
	// Attack counts an input as succeeded when any of its K copies
	// flipped; its example carries the first flipping copy.
	Attack AttackResult
}

// NoiseResult is the result of NoiseFlipRate.
type NoiseResult struct {
	Convention string
	Levels     []NoiseLevel
	// Queries is every model query made, clean predictions included.
	Queries int
}

const noiseConvention = "noise flip rate: K draws δ ~ U[−ε,ε]^d (or N(0,ε²)), x′ = clip(x+δ, lo, hi); rate = flips/(N·K), N = correctly classified inputs; one-sided Clopper–Pearson upper bound"

func (c NoiseConfig) normalize() (NoiseConfig, error) {
	if len(c.Epsilons) == 0 {
		return c, errors.New("robustness: NoiseConfig.Epsilons is empty: list the noise levels, e.g. {0.01, 0.05, 0.1}")
	}
	for _, e := range c.Epsilons {
		if !(e > 0) || math.IsInf(e, 0) {
			return c, fmt.Errorf("robustness: NoiseConfig.Epsilons: %v: each level must be a finite ε > 0", e)
		}
	}
	if c.Draws < 0 {
		return c, fmt.Errorf("robustness: NoiseConfig.Draws = %d: want K > 0 (0 means 100)", c.Draws)
	}
	if c.Draws == 0 {
		c.Draws = 100
	}
	if c.Lo == 0 && c.Hi == 0 {
		c.Hi = 1
	}
	if !(c.Lo < c.Hi) {
		return c, fmt.Errorf("robustness: NoiseConfig clip range [%v, %v]: want Lo < Hi", c.Lo, c.Hi)
	}
	if c.Level == 0 {
		c.Level = 0.05
	}
	if !(c.Level > 0 && c.Level < 1) {
		return c, fmt.Errorf("robustness: NoiseConfig.Level = %v: want a in (0, 1), e.g. 0.05", c.Level)
	}
	return c, nil
}

// perturb draws one noisy copy of x.
func perturb(x []float64, eps float64, gaussian bool, lo, hi float64, rng *rand.Rand) []float64 {
	out := make([]float64, len(x))
	for j, v := range x {
		var d float64
		if gaussian {
			d = rng.NormFloat64() * eps
		} else {
			d = (2*rng.Float64() - 1) * eps
		}
		out[j] = clip(v+d, lo, hi)
	}
	return out
}

// NoiseFlipRate measures how often random noise flips a classifier's
// prediction, at each ε of cfg. Each input's K copies go to the model in one
// Predict call. Labels may be nil: the clean predictions are then the labels
// and nothing is skipped.
func NoiseFlipRate(ctx context.Context, clf Classifier, inputs [][]float64, labels []int, cfg NoiseConfig) (*NoiseResult, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	res := &NoiseResult{Convention: noiseConvention}
	dist := "uniform"
	if cfg.Gaussian {
		dist = "gaussian"
	}
	for li, eps := range cfg.Epsilons {
		// Each level and input has its own stream: levels are independent
		// of each other and of the input order.
		seed := cfg.Seed ^ (uint64(li+1) * 0x9e3779b97f4a7c15)
		flips := 0
		fn := func(ctx context.Context, q *querier, x []float64, label int, rng *rand.Rand) (found, error) {
			batch := make([][]float64, cfg.Draws)
			for k := range batch {
				batch[k] = perturb(x, eps, cfg.Gaussian, cfg.Lo, cfg.Hi, rng)
			}
			ls, err := q.labels(ctx, batch)
			if err != nil {
				return found{}, err
			}
			var f found
			for k, l := range ls {
				if l != label {
					flips++
					if f.adv == nil {
						f = found{adv: batch[k], pred: l, success: true}
					}
				}
			}
			return f, nil
		}
		ar, err := runAttack(ctx, "noise", clf, inputs, labels, 0, seed, fn)
		if ar == nil {
			return nil, err
		}
		lvl := NoiseLevel{Epsilon: eps, Distribution: dist, Draws: cfg.Draws, Flips: flips, Level: cfg.Level, Attack: *ar}
		lvl.Inputs = ar.Summary.Succeeded + ar.Summary.Failed
		lvl.Skipped = ar.Summary.Skipped
		trials := lvl.Inputs * cfg.Draws
		if trials > 0 {
			lvl.Rate = float64(flips) / float64(trials)
		}
		lvl.Upper = ClopperPearsonUpper(flips, trials, cfg.Level)
		res.Queries += ar.Summary.Queries
		res.Levels = append(res.Levels, lvl)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// Metrics flattens the levels for a policy gate:
// robustness.noise_flip_rate.<ε> and robustness.noise_flip_rate_upper.<ε>,
// ε formatted with %g (e.g. "0.05").
func (r *NoiseResult) Metrics() map[string]float64 {
	m := map[string]float64{}
	for _, l := range r.Levels {
		e := fmt.Sprintf("%g", l.Epsilon)
		m["robustness.noise_flip_rate."+e] = l.Rate
		m["robustness.noise_flip_rate_upper."+e] = l.Upper
	}
	return m
}
