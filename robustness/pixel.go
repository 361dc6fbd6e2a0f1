package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// PixelConfig configures PixelAttack.
type PixelConfig struct {
	Height, Width int // image shape; inputs are H×W grayscale in [0, 1], row-major
	// Pixels is k, the pixels the attack may change; 0 means 1.
	Pixels int
	// Population is the differential-evolution population; 0 means 400
	// (the one-pixel attack's population of 400 candidates).
	Population int
	// Iterations bounds the generations; 0 means 100 (ART max_iter).
	Iterations int
	// F is the mutation factor (0 means 0.5) and CR the crossover
	// probability (0 means 1, the one-pixel attack's recombination).
	F, CR float64
	Seed  uint64
	// QueryBudget bounds the queries per image (0: unlimited); an image
	// whose budget runs out has failed.
	QueryBudget int
}

func (c PixelConfig) normalize() (PixelConfig, error) {
	if c.Height <= 0 || c.Width <= 0 {
		return c, fmt.Errorf("robustness: PixelConfig %dx%d: set Height and Width of the images", c.Height, c.Width)
	}
	if c.Pixels == 0 {
		c.Pixels = 1
	}
	if c.Population == 0 {
		c.Population = 400
	}
	if c.Iterations == 0 {
		c.Iterations = 100
	}
	if c.F == 0 {
		c.F = 0.5
	}
	if c.CR == 0 {
		c.CR = 1
	}
	switch {
	case c.Pixels < 0:
		return c, fmt.Errorf("robustness: PixelConfig.Pixels = %d: want k ≥ 1", c.Pixels)
	case c.Population < 4:
		return c, fmt.Errorf("robustness: PixelConfig.Population = %d: best1bin needs at least 4 candidates", c.Population)
	case c.Iterations < 0:
		return c, fmt.Errorf("robustness: PixelConfig.Iterations = %d: want ≥ 0", c.Iterations)
	case !(c.F > 0 && c.F <= 2):
		return c, fmt.Errorf("robustness: PixelConfig.F = %v: want a mutation factor in (0, 2]", c.F)
	case !(c.CR > 0 && c.CR <= 1):
		return c, fmt.Errorf("robustness: PixelConfig.CR = %v: want a crossover probability in (0, 1]", c.CR)
	}
	return c, nil
}

// PixelAttack is ART's PixelAttack with differential evolution: each
// candidate is k genes (row, col, value); DE/best/1/bin evolves them to
// minimise the probability of the true class, evaluating the whole
// population in one Predict call per generation, and stops at the first
// candidate that changes the prediction. Labels may be nil (attack the
// clean predictions).
func PixelAttack(ctx context.Context, clf Classifier, images [][]float64, labels []int, cfg PixelConfig) (*AttackResult, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	for i, x := range images {
		if len(x) != cfg.Height*cfg.Width {
			return nil, fmt.Errorf("robustness: image %d has %d pixels, want %d×%d = %d", i, len(x), cfg.Height, cfg.Width, cfg.Height*cfg.Width)
		}
		for j, v := range x {
			if !(v >= 0 && v <= 1) {
				return nil, fmt.Errorf("robustness: image %d pixel %d is %v: scale images to [0, 1]", i, j, v)
			}
		}
	}
	dims := 3 * cfg.Pixels
	upper := make([]float64, dims) // genes live in [0, upper)
	for p := range cfg.Pixels {
		upper[3*p], upper[3*p+1], upper[3*p+2] = float64(cfg.Height), float64(cfg.Width), 1
	}
	apply := func(x, genes []float64) []float64 {
		out := append([]float64(nil), x...)
		for p := range cfg.Pixels {
			r := min(int(genes[3*p]), cfg.Height-1)
			c := min(int(genes[3*p+1]), cfg.Width-1)
			out[r*cfg.Width+c] = genes[3*p+2]
		}
		return out
	}
	fn := func(ctx context.Context, q *querier, x []float64, label int, rng *rand.Rand) (found, error) {
		// evaluate scores a population in one call and reports a flip.
		evaluate := func(pop [][]float64, fit []float64) (found, error) {
			imgs := make([][]float64, len(pop))
			for j, g := range pop {
				imgs[j] = apply(x, g)
			}
			ps, err := q.probs(ctx, imgs)
			if err != nil {
				return found{}, err
			}
			best := found{}
			bestP := 2.0
			for j, p := range ps {
				fit[j] = p[label]
				if l := argmax(p); l != label && p[label] < bestP {
					best, bestP = found{adv: imgs[j], pred: l, success: true}, p[label]
				}
			}
			return best, nil
		}
		pop := make([][]float64, cfg.Population)
		for j := range pop {
			pop[j] = make([]float64, dims)
			for d := range dims {
				pop[j][d] = rng.Float64() * upper[d]
			}
		}
		fit := make([]float64, cfg.Population)
		if f, err := evaluate(pop, fit); err != nil || f.success {
			return f, err
		}
		trials := make([][]float64, cfg.Population)
		tfit := make([]float64, cfg.Population)
		for range cfg.Iterations {
			best := 0
			for j := range fit {
				if fit[j] < fit[best] {
					best = j
				}
			}
			for j := range trials {
				r1, r2 := distinctPair(rng, cfg.Population, j)
				fill := rng.IntN(dims)
				t := make([]float64, dims)
				for d := range dims {
					if d == fill || rng.Float64() < cfg.CR {
						t[d] = pop[best][d] + cfg.F*(pop[r1][d]-pop[r2][d])
						// Out-of-bounds genes are redrawn inside the
						// bounds, as scipy's differential_evolution does.
						if t[d] < 0 || t[d] >= upper[d] {
							t[d] = rng.Float64() * upper[d]
						}
					} else {
						t[d] = pop[j][d]
					}
				}
				trials[j] = t
			}
			if f, err := evaluate(trials, tfit); err != nil || f.success {
				return f, err
			}
			for j := range pop {
				if tfit[j] <= fit[j] {
					pop[j], fit[j] = trials[j], tfit[j]
				}
			}
		}
		return found{}, nil
	}
	return runAttack(ctx, "pixel", clf, images, labels, cfg.QueryBudget, cfg.Seed, fn)
}

// distinctPair draws two distinct indices in [0, n), both different from
// exclude.
func distinctPair(rng *rand.Rand, n, exclude int) (int, int) {
	a := rng.IntN(n - 1)
	if a >= exclude {
		a++
	}
	for {
		b := rng.IntN(n)
		if b != a && b != exclude {
			return a, b
		}
	}
}
