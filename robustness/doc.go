// Package robustness attacks black-box models (query access only) and
// measures how easily their predictions move. It knows nothing of Temporal.
//
// Models are Classifier (class probabilities per input) and Regressor (one
// value per input). Every query is an input evaluated; Budget wraps a model
// to count queries across attacks and refuse a batch that would exceed its
// limit with a *BudgetError (errors.Is(err, ErrBudgetExhausted)). Each attack
// also takes a per-input QueryBudget (TextAttack's query_budget): an input
// whose budget runs out has failed.
//
// Conventions (reference/metrics.md), named in every result:
//
//   - Success (untargeted, ART): argmax f(x_adv) ≠ argmax f(x).
//   - TextAttack: inputs misclassified before the attack are skipped;
//     success rate = succeeded/(succeeded+failed); accuracy under attack =
//     failed/total (AttackSummary, Tally).
//   - Noise flip rate: K draws δ ~ U[−ε, ε]^d (or N(0, ε²)), x′ = clip(x+δ);
//     rate = flips/(N·K) with N the correctly classified inputs (skipped
//     ones are reported, not counted), one-sided Clopper–Pearson upper bound.
//   - PixelAttack (ART): differential evolution best1bin over (row, col,
//     value) genes, fitness = p(true class), stop at the flip.
//   - HopSkipJump (ART, labels only, L2): max_iter 50, max_eval 10,000,
//     init_eval 100; reports ‖x_adv − x‖₂/‖x‖₂.
//
// Attacks are deterministic for a seed: each input draws from its own
// stream seeded by (Seed, input index). They honour context cancellation
// and, on an error, return the examples finished so far with the error.
// Examples carry the adversarial inputs (Example.Adversarial) for the caller
// to store as PNG or rows.
//
// # Metric names (AttackSummary.Metrics, NoiseResult.Metrics, OutputChangeResult.Metrics)
//
//	robustness.<attack>.success_rate           <attack> = pixel, hopskipjump, tabular, noise
//	robustness.<attack>.accuracy_under_attack
//	robustness.<attack>.succeeded, .failed, .skipped, .queries
//	robustness.<attack>.median_perturbation    only when some input succeeded
//	robustness.noise_flip_rate.<ε>             ε with %g, e.g. robustness.noise_flip_rate.0.05
//	robustness.noise_flip_rate_upper.<ε>
//	robustness.regressor_change_mean, robustness.regressor_change_max, robustness.regressor_change_share
package robustness
