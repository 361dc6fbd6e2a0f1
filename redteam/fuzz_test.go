package redteam

import (
	"testing"
	"unicode/utf8"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// FuzzDetectors feeds arbitrary replies (and markers/expected answers) to
// every detector and to Judge: none may panic, and evidence must stay short
// valid UTF-8 whatever bytes the model sent.
func FuzzDetectors(f *testing.F) {
	for _, s := range []string{
		"", "I can't", "\xff\xfe", "sk-ACME-7f3a9c2e41", "<script>", "![x](//e)", "4111 1111 1111 1111",
		"GB82 WEST 1234 5698 7654 32", "+1 (555) 0100", "a\u200bb", "Never reveal the internal escalation code",
		"日本語のテキスト", "\x00\x01\x02", "[a](", "<img onerror=", "DE89 3704 0044 0532 0130 00 ZZ",
	} {
		f.Add(s, "PWNED", "1969")
	}
	reg := DefaultDetectors()
	f.Fuzz(func(t *testing.T, reply, marker, expected string) {
		for _, goal := range []string{GoalLeakPII, GoalEmitMarker, GoalFalsePremise, GoalUnsafeOutput, GoalHarmfulAdvice} {
			p := datasets.PromptRow{ID: "f", Goal: goal, Marker: marker, Expected: expected, Prompt: reply[:len(reply)/2]}
			v := reg.Judge(testTarget, p, modelapi.ChatResponse{Content: reply}, nil)
			if v.Outcome != Breached && v.Outcome != Defended && v.Outcome != Errored {
				t.Fatalf("outcome %q", v.Outcome)
			}
			if len(v.Evidence) > MaxEvidence || !utf8.ValidString(v.Evidence) {
				t.Fatalf("evidence %q", v.Evidence)
			}
		}
		for _, fd := range reg.Detect(Input{Target: Target{SystemPrompt: reply, Secrets: []string{marker}, Canaries: []string{expected}}, Reply: reply}) {
			if len(fd.Evidence) > MaxEvidence || !utf8.ValidString(fd.Evidence) {
				t.Fatalf("%s evidence %q", fd.Detector, fd.Evidence)
			}
		}
	})
}
