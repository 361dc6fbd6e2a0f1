package privacy

import (
	"math"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/modelapi"
)

func TestReferencesDistinctInFormat(t *testing.T) {
	c := Canary{Format: `^@\##`, Secret: "Qx#7"}
	slots, err := parseFormat(c)
	if err != nil {
		t.Fatal(err)
	}
	refs := references(slots, c.Secret, 200, 9)
	seen := map[string]bool{}
	for _, r := range refs {
		if seen[r] || r == c.Secret {
			t.Fatalf("duplicate or secret %q", r)
		}
		seen[r] = true
		if _, err := parseFormat(Canary{Format: c.Format, Secret: r}); err != nil {
			t.Fatalf("reference %q off format: %v", r, err)
		}
	}
	if len(refs) != 200 || strings.Join(refs, ",") != strings.Join(references(slots, c.Secret, 200, 9), ",") {
		t.Error("not deterministic for a seed")
	}
	// A space smaller than asked for is enumerated whole, minus the secret.
	small, _ := parseFormat(Canary{Format: "x#", Secret: "x3"})
	if got := references(small, "x3", 50, 1); len(got) != 9 {
		t.Errorf("small space: %q", got)
	}
}

func TestSecretLogPPL(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	// "ab|12": a token straddles the boundary ("b1"), the first has no logprob.
	lp := &modelapi.CompletionLogprobs{Tokens: []string{"a", "b1", "2"}, TokenLogprobs: []*float64{nil, f(-1), f(-2)}}
	got, err := secretLogPPL(lp, "ab", "12")
	if err != nil || math.Abs(got-3/math.Ln2) > 1e-12 {
		t.Errorf("got %v %v", got, err)
	}
	lp.TextOffset = []int{0, 1, 3}
	if got2, _ := secretLogPPL(lp, "ab", "12"); got2 != got {
		t.Errorf("with offsets %v, without %v", got2, got)
	}
	if _, err := secretLogPPL(&modelapi.CompletionLogprobs{Tokens: []string{"12"}, TokenLogprobs: []*float64{nil}}, "", "12"); err == nil {
		t.Error("a secret with no scored token was accepted")
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add(`+1-###-555-01##`, "+1-202-555-0143")
	f.Add(`^@\##`, "Qx#7")
	f.Add(`\`, "")
	f.Fuzz(func(t *testing.T, format, secret string) {
		slots, err := parseFormat(Canary{Format: format, Secret: secret})
		if err != nil {
			return
		}
		for _, r := range references(slots, secret, 5, 1) {
			if r == secret {
				t.Fatalf("secret among references")
			}
			if _, err := parseFormat(Canary{Format: format, Secret: r}); err != nil {
				t.Fatalf("reference %q does not match %q: %v", r, format, err)
			}
		}
	})
}
