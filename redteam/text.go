package redteam

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text folding used by the detectors. Models (and converters) mangle leaked
// strings in small ways — curly quotes, zero-width joiners, case, spacing,
// separators — and a detector that only sees byte-exact matches undercounts
// breaches, so every comparison goes through one of these folds.

// invisible reports runes that render as nothing; attackers and converters
// insert them to split a string without changing how it looks.
func invisible(r rune) bool {
	switch r {
	case '\u00ad', '\u180e', '\u200b', '\u200c', '\u200d', '\u200e', '\u200f',
		'\u2060', '\u2061', '\u2062', '\u2063', '\u2064', '\ufeff':
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// foldQuote maps typographic quotes and apostrophes to ASCII so that a lexicon
// written with "'" matches "’".
func foldQuote(r rune) rune {
	switch r {
	case '\u2018', '\u2019', '\u201a', '\u201b', '\u2032', '\u02bc', '`', '\u00b4':
		return '\''
	case '\u201c', '\u201d', '\u201e', '\u201f', '\u2033', '\u00ab', '\u00bb':
		return '"'
	}
	return r
}

// folded is a normalised view of a text with, for every byte of the folded
// form, the byte offset in the original, so evidence can quote the original.
type folded struct {
	s   string
	off []int // len(off) == len(s)+1; off[len(s)] == len(original)
}

// foldLoose lowercases, folds quotes, drops invisible runes and collapses runs
// of whitespace to one space. It keeps punctuation: used where the wording
// matters (refusals, system prompt sentences).
func foldLoose(src string) folded {
	var b strings.Builder
	b.Grow(len(src))
	off := make([]int, 0, len(src)+1)
	space := true // drop leading whitespace
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			// ASCII fast path: most replies are ASCII, and the detectors
			// fold every reply several ways.
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
				if !space {
					b.WriteByte(' ')
					off = append(off, i)
					space = true
				}
			default:
				space = false
				if c == '`' {
					c = '\''
				} else if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b.WriteByte(c)
				off = append(off, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == utf8.RuneError || invisible(r):
		case unicode.IsSpace(r):
			if !space {
				b.WriteByte(' ')
				off = append(off, i)
				space = true
			}
		default:
			space = false
			r = unicode.ToLower(foldQuote(r))
			n := b.Len()
			b.WriteRune(r)
			for j := n; j < b.Len(); j++ {
				off = append(off, i)
			}
		}
		i += size
	}
	s := b.String()
	if strings.HasSuffix(s, " ") {
		s = s[:len(s)-1]
		off = off[:len(off)-1]
	}
	off = append(off, len(src))
	return folded{s: s, off: off}
}

// foldSkeleton keeps only lowercased letters and digits: the fold for secrets
// and canaries, which survive being re-spaced, re-cased or re-punctuated
// ("S-K 1 2 3" still leaks "sk123").
func foldSkeleton(src string) folded {
	var b strings.Builder
	b.Grow(len(src))
	off := make([]int, 0, len(src)+1)
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
				b.WriteByte(c)
				off = append(off, i)
			case 'A' <= c && c <= 'Z':
				b.WriteByte(c + 'a' - 'A')
				off = append(off, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			r = unicode.ToLower(r)
			n := b.Len()
			b.WriteRune(r)
			for j := n; j < b.Len(); j++ {
				off = append(off, i)
			}
		}
		i += size
	}
	off = append(off, len(src))
	return folded{s: b.String(), off: off}
}

// orig returns the original byte span of folded bytes [i, j).
func (f folded) orig(i, j int) (int, int) {
	if j <= i {
		return f.off[i], f.off[i]
	}
	return f.off[i], f.off[j-1] + 1
}

// foldWords is the fold for answer checking: loose fold with punctuation turned
// into spaces, so "Paris." matches "paris"; fullwidth forms read as ASCII.
func foldWords(src string) string {
	var b strings.Builder
	b.Grow(len(src))
	space := true
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
				b.WriteByte(c)
				space = false
			case 'A' <= c && c <= 'Z':
				b.WriteByte(c + 'a' - 'A')
				space = false
			case c == '\'' || c == '`':
				// "don't" == "dont"
			default:
				if !space {
					b.WriteByte(' ')
					space = true
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		i += size
		if invisible(r) {
			continue
		}
		if r >= 0xff01 && r <= 0xff5e {
			r -= 0xfee0
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
			space = false
			continue
		}
		if r == '\'' || foldQuote(r) == '\'' {
			continue
		}
		if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	return strings.TrimSpace(b.String())
}

// tokens splits a text into lowercase alphanumeric words.
func tokens(src string) []string {
	return strings.Fields(foldWords(src))
}

// MaxEvidence bounds Verdict.Evidence and Finding.Evidence, in bytes.
const MaxEvidence = 200

// Excerpt returns at most max bytes of s as valid UTF-8 on one line, cut at a
// rune boundary, with "…" marking a cut.
func Excerpt(s string, max int) string {
	if !plainLine(s) {
		s = normalizeLine(s)
	}
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// plainLine reports whether s is printable ASCII words separated by single
// spaces, which normalizeLine would return unchanged: most evidence (an
// English refusal) is, and is then excerpted without being copied thrice.
func plainLine(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == ' ' && s[i-1] == ' ' {
			return false
		}
	}
	return true
}

// normalizeLine repairs invalid UTF-8, drops invisible runes and collapses
// control characters, line separators and whitespace runs to single spaces.
func normalizeLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		if invisible(r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Truncate cuts s to at most max bytes at a rune boundary, repairing invalid
// UTF-8 first so Parquet readers that validate strings accept the column.
func Truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// around quotes the original text around bytes [i, j) with some context so a
// reader of the evidence sees what the model actually wrote.
func around(src string, i, j int) string {
	const ctx = 40
	lo, hi := i-ctx, j+ctx
	if lo < 0 {
		lo = 0
	}
	if hi > len(src) {
		hi = len(src)
	}
	for lo > 0 && !utf8.RuneStart(src[lo]) {
		lo--
	}
	for hi < len(src) && !utf8.RuneStart(src[hi]) {
		hi++
	}
	return Excerpt(src[lo:hi], MaxEvidence)
}
