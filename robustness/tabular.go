package robustness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Feature describes one column of a tabular input for TabularAttack.
type Feature struct {
	Name string
	// Lo and Hi are the plausible range; perturbed values stay inside it.
	Lo, Hi float64
	// MaxRelStep bounds the change as a share of the range:
	// |x′ − x| ≤ MaxRelStep·(Hi − Lo). 0 leaves the feature untouched.
	MaxRelStep float64
	// Immutable features (protected attributes, identifiers) are never
	// changed, whatever MaxRelStep says.
	Immutable bool
}

// TabularConfig configures TabularAttack.
type TabularConfig struct {
	// Features lists every column of the inputs, in order.
	Features []Feature
	// Iterations of the greedy search; 0 means 20.
	Iterations int
	// Candidates evaluated per iteration, in one Predict call; 0 means 32.
	Candidates int
	Seed       uint64
	// QueryBudget bounds the queries per row (0: unlimited).
	QueryBudget int
}

func (c TabularConfig) normalize(d int) (TabularConfig, error) {
	if len(c.Features) != d {
		return c, fmt.Errorf("robustness: TabularConfig.Features has %d features, the inputs have %d columns: describe every column", len(c.Features), d)
	}
	mutable := 0
	for _, f := range c.Features {
		if !(f.Lo < f.Hi) || math.IsInf(f.Lo, 0) || math.IsInf(f.Hi, 0) {
			return c, fmt.Errorf("robustness: feature %s: range [%v, %v]: want finite Lo < Hi", f.Name, f.Lo, f.Hi)
		}
		if !(f.MaxRelStep >= 0) {
			return c, fmt.Errorf("robustness: feature %s: MaxRelStep = %v: want ≥ 0", f.Name, f.MaxRelStep)
		}
		if !f.Immutable && f.MaxRelStep > 0 {
			mutable++
		}
	}
	if mutable == 0 {
		return c, fmt.Errorf("robustness: TabularConfig: no feature may change: give a mutable feature a MaxRelStep > 0")
	}
	if c.Iterations < 0 || c.Candidates < 0 {
		return c, fmt.Errorf("robustness: TabularConfig Iterations = %d, Candidates = %d: want ≥ 0", c.Iterations, c.Candidates)
	}
	if c.Iterations == 0 {
		c.Iterations = 20
	}
	if c.Candidates == 0 {
		c.Candidates = 32
	}
	return c, nil
}

// TabularAttack perturbs the mutable numeric features of each row within
// their plausible ranges and step bounds, leaving immutable features
// bit-for-bit untouched, by a greedy random search that keeps the candidate
// with the lowest probability of the row's class until the prediction
// flips. Its success rate is the flip rate; succeeded examples carry the
// adversarial rows. Labels may be nil (attack the clean predictions).
func TabularAttack(ctx context.Context, clf Classifier, rows [][]float64, labels []int, cfg TabularConfig) (*AttackResult, error) {
	if err := validateInputs(rows, labels); err != nil {
		return nil, err
	}
	cfg, err := cfg.normalize(len(rows[0]))
	if err != nil {
		return nil, err
	}
	for i, x := range rows {
		for j, f := range cfg.Features {
			if x[j] < f.Lo || x[j] > f.Hi {
				return nil, fmt.Errorf("robustness: row %d feature %s = %v is outside its range [%v, %v]: widen the range or fix the row", i, f.Name, x[j], f.Lo, f.Hi)
			}
		}
	}
	fn := func(ctx context.Context, q *querier, x []float64, label int, rng *rand.Rand) (found, error) {
		// The feasible box: within the step of the original and the range.
		lo, hi := make([]float64, len(x)), make([]float64, len(x))
		for j, f := range cfg.Features {
			lo[j], hi[j] = x[j], x[j]
			if !f.Immutable && f.MaxRelStep > 0 {
				s := f.MaxRelStep * (f.Hi - f.Lo)
				lo[j], hi[j] = max(f.Lo, x[j]-s), min(f.Hi, x[j]+s)
			}
		}
		base, baseP := x, math.Inf(1)
		batch := make([][]float64, cfg.Candidates)
		for it := range cfg.Iterations {
			for c := range batch {
				cand := append([]float64(nil), base...)
				for j := range cand {
					if lo[j] == hi[j] {
						continue
					}
					if it == 0 && c < 2 {
						// The box's corners along the first step are cheap,
						// strong candidates for monotone models.
						cand[j] = []float64{lo[j], hi[j]}[c]
						continue
					}
					w := (hi[j] - lo[j]) / 2
					cand[j] = clip(base[j]+(2*rng.Float64()-1)*w, lo[j], hi[j])
				}
				batch[c] = cand
			}
			ps, err := q.probs(ctx, batch)
			if err != nil {
				return found{}, err
			}
			bi := -1
			for c, p := range ps {
				if l := argmax(p); l != label {
					return found{adv: batch[c], pred: l, success: true}, nil
				}
				if p[label] < baseP {
					bi, baseP = c, p[label]
				}
			}
			if bi >= 0 {
				base = batch[bi]
				batch = make([][]float64, cfg.Candidates) // base aliases the old batch
			}
		}
		return found{}, nil
	}
	return runAttack(ctx, "tabular", clf, rows, labels, cfg.QueryBudget, cfg.Seed, fn)
}
