package privacy

import (
	"fmt"
	"math"

	"github.com/sandgate/sandgate/internal/binom"
)

// ClopperPearsonUpper is the exact one-sided upper confidence bound at
// level a on a binomial proportion with k successes in n trials, as
// metrics.md defines it: BetaInv(1−a; k+1, n−k), with ub(n,n) = 1 and
// ub(0,n) = 1 − a^{1/n}. The true proportion exceeds it with probability
// at most a.
func ClopperPearsonUpper(k, n int, a float64) (float64, error) {
	if err := checkBinom(k, n, a); err != nil {
		return 0, err
	}
	return binom.Upper(k, n, a), nil
}

// ClopperPearsonLower is the one-sided lower bound at level a:
// BetaInv(a; k, n−k+1), with lb(0,n) = 0 and lb(n,n) = a^{1/n}.
func ClopperPearsonLower(k, n int, a float64) (float64, error) {
	if err := checkBinom(k, n, a); err != nil {
		return 0, err
	}
	return binom.Lower(k, n, a), nil
}

func checkBinom(k, n int, a float64) error {
	if n <= 0 {
		return fmt.Errorf("clopper-pearson: n = %d trials, need at least 1", n)
	}
	if k < 0 || k > n {
		return fmt.Errorf("clopper-pearson: k = %d successes is outside [0, n = %d]", k, n)
	}
	return checkAlpha("clopper-pearson level a", a)
}

// Corrections for scanning many thresholds, reported in EpsilonBound.
const (
	CorrectionNone       = "none"          // one threshold fixed in advance
	CorrectionBonferroni = "bonferroni"    // α divided by the thresholds scanned
	CorrectionHeldOut    = "held-out-half" // threshold chosen on one half, bounded on the other
)

// EpsilonBound is an empirical lower bound on the DP ε of the trained
// model (Nasr et al. 2021), with everything a reader needs to print beside
// it: "ε ≥ Epsilon with confidence Confidence at δ = Delta, Correction over
// ThresholdsScanned thresholds".
type EpsilonBound struct {
	Epsilon    float64 `json:"epsilon_lb"`
	Confidence float64 `json:"confidence"` // 1 − Alpha
	Alpha      float64 `json:"alpha"`      // family-wise significance
	// AlphaPerTest is the level used for the one threshold's interval
	// pair: Alpha, or Alpha/ThresholdsScanned under Bonferroni. Each of
	// FPRUpper and FNRUpper is then taken at AlphaPerTest/2.
	AlphaPerTest      float64 `json:"alpha_per_test"`
	Delta             float64 `json:"delta"`
	ThresholdsScanned int     `json:"thresholds_scanned"`
	Correction        string  `json:"correction"`

	Threshold  float64 `json:"threshold"` // predict member when score ≥ Threshold
	FP         int     `json:"fp"`
	NonMembers int     `json:"non_members"`
	FN         int     `json:"fn"`
	Members    int     `json:"members"`
	FPRUpper   float64 `json:"fpr_ub"`
	FNRUpper   float64 `json:"fnr_ub"`
}

// NasrEpsilon is the empirical ε lower bound of Nasr et al. (2021) for one
// threshold decided in advance, as metrics.md defines it: with one-sided
// Clopper–Pearson upper bounds FPR_ub = ub(fp, nonMembers, α/2) and
// FNR_ub = ub(fn, members, α/2),
//
//	ε_lb = max(0, ln((1−δ−FNR_ub)/FPR_ub), ln((1−δ−FPR_ub)/FNR_ub))
//
// where a term counts only if its numerator is positive. With δ = 0 and
// α = 0.01 this is TensorFlow Privacy's audit of Jagielski et al. (2020).
// The result holds with confidence 1−α.
func NasrEpsilon(fp, nonMembers, fn, members int, alpha, delta float64) (EpsilonBound, error) {
	if err := checkAlpha("alpha", alpha); err != nil {
		return EpsilonBound{}, err
	}
	if err := checkDelta(delta); err != nil {
		return EpsilonBound{}, err
	}
	fpr, err := ClopperPearsonUpper(fp, nonMembers, alpha/2)
	if err != nil {
		return EpsilonBound{}, fmt.Errorf("false positives: %w", err)
	}
	fnr, err := ClopperPearsonUpper(fn, members, alpha/2)
	if err != nil {
		return EpsilonBound{}, fmt.Errorf("false negatives: %w", err)
	}
	eps := 0.0
	if num := 1 - delta - fnr; num > 0 && fpr > 0 {
		eps = math.Max(eps, math.Log(num/fpr))
	}
	if num := 1 - delta - fpr; num > 0 && fnr > 0 {
		eps = math.Max(eps, math.Log(num/fnr))
	}
	return EpsilonBound{
		Epsilon: eps, Confidence: 1 - alpha, Alpha: alpha, AlphaPerTest: alpha,
		Delta: delta, ThresholdsScanned: 1, Correction: CorrectionNone,
		FP: fp, NonMembers: nonMembers, FN: fn, Members: members,
		FPRUpper: fpr, FNRUpper: fnr, Threshold: math.NaN(),
	}, nil
}

// ScanOptions controls the threshold scans.
type ScanOptions struct {
	Alpha float64 // family-wise significance, e.g. 0.05
	Delta float64 // DP δ the bound is stated at
	// MaxThresholds caps the thresholds tried (spread evenly over the ROC
	// as Thin does); fewer thresholds mean a milder Bonferroni penalty.
	// 0 tries every distinct score.
	MaxThresholds int
}

func (o ScanOptions) check() error {
	if err := checkAlpha("alpha", o.Alpha); err != nil {
		return err
	}
	if err := checkDelta(o.Delta); err != nil {
		return err
	}
	if o.MaxThresholds < 0 || o.MaxThresholds == 1 {
		return fmt.Errorf("max thresholds = %d: use 0 for all, or at least 2", o.MaxThresholds)
	}
	return nil
}

// candidates returns the ROC points a scan tries: every finite threshold
// (the +Inf point can only give ε = 0), thinned to MaxThresholds.
func (o ScanOptions) candidates(r ROC) []ROCPoint {
	pts := r.Points[1:]
	if o.MaxThresholds > 0 && len(pts) > o.MaxThresholds {
		thin, _ := ROC{Points: pts}.Thin(o.MaxThresholds)
		return thin
	}
	return pts
}

// ScanEpsilon tries every candidate threshold of the member/non-member
// ROC and returns the largest Nasr bound, made valid for the scan by
// Bonferroni: each threshold is bounded at α/K for K thresholds tried, so
// the maximum holds with family-wise confidence 1−α.
func ScanEpsilon(members, nonMembers []float64, opt ScanOptions) (EpsilonBound, error) {
	if err := opt.check(); err != nil {
		return EpsilonBound{}, err
	}
	r, err := NewROC(members, nonMembers)
	if err != nil {
		return EpsilonBound{}, err
	}
	pts := opt.candidates(r)
	k := len(pts)
	best, err := bestThreshold(pts, opt.Alpha/float64(k), opt.Delta)
	if err != nil {
		return EpsilonBound{}, err
	}
	best.Alpha, best.Confidence = opt.Alpha, 1-opt.Alpha
	best.ThresholdsScanned, best.Correction = k, CorrectionBonferroni
	return best, nil
}

func bestThreshold(pts []ROCPoint, alpha, delta float64) (EpsilonBound, error) {
	var best EpsilonBound
	for i, p := range pts {
		b, err := NasrEpsilon(p.FP, p.FP+p.TN, p.FN, p.TP+p.FN, alpha, delta)
		if err != nil {
			return EpsilonBound{}, err
		}
		b.Threshold = p.Threshold
		if i == 0 || b.Epsilon > best.Epsilon {
			best = b
		}
	}
	return best, nil
}

// HeldOutEpsilon splits each set in two halves by seed (deterministically),
// chooses the threshold with the largest uncorrected bound on the first
// half, and bounds ε at that single threshold on the second half at the
// full α. No multiple-testing correction is needed because the second half
// played no part in the choice; the price is half the data.
// ThresholdsScanned reports how many thresholds were tried on the first
// half.
func HeldOutEpsilon(members, nonMembers []float64, opt ScanOptions, seed uint64) (EpsilonBound, error) {
	if err := opt.check(); err != nil {
		return EpsilonBound{}, err
	}
	if err := ValidateScores("member", "", "score", members); err != nil {
		return EpsilonBound{}, err
	}
	if err := ValidateScores("non-member", "", "score", nonMembers); err != nil {
		return EpsilonBound{}, err
	}
	if len(members) < 2 || len(nonMembers) < 2 {
		return EpsilonBound{}, fmt.Errorf("held-out split needs at least 2 members and 2 non-members, have %d and %d", len(members), len(nonMembers))
	}
	rng := newRand(seed)
	mSel, mEval := splitHalf(rng, members)
	nSel, nEval := splitHalf(rng, nonMembers)
	sel, err := NewROC(mSel, nSel)
	if err != nil {
		return EpsilonBound{}, err
	}
	pts := opt.candidates(sel)
	chosen, err := bestThreshold(pts, opt.Alpha, opt.Delta)
	if err != nil {
		return EpsilonBound{}, err
	}
	t := chosen.Threshold
	fn, fp := 0, 0
	for _, v := range mEval {
		if v < t {
			fn++
		}
	}
	for _, v := range nEval {
		if v >= t {
			fp++
		}
	}
	b, err := NasrEpsilon(fp, len(nEval), fn, len(mEval), opt.Alpha, opt.Delta)
	if err != nil {
		return EpsilonBound{}, err
	}
	b.Threshold = t
	b.ThresholdsScanned, b.Correction = len(pts), CorrectionHeldOut
	return b, nil
}

// splitHalf shuffles a copy of xs and cuts it in two (the first half gets
// the odd element).
func splitHalf(rng interface{ Perm(int) []int }, xs []float64) (a, b []float64) {
	perm := rng.Perm(len(xs))
	h := (len(xs) + 1) / 2
	a, b = make([]float64, 0, h), make([]float64, 0, len(xs)-h)
	for i, p := range perm {
		if i < h {
			a = append(a, xs[p])
		} else {
			b = append(b, xs[p])
		}
	}
	return a, b
}
