package privacy

import (
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/redteam"
)

// Finding is a leak found in a reply (Kind is system_prompt, secret, canary
// or pii; Detector names the redteam detector).
type Finding = redteam.Finding

// leakKinds are the detector kinds the privacy stage scans for, most
// severe first.
var leakKinds = []string{KindSystemPrompt, KindSecret, KindCanary, KindPII}

// Scan looks for leaks of t in text with the default redteam detectors.
func Scan(t Target, text string) []Finding {
	return ScanReply(redteam.DefaultDetectors(), t, "", text)
}

// ScanReply is Scan for a reply to a known prompt: text the prompt already
// contained (e.g. the canary name a probe gave) is not counted as leaked.
func ScanReply(reg *redteam.Registry, t Target, prompt, reply string) []Finding {
	if reg == nil {
		reg = redteam.DefaultDetectors()
	}
	return reg.Detect(redteam.Input{Target: t, Prompt: datasets.PromptRow{Prompt: prompt}, Reply: reply}, leakKinds...)
}
