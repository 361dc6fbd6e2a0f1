package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical returns the canonical encoding of one JSON text, as defined by
// RFC 8785 (JSON Canonicalization Scheme): object members sorted by the
// UTF-16 code units of their names, no insignificant whitespace, strings
// with the minimal escapes, numbers as IEEE-754 doubles in ECMAScript
// form. Hashes over audit records use it so that anyone can recompute them
// with an off-the-shelf JCS library.
//
// It refuses what would make a hash ambiguous: invalid UTF-8, duplicate
// member names, trailing data and numbers outside the double range.
func Canonical(b []byte) ([]byte, error) {
	v, err := decodeStrict(b)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := writeCanonical(&out, v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// member keeps the order members were read in; sorting happens on write.
type member struct {
	name  string
	value any
}

// decodeStrict parses one JSON text into nil, bool, string, json.Number,
// []any or []member. encoding/json would silently keep the last of two
// duplicate names, which lets two parsers disagree about a record, so the
// walk is done token by token.
func decodeStrict(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("audit: JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: parse JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("audit: parse JSON: trailing data after the value")
	}
	return v, nil
}

// maxDepth bounds recursion on hostile input (fuzzing, tampered records).
const maxDepth = 64

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var obj []member
			seen := map[string]bool{}
			for dec.More() {
				nt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				name, ok := nt.(string)
				if !ok {
					return nil, fmt.Errorf("object member name is %v, not a string", nt)
				}
				if seen[name] {
					return nil, fmt.Errorf("duplicate member %q", name)
				}
				seen[name] = true
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, member{name, v})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			if obj == nil {
				obj = []member{}
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil // nil, bool, string, json.Number
	}
}

func writeCanonical(w *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(t))
	case string:
		writeString(w, t)
	case json.Number:
		s, err := formatNumber(string(t))
		if err != nil {
			return err
		}
		w.WriteString(s)
	case []any:
		w.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := writeCanonical(w, e); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case []member:
		sorted := slices.Clone(t)
		slices.SortFunc(sorted, func(a, b member) int { return compareUTF16(a.name, b.name) })
		w.WriteByte('{')
		for i, m := range sorted {
			if i > 0 {
				w.WriteByte(',')
			}
			writeString(w, m.name)
			w.WriteByte(':')
			if err := writeCanonical(w, m.value); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	default:
		return fmt.Errorf("audit: canonical JSON: unexpected %T", v)
	}
	return nil
}

// compareUTF16 orders names the way RFC 8785 does; it differs from Go's
// byte order only for names mixing supplementary-plane and U+E000–U+FFFF
// characters, but an auditor's implementation must agree on every input.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func writeString(w *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	w.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			w.WriteString(`\"`)
		case '\\':
			w.WriteString(`\\`)
		case '\b':
			w.WriteString(`\b`)
		case '\f':
			w.WriteString(`\f`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		default:
			if r < 0x20 {
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[r>>4])
				w.WriteByte(hexDigits[r&0xf])
			} else {
				w.WriteRune(r)
			}
		}
	}
	w.WriteByte('"')
}

// formatNumber renders a JSON number as ECMAScript's Number.prototype.toString
// does (RFC 8785 section 3.2.2.3): shortest round-trip digits, exponent form
// below 1e-6 and from 1e21, "-0" as "0".
func formatNumber(lit string) (string, error) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("audit: canonical JSON: number %s is outside the IEEE-754 double range", lit)
	}
	if f == 0 {
		return "0", nil
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	// Go writes "1e-07" and "1e+21"; ECMAScript writes "1e-7" and "1e+21".
	if i := len(s) - 4; i >= 0 && s[i] == 'e' && s[i+2] == '0' {
		s = s[:i+2] + s[i+3:]
	}
	return s, nil
}
