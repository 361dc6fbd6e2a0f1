// Package binom holds the exact (Clopper–Pearson) confidence bounds on a
// binomial proportion that fairness, robustness and privacy all report, so
// that one definition — with its closed-form edge cases — serves them all
// (reference/metrics.md):
//
//	ub(k,n) = BetaInv(1−a; k+1, n−k), ub(n,n) = 1, ub(0,n) = 1 − a^{1/n}
//	lb(k,n) = BetaInv(a; k, n−k+1),   lb(0,n) = 0, lb(n,n) = a^{1/n}
//
// Callers check their own inputs: here 0 ≤ k ≤ n, n ≥ 1 and 0 < a < 1.
package binom

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Upper is the one-sided upper bound at level a for k successes in n
// trials: the true proportion exceeds it with probability at most a.
func Upper(k, n int, a float64) float64 {
	switch k {
	case n:
		return 1
	case 0:
		// 1 − a^{1/n} without the cancellation of a direct subtraction.
		return -math.Expm1(math.Log(a) / float64(n))
	}
	return mathext.InvRegIncBeta(float64(k+1), float64(n-k), 1-a)
}

// Lower is the one-sided lower bound at level a.
func Lower(k, n int, a float64) float64 {
	switch k {
	case 0:
		return 0
	case n:
		return math.Exp(math.Log(a) / float64(n))
	}
	return mathext.InvRegIncBeta(float64(k), float64(n-k+1), a)
}
