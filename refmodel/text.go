package refmodel

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// words splits s into lowercase runs of letters and digits. Everything the
// model "reads" (classifier, retrieval, word-level guardrail rules) goes
// through it, so a character it does not treat as a letter splits a word —
// which is exactly why a zero-width space defeats a filter that reads raw
// text.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// stem folds the plural forms that matter for matching ("instructions" vs
// "instruction", "records" vs "record"); a full stemmer would buy nothing
// on corpora this small.
func stem(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us"):
		return w[:len(w)-1]
	}
	return w
}

// stripInvisible removes characters that render as nothing (zero-width
// space/joiners, word joiner, BOM, soft hyphen, bidi controls, tag
// characters, variation selectors) and turns other control characters into
// spaces, as a tokenizer effectively does.
func stripInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case unicode.Is(unicode.Cf, r), r == '\u034f', r >= '\ufe00' && r <= '\ufe0f', r >= 0xe0100 && r <= 0xe01ef:
			return -1
		case unicode.IsControl(r), r == utf8.RuneError:
			return ' '
		}
		return r
	}, s)
}

var (
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{12,}={0,2}`)
	hexRun    = regexp.MustCompile(`(?i)(?:\\x[0-9a-f]{2}){4,}|\b(?:(?:0x)?[0-9a-f]{2}[ :,]?){6,}`)
	hexNoise  = regexp.MustCompile(`(?i)\\x|0x|[^0-9a-f]`)
	rot13Ask  = regexp.MustCompile(`(?i)\brot[ -]?13\b`)
	// binaryRun is four or more 8-bit groups: text written as binary bytes.
	binaryRun = regexp.MustCompile(`\b[01]{8}(?:[ \t]+[01]{8}){3,}\b`)
	// urlRun is a word with three or more %XX escapes (percent-encoding).
	urlRun = regexp.MustCompile(`(?:[A-Za-z0-9._~+-]*%[0-9A-Fa-f]{2}){3,}[A-Za-z0-9._~+-]*`)
	// caesarAsk finds a request to undo a Caesar shift and its size.
	caesarAsk = regexp.MustCompile(`(?i)\bcaesar\b[^0-9\n]{0,40}?\b(\d{1,2})\b|\b(?:shift(?:ed)?|moved|rotated)\b[^0-9\n]{0,20}?\b(\d{1,2})\b`)
	// reverseAsk finds a request to read text backwards.
	reverseAsk = regexp.MustCompile(`(?i)\b(?:backwards|reversed|reverse (?:it|this|the (?:text|string|characters|order))|right to left|mirror[- ]writing)\b`)
)

// decodeSegments replaces base64 and hex runs that decode to readable text
// by their decoding, and applies rot13 to the payload when the text asks for
// rot13. Rounds repeat so stacked encodings (base64 of hex) unwind too. It
// returns the decoded text and the decoded segments in order of appearance.
func decodeSegments(s string) (string, []string) {
	var decoded []string
	for range 3 {
		changed := false
		s = binaryRun.ReplaceAllStringFunc(s, func(m string) string {
			var b []byte
			for _, f := range strings.Fields(m) {
				v, _ := strconv.ParseUint(f, 2, 8) // the pattern admits only 8-bit groups
				b = append(b, byte(v))
			}
			if !readable(b) {
				return m
			}
			changed = true
			decoded = append(decoded, string(b))
			return string(b)
		})
		s = urlRun.ReplaceAllStringFunc(s, func(m string) string {
			d, err := url.QueryUnescape(m)
			if err != nil || !readable([]byte(d)) || d == m {
				return m
			}
			changed = true
			decoded = append(decoded, d)
			return d
		})
		s = hexRun.ReplaceAllStringFunc(s, func(m string) string {
			trail := m[len(strings.TrimRight(m, " :,")):]
			b, err := hex.DecodeString(hexNoise.ReplaceAllString(m, ""))
			if err != nil || !readable(b) {
				return m
			}
			changed = true
			decoded = append(decoded, string(b))
			return string(b) + trail
		})
		s = base64Run.ReplaceAllStringFunc(s, func(m string) string {
			b, ok := decodeBase64(m)
			if !ok {
				return m
			}
			changed = true
			decoded = append(decoded, string(b))
			return string(b)
		})
		if !changed {
			break
		}
	}
	if loc := rot13Ask.FindStringIndex(s); loc != nil {
		before, after := s[:loc[0]], s[loc[1]:]
		switch q := quoted(after); {
		case q != "":
			plain := rot13(q)
			decoded = append(decoded, plain)
			s = before + s[loc[0]:loc[1]] + strings.Replace(after, q, plain, 1)
		case strings.IndexAny(after, ":\n") >= 0:
			i := strings.IndexAny(after, ":\n")
			plain := rot13(after[i+1:])
			decoded = append(decoded, strings.TrimSpace(plain))
			s = before + s[loc[0]:loc[1]] + after[:i+1] + plain
		case strings.IndexFunc(after, unicode.IsLetter) >= 0:
			plain := rot13(after)
			decoded = append(decoded, strings.TrimSpace(plain))
			s = before + s[loc[0]:loc[1]] + plain
		default: // "<payload> (rot13)"
			plain := rot13(before)
			decoded = append(decoded, strings.TrimSpace(plain))
			s = plain + s[loc[0]:]
		}
	}
	if loc := caesarAsk.FindStringSubmatchIndex(s); loc != nil {
		num := loc[2:4]
		if num[0] < 0 {
			num = loc[4:6]
		}
		if k, err := strconv.Atoi(s[num[0]:num[1]]); err == nil && k%26 != 0 {
			s, decoded = undoAsked(s, loc[0], loc[1], func(x string) string { return caesarShift(x, -k) }, decoded)
		}
	}
	if loc := reverseAsk.FindStringIndex(s); loc != nil {
		s, decoded = undoAsked(s, loc[0], loc[1], reverseRunes, decoded)
	}
	return s, decoded
}

// undoAsked applies a cipher's inverse where the text asked for it (the
// cue at s[a:b]): to whichever nearby span — the quoted text after the
// cue, what follows its colon or line break, the rest of the text, or the
// text before the cue — reads most like English once undone, the way a
// reader tries the obvious places. Nothing changes when no span improves.
func undoAsked(s string, a, b int, undo func(string) string, decoded []string) (string, []string) {
	after := s[b:]
	type cand struct{ lo, hi int }
	var cands []cand
	if q := quoted(after); q != "" {
		if i := strings.Index(after, q); i >= 0 {
			cands = append(cands, cand{b + i, b + i + len(q)})
		}
	}
	if i := strings.IndexAny(after, ":\n"); i >= 0 {
		cands = append(cands, cand{b + i + 1, len(s)})
	}
	cands = append(cands, cand{b, len(s)}, cand{0, a})
	best, gain := cand{}, 0.0
	for _, c := range cands {
		// Spaces and an opening bracket at the edges belong to the carrier.
		for c.lo < c.hi && strings.ContainsRune(" \t\n", rune(s[c.lo])) {
			c.lo++
		}
		for c.hi > c.lo && strings.ContainsRune(" \t\n([", rune(s[c.hi-1])) {
			c.hi--
		}
		span := s[c.lo:c.hi]
		if strings.TrimSpace(span) == "" {
			continue
		}
		if g := englishScore(undo(span)) - englishScore(span); g > gain {
			best, gain = c, g
		}
	}
	if gain < 0.15 {
		return s, decoded
	}
	plain := undo(s[best.lo:best.hi])
	decoded = append(decoded, strings.TrimSpace(plain))
	return s[:best.lo] + plain + s[best.hi:], decoded
}

// commonWords extends the stopwords with everyday request vocabulary: the
// words a reader recognises at a glance when checking a decoding.
var commonWords = func() map[string]bool {
	m := map[string]bool{}
	for w := range stopwords {
		m[w] = true
	}
	for _, w := range words(`all only every nothing else now first last next new old one two three word words text
say said print write type show give tell reply respond answer repeat copy echo output begin start end stop follow
ignore forget confirm include list send make take put keep let help use find read look check decode translate
previous prior above earlier below following instruction instructions rule rules prompt system message code secret
password key token customer customers record records name email phone number account card money bank day time
exactly verbatim only here please thanks hello good bad yes okay ok sure right way thing things people work`) {
		m[w] = true
	}
	return m
}()

// englishScore is the share of a text's words a reader recognises at a
// glance: near 0.5 for prose and requests, near 0 for ciphertext.
func englishScore(s string) float64 {
	ws := words(s)
	if len(ws) == 0 {
		return 0
	}
	n := 0
	for _, w := range ws {
		if commonWords[w] {
			n++
		}
	}
	return float64(n) / float64(len(ws))
}

// caesarShift moves ASCII letters k places (k may be negative).
func caesarShift(s string, k int) string {
	k = ((k % 26) + 26) % 26
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return 'a' + (r-'a'+rune(k))%26
		case r >= 'A' && r <= 'Z':
			return 'A' + (r-'A'+rune(k))%26
		}
		return r
	}, s)
}

// reverseRunes reads a text backwards, rune by rune.
func reverseRunes(s string) string {
	rs := []rune(s)
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return string(rs)
}

func decodeBase64(m string) ([]byte, bool) {
	body := strings.TrimRight(m, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(body); err == nil && readable(b) {
			return b, true
		}
	}
	return nil, false
}

// readable reports whether b looks like text a person wrote rather than the
// bytes an ordinary word yields when decoded by mistake.
func readable(b []byte) bool {
	if len(b) < 4 || !utf8.Valid(b) {
		return false
	}
	var n, letters, odd int
	for _, r := range string(b) {
		n++
		switch {
		case unicode.IsLetter(r) || r == ' ':
			letters++
		case r == '\n' || r == '\t':
		case unicode.IsControl(r) || r == utf8.RuneError || !unicode.IsPrint(r):
			odd++
		}
	}
	return odd == 0 && letters*10 >= n*5
}

func rot13(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return 'a' + (r-'a'+13)%26
		case r >= 'A' && r <= 'Z':
			return 'A' + (r-'A'+13)%26
		}
		return r
	}, s)
}

// homoglyphs maps look-alike letters from other scripts to the Latin letter
// they imitate.
var homoglyphs = map[rune]rune{
	'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't',
	'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j', 'ԁ': 'd', 'ɡ': 'g', 'ӏ': 'l', 'ԛ': 'q', 'ԝ': 'w', 'ү': 'y',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T',
	'У': 'Y', 'Х': 'X', 'Ѕ': 'S', 'І': 'I', 'Ј': 'J',
	'α': 'a', 'ο': 'o', 'ρ': 'p', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'τ': 't', 'υ': 'u', 'χ': 'x',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
	'ı': 'i', 'ℓ': 'l', '‘': '\'', '’': '\'', '“': '"', '”': '"',
}

var leet = map[rune]rune{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'}

// fold maps every rune to the plain lowercase Latin letter it stands for:
// homoglyphs, fullwidth and mathematical letters, and leetspeak inside words
// that mix letters and digits. The mapping is rune-for-rune so positions in
// the folded text are positions in the original.
func fold(s string) []rune {
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case homoglyphs[r] != 0:
			r = homoglyphs[r]
		case r >= 0xff01 && r <= 0xff5e: // fullwidth ASCII
			r -= 0xfee0
		case r >= 0x1d400 && r <= 0x1d6a3: // mathematical alphanumeric letters
			k := (r - 0x1d400) % 52
			if k < 26 {
				r = 'a' + k
			} else {
				r = 'a' + k - 26
			}
		case r >= 0x1d7ce && r <= 0x1d7ff:
			r = '0' + (r-0x1d7ce)%10
		}
		rs[i] = unicode.ToLower(r)
	}
	// Leetspeak: only inside a word that also has letters, so numbers,
	// amounts and dates stay numbers.
	isWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '@' || r == '$' }
	for i := 0; i < len(rs); {
		if !isWord(rs[i]) {
			i++
			continue
		}
		j := i
		letters, digits := 0, 0
		for j < len(rs) && isWord(rs[j]) {
			if unicode.IsLetter(rs[j]) {
				letters++
			} else if leet[rs[j]] != 0 {
				digits++
			}
			j++
		}
		if letters > 0 && digits > 0 && j-i >= 3 {
			for k := i; k < j; k++ {
				if l := leet[rs[k]]; l != 0 {
					rs[k] = l
				}
			}
		}
		i = j
	}
	return rs
}

// quoted returns the first quoted span of s: "…", “…”, «…», `…` (or a fenced
// block), or '…' when the apostrophe opens a word rather than sits inside
// one (so "I'm" is not a quote).
func quoted(s string) string {
	if i := strings.Index(s, "```"); i >= 0 {
		rest := s[i+3:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 && !strings.ContainsAny(rest[:nl], " `") {
			rest = rest[nl+1:] // language tag
		}
		if j := strings.Index(rest, "```"); j >= 0 {
			return strings.Trim(rest[:j], "\n")
		}
	}
	rs := []rune(s)
	unclosed := map[rune]bool{} // closers already known to be absent: keeps this linear
	for i, r := range rs {
		var closer rune
		switch r {
		case '"':
			closer = '"'
		case '“':
			closer = '”'
		case '«':
			closer = '»'
		case '`':
			closer = '`'
		case '\'', '‘':
			if i > 0 && (unicode.IsLetter(rs[i-1]) || unicode.IsDigit(rs[i-1])) {
				continue
			}
			closer = '\''
			if r == '‘' {
				closer = '’'
			}
		default:
			continue
		}
		if unclosed[closer] {
			continue
		}
		found := false
		for j := i + 1; j < len(rs); j++ {
			if rs[j] != closer {
				continue
			}
			if closer == '\'' && j+1 < len(rs) && unicode.IsLetter(rs[j+1]) {
				continue // an apostrophe inside the quote: don't
			}
			if j > i+1 {
				return string(rs[i+1 : j])
			}
			found = true
			break
		}
		if !found && closer != '\'' {
			unclosed[closer] = true
		}
	}
	return ""
}

// lexicon glosses foreign words and phrases into English, longest phrase
// first, so a request in French is understood like the English one.
type lexicon struct {
	phrases map[string][]string // first word -> candidate phrases, longest first
	gloss   map[string][]string // phrase key (space-joined words) -> English words
}

func (l *lexicon) translate(ws []string) []string {
	out := make([]string, 0, len(ws))
	for i := 0; i < len(ws); {
		matched := false
		for _, p := range l.phrases[ws[i]] {
			pw := strings.Fields(p)
			if i+len(pw) > len(ws) || strings.Join(ws[i:i+len(pw)], " ") != p {
				continue
			}
			out = append(out, l.gloss[p]...)
			i += len(pw)
			matched = true
			break
		}
		if !matched {
			out = append(out, ws[i])
			i++
		}
	}
	return out
}

// understanding is what the model makes of the user's text.
type understanding struct {
	raw     string   // as received
	decoded string   // invisible characters stripped, encodings decoded; used for verbatim payloads
	words   []string // decoded, folded, translated, lowercase words; what the classifier and retrieval read
	text    string   // lowercase folded decoded text, punctuation kept; for character-level rules
	pieces  []string // decoded segments (base64/hex/rot13), for "decode this" requests
}

func (m *Model) understand(raw string) understanding {
	decoded, pieces := decodeSegments(stripInvisible(raw))
	folded := string(fold(decoded))
	return understanding{
		raw:     raw,
		decoded: decoded,
		words:   m.lex.translate(words(folded)),
		text:    folded,
		pieces:  pieces,
	}
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }
