package shadow

// Summary compares candidate against incumbent, with the incumbent against
// itself as the noise floor.
type Summary struct {
	Requests             int     `json:"requests"`
	Errors               int     `json:"errors"`
	ExactAgreement       float64 `json:"exact_agreement"`       // candidate vs incumbent
	MeanSimilarity       float64 `json:"mean_similarity"`       // token Jaccard, candidate vs incumbent
	NoiseFloorAgreement  float64 `json:"noise_floor_agreement"` // incumbent vs incumbent
	NoiseFloorSimilarity float64 `json:"noise_floor_similarity"`
	IncumbentP50MS       float64 `json:"incumbent_p50_ms"`
	IncumbentP95MS       float64 `json:"incumbent_p95_ms"`
	CandidateP50MS       float64 `json:"candidate_p50_ms"`
	CandidateP95MS       float64 `json:"candidate_p95_ms"`
	LatencyP95Ratio      float64 `json:"latency_p95_ratio"` // candidate p95 / incumbent p95
}
