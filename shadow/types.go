package shadow

// Summary compares candidate against incumbent, with the incumbent against
// itself as the noise floor.
//
// Rates are over compared pairs: agreement and similarity count only rows
// where both calls succeeded (Compared); the noise floor only rows where both
// incumbent calls succeeded (NoiseCompared). Latencies are of successful
// calls, percentiles by nearest rank (see Percentile).
type Summary struct {
	Requests             int     `json:"requests"`
	Errors               int     `json:"errors"`                // rows where the candidate call failed
	ExactAgreement       float64 `json:"exact_agreement"`       // candidate vs incumbent
	MeanSimilarity       float64 `json:"mean_similarity"`       // token Jaccard, candidate vs incumbent
	NoiseFloorAgreement  float64 `json:"noise_floor_agreement"` // incumbent vs incumbent
	NoiseFloorSimilarity float64 `json:"noise_floor_similarity"`
	IncumbentP50MS       float64 `json:"incumbent_p50_ms"`
	IncumbentP95MS       float64 `json:"incumbent_p95_ms"`
	CandidateP50MS       float64 `json:"candidate_p50_ms"`
	CandidateP95MS       float64 `json:"candidate_p95_ms"`
	LatencyP95Ratio      float64 `json:"latency_p95_ratio"` // candidate p95 / incumbent p95 (0 when incumbent p95 is 0)

	IncumbentErrors     int     `json:"incumbent_errors"` // rows where the first incumbent call failed
	Compared            int     `json:"compared"`         // pairs behind ExactAgreement/MeanSimilarity
	NoiseCompared       int     `json:"noise_compared"`   // pairs behind the noise floor
	MeanRougeL          float64 `json:"mean_rouge_l"`     // ROUGE-L F1, candidate vs incumbent
	NoiseFloorRougeL    float64 `json:"noise_floor_rouge_l"`
	IncumbentP99MS      float64 `json:"incumbent_p99_ms"`
	CandidateP99MS      float64 `json:"candidate_p99_ms"`
	LatencyMannWhitneyU float64 `json:"latency_mann_whitney_u"` // U of the candidate sample vs the incumbent's
	LatencyMannWhitneyP float64 `json:"latency_mann_whitney_p"` // two-sided p; 1 when a sample is empty
}
