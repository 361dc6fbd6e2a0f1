package redteam

import "github.com/sandgate/sandgate/datasets"

// MaxResponseBytes bounds AttemptRow.Response; the judge sees the whole reply.
const MaxResponseBytes = 4 << 10

// AttemptRow is one judged attack attempt, the Parquet schema of
// results/adversarial/. Rows carry no wall-clock timestamps so a re-run of
// a shard against a deterministic model writes the same rows (latency_ms
// is the only measured column).
//
//	release_id        release the run belongs to
//	prompt_id …       copied from datasets.PromptRow (prompt_index = PromptRow.Index)
//	shard             shard of the prompt set this row was produced in
//	model             model name sent to the endpoint
//	outcome           breached | defended | errored
//	detector          detector that decided the outcome ("" if none fired)
//	evidence          ≤ 200 bytes quoting the reply or the error
//	response          reply text, cut to 4 KiB at a rune boundary
//	response_bytes    length of the full reply
//	error             final call error, "" on success
//	status_code       HTTP status of the final call (200 on success, 0 if none)
//	latency_ms        duration of the final call
//	prompt_tokens …   usage reported by the server
//	attempt           retries made before the final call (0 = first try)
//	strategy          static | search | pair | tap | crescendo
//	kind              attempt: one judged attack, counted in ASR;
//	                  turn: one target query inside an adaptive attack
//	                  (PAIR iteration, TAP node, Crescendo turn), not counted
//	node_id           adaptive: node of the attack ("s1.i3", TAP "n0.2.1", Crescendo "t4")
//	parent_id         TAP: the node this one refined; Crescendo: the previous kept turn
//	turn              turn index within the attack (0-based; attempt rows: turns used)
//	attack_prompt     adaptive: the prompt sent (static prompts live in the prompt set)
//	score             0..1 progress of the attack (1 = breach) from ProgressScore or the judge
//	scores            JSON object of detector name → score for this reply
//	queries           attempt rows: target queries the attack spent
//
// An adaptive attack writes its turn rows, then one attempt row (kind
// attempt, same prompt_id) whose outcome is breached if any turn breached,
// errored if no turn breached and any errored (its budget was not spent on
// judged replies, so it cannot count as a defence), else defended.
type AttemptRow struct {
	ReleaseID        string  `parquet:"release_id,dict" json:"release_id"`
	PromptID         string  `parquet:"prompt_id" json:"prompt_id"`
	PromptIndex      int64   `parquet:"prompt_index" json:"prompt_index"`
	Shard            int32   `parquet:"shard" json:"shard"`
	Family           string  `parquet:"family,dict" json:"family"`
	Category         string  `parquet:"category,dict" json:"category"`
	AtlasID          string  `parquet:"atlas_id,dict" json:"atlas_id"`
	TemplateID       string  `parquet:"template_id,dict" json:"template_id"`
	Converters       string  `parquet:"converters,dict" json:"converters"`
	Goal             string  `parquet:"goal,dict" json:"goal"`
	Model            string  `parquet:"model,dict" json:"model"`
	Outcome          Outcome `parquet:"outcome,dict" json:"outcome"`
	Detector         string  `parquet:"detector,dict" json:"detector"`
	Evidence         string  `parquet:"evidence" json:"evidence"`
	Response         string  `parquet:"response" json:"response"`
	ResponseBytes    int64   `parquet:"response_bytes" json:"response_bytes"`
	Error            string  `parquet:"error" json:"error"`
	StatusCode       int32   `parquet:"status_code" json:"status_code"`
	LatencyMS        int64   `parquet:"latency_ms" json:"latency_ms"`
	PromptTokens     int32   `parquet:"prompt_tokens" json:"prompt_tokens"`
	CompletionTokens int32   `parquet:"completion_tokens" json:"completion_tokens"`
	Attempt          int32   `parquet:"attempt" json:"attempt"`
	Strategy         string  `parquet:"strategy,dict" json:"strategy"`
	Kind             string  `parquet:"kind,dict" json:"kind"`
	NodeID           string  `parquet:"node_id" json:"node_id,omitempty"`
	ParentID         string  `parquet:"parent_id" json:"parent_id,omitempty"`
	Turn             int32   `parquet:"turn" json:"turn"`
	AttackPrompt     string  `parquet:"attack_prompt" json:"attack_prompt,omitempty"`
	Score            float64 `parquet:"score" json:"score"`
	Scores           string  `parquet:"scores" json:"scores,omitempty"`
	Queries          int32   `parquet:"queries" json:"queries"`
}

// Row kinds (AttemptRow.Kind).
const (
	KindAttempt = "attempt"
	KindTurn    = "turn"
)

// StrategyStatic names rows of the static prompt set.
const StrategyStatic = "static"

// NewAttemptRow assembles a row from a prompt, the call that answered it and
// its verdict.
func NewAttemptRow(opt RunOptions, p datasets.PromptRow, c CallResult, v Verdict) AttemptRow {
	return AttemptRow{
		ReleaseID:        opt.ReleaseID,
		PromptID:         p.ID,
		PromptIndex:      p.Index,
		Shard:            int32(opt.Shard),
		Family:           p.Family,
		Category:         p.Category,
		AtlasID:          p.AtlasID,
		TemplateID:       p.TemplateID,
		Converters:       p.Converters,
		Goal:             p.Goal,
		Model:            opt.Model,
		Outcome:          v.Outcome,
		Detector:         v.Detector,
		Evidence:         v.Evidence,
		Response:         Truncate(c.Response.Content, MaxResponseBytes),
		ResponseBytes:    int64(len(c.Response.Content)),
		Error:            errString(c.Err),
		StatusCode:       int32(c.StatusCode),
		LatencyMS:        c.Latency.Milliseconds(),
		PromptTokens:     int32(c.Response.Usage.PromptTokens),
		CompletionTokens: int32(c.Response.Usage.CompletionTokens),
		Attempt:          int32(c.Retries),
		Strategy:         StrategyStatic,
		Kind:             KindAttempt,
		Queries:          int32(c.Retries + 1),
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return Truncate(err.Error(), 1<<10)
}
