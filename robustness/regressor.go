package robustness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// RegressorConfig configures RegressorNoise.
type RegressorConfig struct {
	// Epsilon bounds the perturbation: δ ~ U[−ε, ε]^d (or N(0, ε²) with
	// Gaussian). Required, > 0.
	Epsilon  float64
	Gaussian bool
	// Draws is the perturbed copies per input; 0 means 100.
	Draws int
	// Lo and Hi clip every perturbed feature; both 0 means no clipping.
	Lo, Hi float64
	// Tolerance: a change |f(x′) − f(x)| > Tolerance counts as exceeding.
	Tolerance float64
	Seed      uint64
}

// OutputChangeResult is the result of RegressorNoise.
type OutputChangeResult struct {
	Epsilon       float64
	Distribution  string
	Trials        int // inputs × draws
	MeanAbsChange float64
	MaxAbsChange  float64
	// ShareAboveTolerance = AboveTolerance / Trials.
	ShareAboveTolerance float64
	AboveTolerance      int
	Tolerance           float64
	// WorstInput and WorstPerturbed are the input and the copy with the
	// largest change, for the caller to store.
	WorstInput     int
	WorstPerturbed []float64
	Queries        int
}

// RegressorNoise measures how far a regressor's output moves under bounded
// random perturbation: mean and max |f(x′) − f(x)| and the share of copies
// moving by more than Tolerance. Each input's clean value and its copies go
// to the model in one Predict call.
func RegressorNoise(ctx context.Context, r Regressor, inputs [][]float64, cfg RegressorConfig) (*OutputChangeResult, error) {
	if err := validateInputs(inputs, nil); err != nil {
		return nil, err
	}
	if !(cfg.Epsilon > 0) || math.IsInf(cfg.Epsilon, 0) {
		return nil, fmt.Errorf("robustness: RegressorConfig.Epsilon = %v: want a finite ε > 0", cfg.Epsilon)
	}
	if cfg.Draws < 0 {
		return nil, fmt.Errorf("robustness: RegressorConfig.Draws = %d: want > 0 (0 means 100)", cfg.Draws)
	}
	if cfg.Draws == 0 {
		cfg.Draws = 100
	}
	if !(cfg.Tolerance >= 0) {
		return nil, fmt.Errorf("robustness: RegressorConfig.Tolerance = %v: want ≥ 0", cfg.Tolerance)
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if cfg.Lo != 0 || cfg.Hi != 0 {
		if !(cfg.Lo < cfg.Hi) {
			return nil, fmt.Errorf("robustness: RegressorConfig clip range [%v, %v]: want Lo < Hi", cfg.Lo, cfg.Hi)
		}
		lo, hi = cfg.Lo, cfg.Hi
	}
	res := &OutputChangeResult{Epsilon: cfg.Epsilon, Distribution: "uniform", Tolerance: cfg.Tolerance, WorstInput: -1}
	if cfg.Gaussian {
		res.Distribution = "gaussian"
	}
	var sum float64
	for i, x := range inputs {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("robustness: regressor noise: %w", err)
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		batch := make([][]float64, cfg.Draws+1)
		batch[0] = x
		for k := 1; k <= cfg.Draws; k++ {
			batch[k] = perturb(x, cfg.Epsilon, cfg.Gaussian, lo, hi, rng)
		}
		out, err := r.Predict(ctx, batch)
		if err != nil {
			return res, fmt.Errorf("robustness: regressor noise: predict input %d: %w", i, err)
		}
		if len(out) != len(batch) {
			return res, fmt.Errorf("robustness: regressor returned %d outputs for %d inputs", len(out), len(batch))
		}
		res.Queries += len(batch)
		for k := 1; k <= cfg.Draws; k++ {
			d := math.Abs(out[k] - out[0])
			if math.IsNaN(d) {
				return res, fmt.Errorf("robustness: regressor output for input %d is NaN", i)
			}
			sum += d
			res.Trials++
			if d > res.MaxAbsChange || res.WorstInput < 0 {
				res.MaxAbsChange, res.WorstInput, res.WorstPerturbed = d, i, batch[k]
			}
			if d > cfg.Tolerance {
				res.AboveTolerance++
			}
		}
	}
	res.MeanAbsChange = sum / float64(res.Trials)
	res.ShareAboveTolerance = float64(res.AboveTolerance) / float64(res.Trials)
	return res, nil
}

// Metrics flattens the result: robustness.regressor_change_mean,
// robustness.regressor_change_max, robustness.regressor_change_share.
func (r *OutputChangeResult) Metrics() map[string]float64 {
	return map[string]float64{
		"robustness.regressor_change_mean":  r.MeanAbsChange,
		"robustness.regressor_change_max":   r.MaxAbsChange,
		"robustness.regressor_change_share": r.ShareAboveTolerance,
	}
}
