// Package shadow compares a candidate model with the incumbent on the same
// traffic without letting the candidate touch the reply path.
//
// Replay sends each Request to the incumbent and, concurrently, to the
// candidate (a mirror: nothing on the incumbent side waits for it), then to
// the incumbent a second time. The second incumbent reply is the noise
// floor: LLM servers are not deterministic even at temperature 0, so
// candidate-vs-incumbent agreement is read against incumbent-vs-incumbent
// agreement (Diffy's idea), never on its own.
//
// Comparators, all exported for reuse: ExactMatch (after whitespace
// normalisation), JaccardSimilarity (token sets) and RougeLF1 (LCS over
// tokens). Accumulator folds rows into a Summary with nearest-rank latency
// percentiles and a Mann-Whitney U test (MannWhitneyU) of the two latency
// distributions.
//
// Measure judges one window's Summary against an AnalysisSpec (metrics
// such as agreement_delta = agreement − noise floor, error_rate,
// latency_p99_ratio, latency_mann_whitney_p) and RunState.Apply applies
// Argo Rollouts' failureLimit / inconclusiveLimit / consecutiveSuccessLimit
// over windows; both are pure, so workflow code may call them.
//
// ReadRequestLog reads recorded traffic back from Parquet (the proxy's
// part files, replay result files, or a plain request log with a
// request_body column) for DriveRecorded (through the proxy) or
// ChatRequests + Replay (with a noise floor).
//
// Parquet schema (results/shadow/, one PairRow per request, request order):
//
//	release_id                 string (dict)
//	request_id                 string
//	prompt                     string   last user message, truncated
//	incumbent_response         string
//	candidate_response         string   the only column holding candidate output
//	incumbent_repeat_response  string   noise floor
//	incumbent_latency_ms       double
//	candidate_latency_ms       double
//	incumbent_repeat_latency_ms double
//	incumbent_status           string (dict)  ok | timeout | canceled | malformed | transport | http_<code>
//	candidate_status           string (dict)
//	incumbent_repeat_status    string (dict)  also "skipped" when the first incumbent call failed
//	exact_match                boolean  candidate vs incumbent
//	similarity                 double   token Jaccard, candidate vs incumbent
//	rouge_l                    double   ROUGE-L F1, candidate vs incumbent
//	noise_exact_match          boolean  incumbent vs its repeat
//	noise_similarity           double
//	noise_rouge_l              double
//	error                      string   "incumbent: …; candidate: …", empty when all calls succeeded
package shadow
