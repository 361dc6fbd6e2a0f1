package privacy

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mathext"
)

// OneRunEpsilon is the ε lower bound of the one-run audit of Steinke,
// Nasr and Jagielski (2023) exactly as metrics.md states it: m canaries,
// each included in training with probability ½; the auditor makes r
// guesses of which v are correct. For a candidate ε, with q = e^ε/(1+e^ε),
//
//	β = P[Bin(r,q) ≥ v]
//	α = max_{1≤i≤v} (1/i)·P[v−i ≤ Bin(r,q) < v]   (only when δ > 0)
//	p(ε) = min(1, β + 2·m·δ·α)
//
// and ε_lb = sup{ε : p(ε) < pValue}, found by bisection (p grows with ε).
// pValue is the test's significance (0.05 in the paper), so ε_lb holds
// with confidence 1 − pValue.
func OneRunEpsilon(m, r, v int, delta, pValue float64) (float64, error) {
	if m <= 0 {
		return 0, fmt.Errorf("m = %d canaries: need at least 1", m)
	}
	if r < 0 || r > m {
		return 0, fmt.Errorf("r = %d guesses is outside [0, m = %d]", r, m)
	}
	if v < 0 || v > r {
		return 0, fmt.Errorf("v = %d correct guesses is outside [0, r = %d]", v, r)
	}
	if err := checkDelta(delta); err != nil {
		return 0, err
	}
	if err := checkAlpha("p-value", pValue); err != nil {
		return 0, err
	}
	p := func(eps float64) float64 { return oneRunP(m, r, v, delta, eps) }
	if p(0) >= pValue {
		return 0, nil
	}
	lo, hi := 0.0, 1.0
	for p(hi) < pValue {
		lo, hi = hi, 2*hi
		if hi > 1e3 {
			return math.Inf(1), nil // unreachable for finite r: q → 1 makes β → 1
		}
	}
	for hi-lo > 1e-12*math.Max(1, hi) {
		mid := (lo + hi) / 2
		if p(mid) < pValue {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// oneRunP is p(ε) of OneRunEpsilon.
func oneRunP(m, r, v int, delta, eps float64) float64 {
	if v == 0 {
		return 1
	}
	// ln q and ln(1−q) via softplus so that large ε keeps 1−q accurate.
	lnQ := -softplus(-eps)
	ln1Q := -softplus(eps)
	q := math.Exp(lnQ)
	beta := mathext.RegIncBeta(float64(v), float64(r-v+1), q)
	if delta == 0 {
		return math.Min(1, beta)
	}
	// pmf(k) for k = v−1 down to 0, by the ratio pmf(k−1)/pmf(k) =
	// k/(r−k+1)·(1−q)/q, accumulating P[v−i ≤ Bin < v].
	k := v - 1
	lg := func(x int) float64 { y, _ := math.Lgamma(float64(x) + 1); return y }
	lp := lg(r) - lg(k) - lg(r-k) + float64(k)*lnQ + float64(r-k)*ln1Q
	var sum, alpha float64
	for i := 1; i <= v; i++ {
		sum += math.Exp(lp)
		alpha = math.Max(alpha, sum/float64(i))
		if k > 0 {
			lp += math.Log(float64(k)) - math.Log(float64(r-k+1)) + ln1Q - lnQ
			k--
		}
	}
	return math.Min(1, beta+2*float64(m)*delta*alpha)
}

func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// OneRunResult is a one-run audit: of M canaries, R guesses were made (the
// KPlus highest scores guessed "in", the KMinus lowest "out"), V of them
// correct, giving Epsilon with confidence 1 − PValue at Delta.
type OneRunResult struct {
	M      int     `json:"m"`
	KPlus  int     `json:"k_plus"`
	KMinus int     `json:"k_minus"`
	R      int     `json:"r"`
	V      int     `json:"v"`
	Delta  float64 `json:"delta"`
	PValue float64 `json:"p_value"`
	// Epsilon is the one-run lower bound (Steinke, Nasr, Jagielski 2023).
	Epsilon float64 `json:"epsilon_lb"`
}

// OneRunAudit scores a one-run audit from canary attack scores (higher ⇒
// included) and the true inclusion bits: it guesses "in" for the kPlus
// highest scores and "out" for the kMinus lowest, counts correct guesses
// and calls OneRunEpsilon. Equal scores are ordered by index so the result
// does not depend on sort stability. The caller must have included each
// canary independently with probability ½, which the bound relies on.
func OneRunAudit(scores []float64, included []bool, kPlus, kMinus int, delta, pValue float64) (OneRunResult, error) {
	if err := ValidateScores("canary", "", "score", scores); err != nil {
		return OneRunResult{}, err
	}
	if err := checkLen("scores", len(scores), "included", len(included)); err != nil {
		return OneRunResult{}, err
	}
	m := len(scores)
	if kPlus < 0 || kMinus < 0 || kPlus+kMinus > m {
		return OneRunResult{}, fmt.Errorf("k_plus = %d and k_minus = %d must be ≥ 0 with k_plus + k_minus ≤ m = %d", kPlus, kMinus, m)
	}
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(scores[b], scores[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	v := 0
	for _, i := range idx[:kPlus] {
		if included[i] {
			v++
		}
	}
	for _, i := range idx[m-kMinus:] {
		if !included[i] {
			v++
		}
	}
	r := kPlus + kMinus
	eps, err := OneRunEpsilon(m, r, v, delta, pValue)
	if err != nil {
		return OneRunResult{}, err
	}
	return OneRunResult{M: m, KPlus: kPlus, KMinus: kMinus, R: r, V: v, Delta: delta, PValue: pValue, Epsilon: eps}, nil
}
