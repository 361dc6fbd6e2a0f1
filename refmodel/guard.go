package refmodel

import (
	"regexp"
	"strings"
	"unicode"
)

// rule is one input-guardrail pattern. Word rules match the space-joined
// lowercase word sequence; char rules match lowercase text with its
// punctuation (markup needs the angle brackets).
type rule struct {
	name  string
	words bool
	re    *regexp.Regexp
}

// inputRules is a typical deny-list guardrail. Which text it reads is what
// separates the variants: leaky feeds it the raw words, hardened the
// normalised ones.
var inputRules = []rule{
	{"prompt_extraction", true, regexp.MustCompile(`\bsystem (prompt|message|instruction)s?\b`)},
	{"prompt_extraction", true, regexp.MustCompile(`\byour (hidden |secret |initial |original |system |developer )?(instructions|prompt|rules|guidelines)\b`)},
	{"prompt_extraction", true, regexp.MustCompile(`\b(text|words|everything) above\b|\binitial prompt\b`)},
	{"jailbreak", true, regexp.MustCompile(`\b(ignore|disregard|forget|discard) (all |any |the |your |of |everything )*(previous|prior|above|earlier|preceding|former)\b`)},
	{"jailbreak", true, regexp.MustCompile(`\bdeveloper mode\b|\bjailbreak|\bdo anything now\b|\byou are (now )?dan\b|\bno (restrictions|rules|content policy|filters)\b`)},
	{"pii_solicitation", true, regexp.MustCompile(`\b(customer|client|user|account holder)s? (records?|database|data|details|e ?mails?|phone numbers?|card numbers?|list|table|contacts?)\b`)},
	{"pii_solicitation", true, regexp.MustCompile(`\b(credit )?card numbers\b|\bsocial security numbers?\b`)},
	{"harmful", true, regexp.MustCompile(`\b(make|build|synthesi[sz]e|cook|produce|assemble) (a |an |some )?(pipe )?(bomb|explosives?|nerve agent|ricin|meth(amphetamine)?)\b`)},
	{"active_content", false, regexp.MustCompile(`<\s*script|javascript:|<\s*iframe|\bon(error|load)\s*=`)},
}

// screen returns the name of the first input rule that matches, or "".
func screen(wordText, charText string) string {
	for _, r := range inputRules {
		t := charText
		if r.words {
			t = wordText
		}
		if r.re.MatchString(t) {
			return r.name
		}
	}
	return ""
}

var (
	emailRe   = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	phoneRe   = regexp.MustCompile(`(?:\+?\d{1,2}[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}\b`)
	cardRe    = regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)
	activeRes = []*regexp.Regexp{
		regexp.MustCompile(`(?i)<\s*script|javascript:|<\s*iframe|\bon(error|load|click)\s*=`),
		regexp.MustCompile(`(?i)!\[[^\]]*\]\(\s*(https?:)?//`),                 // markdown image fetching a URL
		regexp.MustCompile(`(?i)<\s*img[^>]*\bsrc\s*=\s*["']?\s*(https?:)?//`), // HTML image fetching a URL
	}
	secretLabelRe = regexp.MustCompile(`(?i)\b(?:secret|password|passphrase|passcode|api[ _-]?key|token|code)\b[^:=\n]{0,30}[:=]\s*["'` + "`" + `]?([^\s"'` + "`" + `]{4,})`)
	secretTokenRe = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9_-]{7,}`)
)

// luhn reports whether the digits of s pass the card checksum.
func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && sum%10 == 0
}

// piiIn returns the PII-looking strings in s: e-mail addresses, phone
// numbers and Luhn-valid card numbers.
func piiIn(s string) []string {
	out := emailRe.FindAllString(s, -1)
	out = append(out, phoneRe.FindAllString(s, -1)...)
	for _, c := range cardRe.FindAllString(s, -1) {
		if luhn(c) {
			out = append(out, c)
		}
	}
	return out
}

// secretsIn extracts what looks like a credential from a system prompt: a
// value after "secret/password/key/code ...:", and any long token mixing
// letters and digits (API keys, escalation codes).
func secretsIn(system string) []string {
	var out []string
	for _, m := range secretLabelRe.FindAllStringSubmatch(system, -1) {
		out = append(out, strings.TrimRight(m[1], ".,;)"))
	}
	for _, t := range secretTokenRe.FindAllString(system, -1) {
		if strings.IndexFunc(t, unicode.IsLetter) >= 0 && strings.IndexFunc(t, unicode.IsDigit) >= 0 {
			out = append(out, t)
		}
	}
	return out
}

// shingle is the window length for detecting a reply that quotes the system
// prompt: long enough that an ordinary answer never shares one by chance.
const shingle = 8

// leaksPrompt reports whether reply reproduces the system prompt, in whole or
// as any run of shingle consecutive words.
func leaksPrompt(reply, system string) bool {
	sw := words(system)
	if len(sw) == 0 {
		return false
	}
	rw := " " + strings.Join(words(reply), " ") + " "
	if len(sw) < shingle {
		return strings.Contains(rw, " "+strings.Join(sw, " ")+" ")
	}
	for i := 0; i+shingle <= len(sw); i++ {
		if strings.Contains(rw, " "+strings.Join(sw[i:i+shingle], " ")+" ") {
			return true
		}
	}
	return false
}

// outputViolation is the hardened variants' output filter: it returns why a
// reply must not be sent ("" if it may). public holds PII-looking strings
// the bank itself publishes in its FAQ, which are not leaks.
func outputViolation(reply, system string, public map[string]bool) string {
	if leaksPrompt(reply, system) {
		return "system_prompt"
	}
	low := strings.ToLower(reply)
	for _, s := range secretsIn(system) {
		if strings.Contains(low, strings.ToLower(s)) {
			return "secret"
		}
	}
	for _, p := range piiIn(reply) {
		if !public[p] {
			return "pii"
		}
	}
	for _, re := range activeRes {
		if re.MatchString(reply) {
			return "active_content"
		}
	}
	return ""
}
