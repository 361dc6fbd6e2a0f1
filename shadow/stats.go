package shadow

import (
	"math"
	"slices"
)

// Percentile is the nearest-rank percentile of xs: the smallest value such
// that at least p% of the sample is <= it, i.e. sorted[ceil(p/100·n) − 1]
// (p <= 0 gives the minimum). It never interpolates, so a reported p95 is a
// latency some request actually had. xs need not be sorted; an empty sample
// gives 0.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// MannWhitneyU tests whether a and b come from the same distribution
// (two-sided). u is U₁, the statistic of the first sample: R₁ − n₁(n₁+1)/2
// with average ranks for ties. p uses the normal approximation with tie
// correction and continuity correction, which is what
// scipy.stats.mannwhitneyu(a, b, method="asymptotic") computes:
//
//	z = (max(U₁, U₂) − n₁n₂/2 − 0.5) / sqrt(n₁n₂/12 · ((n+1) − Σ(t³−t)/(n(n−1))))
//	p = min(1, 2·(1 − Φ(z)))
//
// When either sample is empty, or every value is tied, there is no evidence
// of a difference and p is 1 (scipy would raise or return NaN; a NaN would
// also not survive JSON).
func MannWhitneyU(a, b []float64) (u, p float64) {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	var r1, tieTerm float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		// Ranks i+1 … j share their mean.
		avg := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += avg
			}
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	f1, f2 := float64(n1), float64(n2)
	n := f1 + f2
	u1 := r1 - f1*(f1+1)/2
	u2 := f1*f2 - u1
	sigma2 := f1 * f2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if !(sigma2 > 0) {
		return u1, 1
	}
	z := (math.Max(u1, u2) - f1*f2/2 - 0.5) / math.Sqrt(sigma2)
	p = 2 * normalSF(z)
	return u1, math.Min(1, math.Max(0, p))
}

// normalSF is 1 − Φ(z), via erfc to keep precision in the far tail.
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }
