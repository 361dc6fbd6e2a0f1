package redteam

import "testing"

// FuzzPlainLine checks Excerpt's fast path: a text plainLine accepts is one
// the full normalisation would have left unchanged.
func FuzzPlainLine(f *testing.F) {
	for _, s := range []string{"", "I'm sorry, but I can't.", " lead", "trail ", "two  spaces", "tab\there", "caf\u00e9", "a\u200bb", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainLine(s) && normalizeLine(s) != s {
			t.Fatalf("plainLine accepted %q, which normalises to %q", s, normalizeLine(s))
		}
	})
}
