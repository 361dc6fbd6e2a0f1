// Package fairness measures group and counterfactual fairness of a model's
// outputs: binary classifiers (Evaluate), regressors (EvaluateRegression)
// and counterfactual twins (CounterfactualFlips, CounterfactualOutputChange).
// It knows nothing of Temporal; inputs are plain columns.
//
// Definitions follow reference/metrics.md and name their source convention,
// both here and in every result (Summary.Conventions, FlipReport.Convention):
//
//   - fairlearn (between_groups, ≥ 0): demographic parity difference/ratio,
//     equal opportunity difference (max TPR − min TPR), equalized odds
//     difference/ratio (worst of TPR and FPR).
//   - AIF360 (signed, unprivileged − privileged): statistical parity
//     difference, disparate impact ratio (0 with a warning when the
//     privileged selection rate is 0), equal opportunity difference
//     (TPR_u − TPR_p, named equal_opportunity_difference_aif360), average
//     odds difference. "Unprivileged" pools every row outside the
//     privileged group, as AIF360 does for a single privileged condition.
//   - aequitas: a group passes the disparity tolerance iff
//     0.8 ≤ SR_g/SR_priv ≤ 1.25.
//   - TFMA BooleanFlipRates: a decision is score > threshold (strict).
//
// Rates are sample-weighted when Frame.Weight is set. Intersectional groups
// are the observed cartesian product of a set's columns. A group with fewer
// rows than Config.MinGroupSize is listed (GroupRow.Measured = false, its
// size kept) but gets no metric and stays out of every max/min; a warning
// says so. Bootstrap intervals resample rows with a fixed seed.
//
// # Metric names (Summary.Metrics, Summary.Flat, *.Metrics)
//
// <set> is an attribute set's columns joined by "&" ("race", "race&sex").
// An undefined metric is absent, never NaN.
//
//	fairness.demographic_parity_difference.<set>        fairlearn, max SR − min SR
//	fairness.demographic_parity_ratio.<set>             fairlearn, min SR / max SR
//	fairness.equal_opportunity_difference.<set>         fairlearn, max TPR − min TPR
//	fairness.equalized_odds_difference.<set>            fairlearn, max(ΔTPR, ΔFPR)
//	fairness.equalized_odds_ratio.<set>                 fairlearn, min(TPR ratio, FPR ratio)
//	fairness.statistical_parity_difference.<set>        AIF360, SR_u − SR_p
//	fairness.disparate_impact_ratio.<set>               AIF360, SR_u / SR_p (< 0.8 fails the four-fifths rule)
//	fairness.equal_opportunity_difference_aif360.<set>  AIF360, TPR_u − TPR_p
//	fairness.average_odds_difference.<set>              AIF360, [(FPR_u−FPR_p)+(TPR_u−TPR_p)]/2
//	fairness.disparity_tolerance_pass.<set>             aequitas, 1 if every measured group passes, else 0
//	fairness.groups.<set>                               observed groups
//	fairness.groups_below_min_size.<set>                groups listed but not measured
//	fairness.mean_prediction_gap.<set>                  regression: max − min group mean prediction
//	fairness.worst_group_mae.<set>                      regression: highest group MAE (group in RegressionSet)
//	fairness.worst_group_rmse.<set>                     regression: highest group RMSE
//	<any of the above>.ci_lo, .ci_hi                    bootstrap quantiles (Summary.Flat, lowest and highest)
//	fairness.counterfactual_flip_rate.<attr>            TFMA flip rate of twins changing <attr>
//	fairness.counterfactual_flip_rate.<attr>:<a>-><b>   the same for one a→b change
//	fairness.counterfactual_flip_rate_upper.<key>       upper end of its 95% Clopper–Pearson interval
//	fairness.counterfactual_any_flip_rate               originals with at least one flipped twin
//	fairness.counterfactual_any_flip_rate_upper
//	fairness.counterfactual_output_change_mean.<attr>   regression twins: mean |f(x)−f(x′)|; <attr> "all" = every twin
//	fairness.counterfactual_output_change_max.<attr>    max |f(x)−f(x′)|
//	fairness.counterfactual_output_change_share.<attr>  share of twins with |Δ| > tolerance
//
// # Parquet
//
// GroupRow (classifiers) and RegressionGroupRow (regressors) are the
// per-group tables, one row per (attribute set, group); their docs list the
// columns. Undefined metrics are NaN in these tables.
package fairness
