package fairness

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// ClopperPearson returns the exact two-sided interval for k successes in n
// trials at confidence 1−2a (a = 0.025 gives 95%), following the one-sided
// bounds of reference/metrics.md: ub(k,n) = BetaInv(1−a; k+1, n−k) with
// ub(n,n) = 1 and lb(k,n) = BetaInv(a; k, n−k+1) with lb(0,n) = 0. The edge
// cases are closed forms so that rounding in the incomplete-beta inversion
// cannot move them. With n == 0 nothing is known and the interval is [0, 1].
func ClopperPearson(k, n int, a float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	k = min(max(k, 0), n)
	nf, kf := float64(n), float64(k)
	switch k {
	case 0:
		lo, hi = 0, 1-math.Pow(a, 1/nf)
	case n:
		lo, hi = math.Pow(a, 1/nf), 1
	default:
		lo = mathext.InvRegIncBeta(kf, nf-kf+1, a)
		hi = mathext.InvRegIncBeta(kf+1, nf-kf, 1-a)
	}
	return lo, hi
}

// ci95 is the two-sided 95% Clopper–Pearson interval used for every rate
// this package reports.
func ci95(k, n int) (lo, hi float64) { return ClopperPearson(k, n, 0.025) }
