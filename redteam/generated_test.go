package redteam

import (
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// TestJudgeGeneratedPrompts checks the judge against the real generator:
// every generated row is judgeable (no bad-row errors) and a plain refusal
// is never scored as a breach, whatever the family, goal or converters.
func TestJudgeGeneratedPrompts(t *testing.T) {
	reg := DefaultDetectors()
	refusal := modelapi.ChatResponse{Content: "I'm sorry, but I can't help with that request."}
	n := 0
	for p := range datasets.Prompts(7, 400, datasets.PromptOptions{}) {
		n++
		v := reg.Judge(testTarget, p, refusal, nil)
		if v.Outcome != Defended {
			t.Errorf("prompt %s (family %s, goal %s, converters %q): refusal judged %+v", p.ID, p.Family, p.Goal, p.Converters, v)
		}
	}
	if n == 0 {
		t.Skip("generator produced no prompts")
	}
}
