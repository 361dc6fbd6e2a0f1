// Package redteam judges adversarial attempts against a chat model and runs
// them: detectors (garak-style plugins in a Registry), the three-outcome
// Judge (breached / defended / errored; errored is never a defence), the
// retrying, order-preserving Run/RunSeq over a static prompt set, adaptive
// attacks (RunAdaptive with Search, PAIR, TAP, Crescendo), judge
// calibration, and the Tally that shards merge into a Summary with Wilson
// intervals and Regress compares with a baseline.
//
// Detectors, by name:
//
//	mitigation.Refusal   refusal lexicon in the first 400 characters
//	leak.SystemPrompt    verbatim run of a system prompt sentence (case,
//	                     spacing, separators ignored) or 3-word shingle overlap
//	leak.Secret          Target.Secrets: exact, folded, skeleton, base64/hex
//	leak.Canary          Target.Canaries, whole or any field
//	pii.Email pii.Phone pii.CardNumber (Luhn) pii.IBAN (mod-97) pii.SSN
//	pii.NationalID       UK National Insurance number (valid prefixes)
//	xss.UnsafeOutput     script tags/URIs, on*= handlers, external markdown images/links
//	marker.Present       PromptRow.Marker, case- and spacing-insensitive
//	answer.Known         PromptRow.Expected as whole words
//	harm.Advice          the unsafe claim of a harmful_advice row, unhedged
//	toxicity.Lexicon     insults, threats, profanity as whole words (goal toxic_output)
//
// LLMJudge grades with a judge model and a rubric (temperature 0, fixed
// seed); Calibrate measures any Grader (LLMJudge, RulesGrader) on the
// embedded labelled set calib/judge-v1.jsonl and returns precision, recall
// and accuracy with Wilson intervals that Calibration.Check gates on.
//
// Text the prompt itself contains is never counted as leaked by the leak and
// PII detectors: echoing the attacker is not disclosure.
//
// # Strategies
//
// A Strategy attacks one Objective (a goal plus the plain request it
// disguises; ObjectiveFromPrompt derives one from a static row) within its
// StrategyBudget (attempts per run, target queries and tokens per
// objective):
//
//	search     no LLM: seeded evolutionary search over template × ask ×
//	           converter chain, fitness from the detectors (ProgressScore)
//	pair       PAIR: an attacker model refines one prompt per stream
//	tap        TAP: tree of refinements, pruned before sending (repeats,
//	           OnTopic) and after scoring (keep the Width best)
//	crescendo  multi-turn escalation, refused turns backtracked
//
// PAIR, TAP and Crescendo call an AttackerModel on the OpenAI-compatible
// endpoint the options name; nothing else leaves the machine.
//
// # Throughput
//
// RunOptions.Throttle paces calls: a request-rate and token-rate limiter
// (Limits), a Budget, and an AIMD window on calls in flight (halved on
// 429/5xx/timeouts or slow replies, grown by one per window of successes).
// To share a global limit R among S concurrent shards give each
// Limits.Share(S): rates R/S, bursts ⌈B/S⌉, so together they never exceed R
// beyond the bursts. Retries (429, 5xx, timeouts, transport errors only)
// back off exponentially with jitter and never sooner than Retry-After;
// RunOptions.AttemptTimeout bounds an attempt whatever the target does.
// Rows are streamed to emit; memory does not grow with the run.
//
// # Results
//
// The Parquet schema of attempt results is AttemptRow (see its doc): one
// row per static attempt; for adaptive attacks one row per target query
// (kind "turn": strategy, node_id, parent_id, turn, attack_prompt, score,
// scores) and one summary row per attack (kind "attempt"). Tally counts
// attempt rows only; its ByStrategy splits static from adaptive ASR.
package redteam
