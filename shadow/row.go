package shadow

import "github.com/sandgate/sandgate/modelapi"

// Request is one recorded or live request to replay against both models.
type Request struct {
	ID       string             `json:"id"`
	Messages []modelapi.Message `json:"messages"`
}

// Call statuses in PairRow. Anything else is "http_<code>" for a non-2xx reply.
const (
	StatusOK        = "ok"
	StatusTimeout   = "timeout"   // the per-call timeout expired
	StatusCanceled  = "canceled"  // the replay itself was cancelled
	StatusMalformed = "malformed" // 2xx with a body that is not a chat completion
	StatusTransport = "transport" // connection refused, reset, DNS, …
	StatusSkipped   = "skipped"   // not attempted (noise-floor repeat after a failed first call)
)

// PairRow is one mirrored request: the incumbent's reply, the candidate's
// reply and a second incumbent reply as the noise floor. It is the Parquet
// schema of results/shadow/ (one row per request, request order); notebooks
// depend on these column names.
//
// Comparison columns are only meaningful when the statuses involved are
// "ok": exact_match/similarity/rouge_l need incumbent and candidate, the
// noise_* columns need incumbent and incumbent_repeat; otherwise they are
// false/0. Latencies are wall-clock milliseconds of the whole HTTP exchange.
type PairRow struct {
	ReleaseID                string  `parquet:"release_id,dict" json:"release_id"`
	RequestID                string  `parquet:"request_id" json:"request_id"`
	Prompt                   string  `parquet:"prompt" json:"prompt"` // last user message, truncated (ReplayOptions.PromptMaxBytes)
	IncumbentResponse        string  `parquet:"incumbent_response" json:"incumbent_response"`
	CandidateResponse        string  `parquet:"candidate_response" json:"candidate_response"`
	IncumbentRepeatResponse  string  `parquet:"incumbent_repeat_response" json:"incumbent_repeat_response"`
	IncumbentLatencyMS       float64 `parquet:"incumbent_latency_ms" json:"incumbent_latency_ms"`
	CandidateLatencyMS       float64 `parquet:"candidate_latency_ms" json:"candidate_latency_ms"`
	IncumbentRepeatLatencyMS float64 `parquet:"incumbent_repeat_latency_ms" json:"incumbent_repeat_latency_ms"`
	IncumbentStatus          string  `parquet:"incumbent_status,dict" json:"incumbent_status"`
	CandidateStatus          string  `parquet:"candidate_status,dict" json:"candidate_status"`
	IncumbentRepeatStatus    string  `parquet:"incumbent_repeat_status,dict" json:"incumbent_repeat_status"`
	ExactMatch               bool    `parquet:"exact_match" json:"exact_match"`
	Similarity               float64 `parquet:"similarity" json:"similarity"` // token Jaccard
	RougeL                   float64 `parquet:"rouge_l" json:"rouge_l"`       // ROUGE-L F1, candidate vs incumbent
	NoiseExactMatch          bool    `parquet:"noise_exact_match" json:"noise_exact_match"`
	NoiseSimilarity          float64 `parquet:"noise_similarity" json:"noise_similarity"`
	NoiseRougeL              float64 `parquet:"noise_rouge_l" json:"noise_rouge_l"`
	Error                    string  `parquet:"error" json:"error"` // "incumbent: …; candidate: …", empty when all calls succeeded
}
