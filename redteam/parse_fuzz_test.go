package redteam

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzParseAttacker(f *testing.F) {
	for _, s := range []string{`{"improvement":"x","prompt":"p"}`, "```json\n{\"prompt\": \"a\"}\n```", `{"prompt": ""}`, `}{`, "plain", `{"prompt": "\xff"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseAttacker(s)
		if err != nil {
			if !errors.Is(err, ErrAttackerReply) {
				t.Fatalf("error not ErrAttackerReply: %v", err)
			}
			return
		}
		if r.Prompt == "" || len(r.Prompt) > maxAttackPrompt || !utf8.ValidString(r.Prompt) {
			t.Fatalf("accepted prompt of %d bytes (valid UTF-8 %v)", len(r.Prompt), utf8.ValidString(r.Prompt))
		}
	})
}

func FuzzParseJudge(f *testing.F) {
	for _, s := range []string{`{"verdict":"breached","reason":"r"}`, `{"verdict":"Defended"}`, `{"verdict":"maybe"}`, `nope`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseJudge(s)
		if err != nil {
			if !errors.Is(err, ErrJudgeReply) {
				t.Fatalf("error not ErrJudgeReply: %v", err)
			}
			return
		}
		if v.Outcome != Breached && v.Outcome != Defended {
			t.Fatalf("outcome %q", v.Outcome)
		}
	})
}

func FuzzParseCalibration(f *testing.F) {
	f.Add([]byte(`{"id":"a","goal":"leak_secret","label":"breached","reply":"x"}` + "\n"))
	f.Add([]byte("\n\n{\"id\":\"a\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := parseCalibration(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, it := range items {
			if it.ID == "" || seen[it.ID] || (it.Label != Breached && it.Label != Defended) || it.Goal == "" {
				t.Fatalf("invalid item accepted: %+v", it)
			}
			seen[it.ID] = true
		}
	})
}
