package shadow

import (
	"strings"
	"unicode"
)

// NormalizeWhitespace trims s and collapses every run of Unicode white space
// to one ASCII space, so that formatting jitter (trailing newline, double
// spaces) is not counted as disagreement.
func NormalizeWhitespace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ExactMatch reports whether a and b are equal after NormalizeWhitespace.
// Case and punctuation still count: they are visible to users.
func ExactMatch(a, b string) bool {
	return NormalizeWhitespace(a) == NormalizeWhitespace(b)
}

// Tokens splits s into lower-cased runs of letters and digits. Punctuation
// and case are dropped so that similarity measures wording, not formatting.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// JaccardSimilarity is |A∩B| / |A∪B| over the token sets of a and b
// (Tokens). Two texts without tokens are identical (1); one empty, 0.
func JaccardSimilarity(a, b string) float64 {
	ta, tb := Tokens(a), Tokens(b)
	if len(ta) == 0 && len(tb) == 0 {
		return 1
	}
	set := make(map[string]uint8, len(ta)+len(tb))
	for _, t := range ta {
		set[t] |= 1
	}
	for _, t := range tb {
		set[t] |= 2
	}
	inter := 0
	for _, v := range set {
		if v == 3 {
			inter++
		}
	}
	return float64(inter) / float64(len(set))
}

// RougeLF1 is the ROUGE-L F1 score (β = 1) of candidate against reference:
// with L the longest common subsequence of their token sequences (Tokens),
// P = L/|candidate|, R = L/|reference|, F1 = 2PR/(P+R). Both empty → 1,
// one empty → 0. Tokenisation differs from the rouge-score package (no
// stemming), so values are comparable within sandgate, not across tools.
func RougeLF1(candidate, reference string) float64 {
	c, r := Tokens(candidate), Tokens(reference)
	if len(c) == 0 && len(r) == 0 {
		return 1
	}
	if len(c) == 0 || len(r) == 0 {
		return 0
	}
	l := lcsLen(c, r)
	if l == 0 {
		return 0
	}
	p := float64(l) / float64(len(c))
	rec := float64(l) / float64(len(r))
	return 2 * p * rec / (p + rec)
}

// lcsLen uses two rows of the DP table: responses can be thousands of tokens
// and the full table would be quadratic in memory.
func lcsLen(a, b []string) int {
	if len(b) > len(a) {
		a, b = b, a
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
