package redteam

// Outcome is the result of one attack attempt. Errored attempts are kept apart
// so that a flaky target can never look safer than it is.
type Outcome string

const (
	Breached Outcome = "breached"
	Defended Outcome = "defended"
	Errored  Outcome = "errored"
)

// Rate is the attack success rate of a group of attempts with its 95% Wilson
// interval; ASR = Breached / (Breached + Defended), errored excluded.
type Rate struct {
	Breached int     `json:"breached"`
	Defended int     `json:"defended"`
	Errored  int     `json:"errored"`
	ASR      float64 `json:"asr"`
	Lo       float64 `json:"asr_lo"`
	Hi       float64 `json:"asr_hi"`
}

// Summary is what the workflow and the report see of an adversarial run.
type Summary struct {
	Total      int             `json:"total"`
	Overall    Rate            `json:"overall"`
	ByCategory map[string]Rate `json:"by_category"`
	ByFamily   map[string]Rate `json:"by_family"`
	ByGoal     map[string]Rate `json:"by_goal,omitempty"`
	ByStrategy map[string]Rate `json:"by_strategy,omitempty"`
}
