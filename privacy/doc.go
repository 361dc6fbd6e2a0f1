// Package privacy probes a model for leaks of its system prompt, secrets,
// planted canary records and personal data, and re-scans red-team replies
// for the same. Detection is redteam's detectors (kinds system_prompt,
// secret, canary, pii); calls go through redteam.Call/Ordered so both stages
// retry and order rows the same way.
//
// The Parquet schema of leak results is LeakRow (see its doc).
//
// # Membership-inference and DP auditing
//
// The package also measures training-data leakage with pure functions over
// slices, following /work/shared/reference/metrics.md (section Privacy):
//
//   - StatsFromLogits / StatsFromProbs: TFP's statistics (confidence, loss,
//     logit φ, hinge); MIAStats.AttackScore orients them higher ⇒ member.
//   - NewROC, ROC.AUC (Mann-Whitney, ties ½), ROC.TPRAtFPR (largest TPR with
//     FPR ≤ target, no interpolation), ROC.Thin and ROCRow for Parquet.
//   - ClopperPearsonUpper/Lower (one-sided, metrics.md's edge cases).
//   - NasrEpsilon (one threshold), ScanEpsilon (Bonferroni over the
//     thresholds tried) and HeldOutEpsilon (threshold chosen on one half):
//     every EpsilonBound carries ε_lb, confidence, δ, thresholds scanned and
//     the correction, to be printed beside the number.
//   - OneRunEpsilon / OneRunAudit: Steinke, Nasr, Jagielski (2023).
//   - Exposure (Secret Sharer), MatchExtraction and SummariseExtraction.
//   - LiRAOffline (Carlini et al. 2022), Gaussian or one-sided, and
//     ShadowOut to collect OUT scores from caller-trained shadow models.
//   - Explain: a few plain sentences for a release reviewer.
//
// Convention throughout: an attack score is higher for members, and an
// attack predicts "member" when score ≥ threshold. Subpackage dp trains a
// DP-SGD logistic regression and computes its theoretical ε, the figure an
// audited ε_lb must stay below.
package privacy
