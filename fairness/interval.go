package fairness

import (
	"github.com/sandgate/sandgate/internal/binom"
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
	return binom.Lower(k, n, a), binom.Upper(k, n, a)
}

// ci95 is the two-sided 95% Clopper–Pearson interval used for every rate
// this package reports.
func ci95(k, n int) (lo, hi float64) { return ClopperPearson(k, n, 0.025) }
