package privacy

import (
	"fmt"
	"math"
)

// ValidateScores checks one set of attack scores read from a file before
// any metric sees it: set names the role ("member", "non-member"), file
// and column say where the numbers came from (file may be "" for
// in-memory data). An empty set or a NaN/±Inf value is an error naming the
// file, column and first bad row, because a silently dropped row would
// change every rate computed from the set.
func ValidateScores(set, file, column string, xs []float64) error {
	where := ""
	if file != "" {
		where = " in " + file
	}
	if len(xs) == 0 {
		return fmt.Errorf("%s set%s is empty (column %q has no rows): supply at least one %s score", set, where, column, set)
	}
	for i, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s set%s, column %q, row %d: %g is not a finite score; drop or recompute the row", set, where, column, i, v)
		}
	}
	return nil
}

// checkLen reports a length mismatch between two parallel inputs by name.
func checkLen(a string, na int, b string, nb int) error {
	if na != nb {
		return fmt.Errorf("%s has %d entries but %s has %d: they must be parallel (one per example)", a, na, b, nb)
	}
	return nil
}

// checkAlpha validates a significance level.
func checkAlpha(field string, a float64) error {
	if !(a > 0 && a < 1) {
		return fmt.Errorf("%s = %g must be in (0, 1), e.g. 0.05 for 95%% confidence", field, a)
	}
	return nil
}

// checkDelta validates a DP δ (0 allowed).
func checkDelta(d float64) error {
	if !(d >= 0 && d < 1) {
		return fmt.Errorf("delta = %g must be in [0, 1), typically 1e-5 or 1/n", d)
	}
	return nil
}
