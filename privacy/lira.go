package privacy

import (
	"context"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// LiRAMethod names which offline LiRA test produced a score.
type LiRAMethod string

const (
	// LiRAGaussian scores by the Gaussian log-likelihood of the target's φ
	// under the OUT distribution, log N(φ; μ_out, σ_out): low likelihood
	// ⇒ member. Score is its negation.
	LiRAGaussian LiRAMethod = "gaussian_loglik"
	// LiRAOneSided is the one-sided test 1 − Pr[Z > φ], Z ~ N(μ_out,
	// σ_out²): φ far above the OUT models ⇒ member. Score is the z-score
	// (φ − μ_out)/σ_out, which orders examples the same way but does not
	// saturate at 1 for large z.
	LiRAOneSided LiRAMethod = "one_sided"
)

// LiRAOptions configures LiRAOffline.
type LiRAOptions struct {
	Method LiRAMethod
	// SigmaFloor bounds σ_out below (default 1e-6): with few shadows, or a
	// model whose φ barely moves, the sample std can be 0 and every score
	// infinite.
	SigmaFloor float64
	// MinShadows is the fewest OUT values an example needs (default 2).
	MinShadows int
}

// LiRAResult holds one entry per example.
type LiRAResult struct {
	Method LiRAMethod `json:"method"`
	Mu     []float64  `json:"mu_out"`    // median of the OUT φ values
	Sigma  []float64  `json:"sigma_out"` // population std (ddof 0), floored
	// Statistic is the test's own value: log N(φ; μ, σ) for LiRAGaussian
	// (lower ⇒ member) or 1 − Pr[Z > φ] for LiRAOneSided (higher ⇒ member).
	Statistic []float64 `json:"statistic"`
	// Score is oriented higher ⇒ member for NewROC and the ε bounds.
	Score []float64 `json:"score"`
}

// LiRAOffline runs the offline variant of the Likelihood Ratio Attack
// (Carlini et al. 2022): target[i] is the target model's logit statistic φ
// (MIAStats.Logit) for example i and out[i] the φ values of example i
// under shadow models that did not train on it. μ_out is their median and
// σ_out their standard deviation, as metrics.md defines it.
//
// Training the shadow models is the caller's job (see ShadowOut for an
// orchestration helper).
func LiRAOffline(target []float64, out [][]float64, opt LiRAOptions) (LiRAResult, error) {
	if opt.Method != LiRAGaussian && opt.Method != LiRAOneSided {
		return LiRAResult{}, fmt.Errorf("lira method %q: use %q or %q", opt.Method, LiRAGaussian, LiRAOneSided)
	}
	floor := opt.SigmaFloor
	if floor == 0 {
		floor = 1e-6
	}
	if !(floor > 0) || math.IsInf(floor, 0) {
		return LiRAResult{}, fmt.Errorf("sigma floor %g must be a positive number", floor)
	}
	minShadows := opt.MinShadows
	if minShadows == 0 {
		minShadows = 2
	}
	if minShadows < 1 {
		return LiRAResult{}, fmt.Errorf("min shadows %d must be ≥ 1", minShadows)
	}
	if err := ValidateScores("target", "", "phi", target); err != nil {
		return LiRAResult{}, err
	}
	if err := checkLen("target", len(target), "out", len(out)); err != nil {
		return LiRAResult{}, err
	}
	n := len(target)
	res := LiRAResult{Method: opt.Method, Mu: make([]float64, n), Sigma: make([]float64, n),
		Statistic: make([]float64, n), Score: make([]float64, n)}
	for i, o := range out {
		if len(o) < minShadows {
			return LiRAResult{}, fmt.Errorf("out[%d] has %d shadow values, need at least %d: train more shadow models without example %d", i, len(o), minShadows, i)
		}
		if err := ValidateScores("out", "", fmt.Sprintf("out[%d]", i), o); err != nil {
			return LiRAResult{}, err
		}
		sorted := slices.Clone(o)
		slices.Sort(sorted)
		mu := median(sorted)
		sigma := math.Max(popStdDev(o), floor)
		z := (target[i] - mu) / sigma
		if math.IsNaN(z) || math.IsInf(z, 0) || math.IsInf(sigma, 0) {
			return LiRAResult{}, fmt.Errorf("example %d: target φ %g against out[%d] (μ %g, σ %g) overflows: φ values this large are not logit statistics, check the column", i, target[i], i, mu, sigma)
		}
		res.Mu[i], res.Sigma[i] = mu, sigma
		switch opt.Method {
		case LiRAGaussian:
			ll := -0.5*z*z - math.Log(sigma) - 0.5*math.Log(2*math.Pi)
			res.Statistic[i], res.Score[i] = ll, -ll
		case LiRAOneSided:
			res.Statistic[i] = 0.5 * math.Erfc(-z/math.Sqrt2) // Φ(z) = 1 − Pr[Z > φ]
			res.Score[i] = z
		}
	}
	return res, nil
}

// popStdDev is the population standard deviation (numpy's default,
// ddof 0, as LiRA's reference code uses), computed on values scaled by
// their largest magnitude so that squares of large φ do not overflow.
func popStdDev(xs []float64) float64 {
	var s float64
	for _, v := range xs {
		s = math.Max(s, math.Abs(v))
	}
	if s == 0 {
		return 0
	}
	scaled := make([]float64, len(xs))
	for i, v := range xs {
		scaled[i] = v / s
	}
	return s * stat.PopStdDev(scaled, nil)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// ShadowTrainer trains one shadow model on the examples trainIdx (indices
// into the caller's candidate set) and returns a function giving that
// model's φ for any example index.
type ShadowTrainer func(ctx context.Context, trainIdx []int) (phi func(i int) (float64, error), err error)

// ShadowOut trains `shadows` models, each on a random half of the n
// candidate examples (every example kept independently with probability
// ½, deterministic by seed), and collects for every example the φ values
// of the shadows that did not train on it: the out argument of
// LiRAOffline. Examples every shadow happened to train on get an empty
// slice, which LiRAOffline reports.
func ShadowOut(ctx context.Context, n, shadows int, seed uint64, train ShadowTrainer) ([][]float64, error) {
	if n <= 0 {
		return nil, fmt.Errorf("n = %d candidate examples: need at least 1", n)
	}
	if shadows <= 0 {
		return nil, fmt.Errorf("shadows = %d: need at least 1 shadow model (LiRA papers use 16–256)", shadows)
	}
	rng := newRand(seed)
	out := make([][]float64, n)
	in := make([]bool, n)
	for s := range shadows {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("shadow %d: %w", s, err)
		}
		var idx []int
		for i := range n {
			in[i] = rng.IntN(2) == 1
			if in[i] {
				idx = append(idx, i)
			}
		}
		phi, err := train(ctx, idx)
		if err != nil {
			return nil, fmt.Errorf("training shadow %d: %w", s, err)
		}
		for i := range n {
			if in[i] {
				continue
			}
			v, err := phi(i)
			if err != nil {
				return nil, fmt.Errorf("shadow %d, example %d: %w", s, i, err)
			}
			out[i] = append(out[i], v)
		}
	}
	return out, nil
}
