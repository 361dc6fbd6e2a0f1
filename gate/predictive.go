package gate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Metrics of classifier and regressor releases. Names ending in ".<attr>" are
// per protected attribute (the column name, or "intersectional" for the
// cartesian product); the same name without the suffix is the worst case
// over attributes (lowest ratio, largest difference or rate), so a policy
// can bound every attribute with one rule. Conventions (fairlearn, AIF360,
// TFMA, ART, TextAttack, ml_privacy_meter) are those of
// shared metrics definitions and are named in the result files.
//
//	fairness.demographic_parity_difference[.<attr>]   max SR − min SR (fairlearn)
//	fairness.demographic_parity_ratio[.<attr>]        min SR / max SR (fairlearn)
//	fairness.disparate_impact_ratio[.<attr>]          SR_unpriv / SR_priv (AIF360; four-fifths rule: ≥ 0.8)
//	fairness.statistical_parity_difference[.<attr>]   SR_unpriv − SR_priv (AIF360, signed; worst = most negative)
//	fairness.equal_opportunity_difference[.<attr>]    max TPR − min TPR (fairlearn)
//	fairness.equalized_odds_difference[.<attr>]       max(ΔTPR, ΔFPR) (fairlearn)
//	fairness.average_odds_difference[.<attr>]         AIF360, signed
//	fairness.flip_rate[.<attr>|.any]                  counterfactual flip rate over twins (TFMA)
//	fairness.flip_rate_upper[.<attr>|.any]            its upper 95% bound
//	fairness.mean_prediction_gap[.<attr>]             regressors: max − min group mean output
//	fairness.worst_group_mae[.<attr>]                 regressors: largest group mean absolute error
//	fairness.counterfactual_change[.<attr>|.any]      regressors: mean |f(x) − f(twin)|
//	fairness.counterfactual_change_rate[.<attr>|.any] regressors: share of twins changing more than the tolerance
//	robustness.clean_accuracy                         accuracy on the clean inputs
//	robustness.noise_flip_rate                        flips / (inputs × draws) at the largest ε
//	robustness.noise_flip_rate_upper                  its one-sided Clopper–Pearson upper bound (95%)
//	robustness.pixel_attack_success_rate              few-pixel attack, succeeded / (succeeded + failed)
//	robustness.hsj_success_rate                       HopSkipJump within its query budget
//	robustness.hsj_median_perturbation                median ‖x_adv − x‖₂ / ‖x‖₂ of HopSkipJump successes
//	robustness.accuracy_under_attack                  failed / total (TextAttack), worst over attacks
//	robustness.tabular_flip_rate                      decisions flipped by bounded feature perturbations
//	robustness.output_change_max                      regressors: max |Δ output| under bounded perturbation
//	robustness.output_change_rate                     regressors: share above the tolerance
//	privacy.mia.auc                                   membership-inference ROC AUC (best statistic)
//	privacy.mia.tpr_at_fpr_1e-3                       TPR at FPR ≤ 0.1% (no interpolation)
//	privacy.mia.tpr_at_fpr_1e-2                       TPR at FPR ≤ 1%
//	privacy.epsilon_lb                                empirical ε lower bound (confidence and thresholds in the results)
//	privacy.exposure.max[_fraction]                   largest canary exposure in bits (and as a share of log₂|R|; 1 = ranked first)
//	privacy.extraction.exact_rate|exact_upper|near_rate  planted records reproduced by greedy completion
//	adversarial.adaptive.asr[_upper]                  ASR of the adaptive attackers (objectives breached / pursued), with its 95% upper bound
//	adversarial.adaptive.breached                     objectives the adaptive attackers breached
//	adversarial.judge.precision|recall|accuracy       the verdict rules graded on the pinned labelled set, in the same run
//	adversarial.judge.precision_lower|recall_lower    lower ends of their 95% intervals
//	adversarial.regressions                           OWASP categories whose ASR rose significantly against the last released version
//	shadow.analysis.passed                            1 when the shadow analysis windows ended Successful, else 0
//	shadow.analysis.windows                           windows measured
//	shadow.analysis.failed_windows, .inconclusive_windows
var predictiveMetrics = map[string]string{
	// name → allowed suffix kind: "" none, "attr" attribute, "attr+any" attribute or "any"
	"fairness.demographic_parity_difference": "attr",
	"fairness.demographic_parity_ratio":      "attr",
	"fairness.disparate_impact_ratio":        "attr",
	"fairness.statistical_parity_difference": "attr",
	"fairness.equal_opportunity_difference":  "attr",
	"fairness.equalized_odds_difference":     "attr",
	"fairness.average_odds_difference":       "attr",
	"fairness.flip_rate":                     "attr+any",
	"fairness.flip_rate_upper":               "attr+any",
	"fairness.mean_prediction_gap":           "attr",
	"fairness.worst_group_mae":               "attr",
	"fairness.counterfactual_change":         "attr+any",
	"fairness.counterfactual_change_rate":    "attr+any",
	"robustness.clean_accuracy":              "",
	"robustness.noise_flip_rate":             "",
	"robustness.noise_flip_rate_upper":       "",
	"robustness.pixel_attack_success_rate":   "",
	"robustness.hsj_success_rate":            "",
	"robustness.hsj_median_perturbation":     "",
	"robustness.accuracy_under_attack":       "",
	"robustness.tabular_flip_rate":           "",
	"robustness.output_change_max":           "",
	"robustness.output_change_rate":          "",
	"privacy.mia.auc":                        "",
	"privacy.mia.tpr_at_fpr_1e-3":            "",
	"privacy.mia.tpr_at_fpr_1e-2":            "",
	"privacy.epsilon_lb":                     "",
	// LLM memorisation of planted data.
	"privacy.exposure.max":           "",
	"privacy.exposure.max_fraction":  "",
	"privacy.extraction.exact_rate":  "",
	"privacy.extraction.exact_upper": "",
	"privacy.extraction.near_rate":   "",
	// Red teaming beyond the static set.
	"adversarial.adaptive.asr":          "",
	"adversarial.adaptive.asr_upper":    "",
	"adversarial.adaptive.breached":     "",
	"adversarial.judge.precision":       "",
	"adversarial.judge.recall":          "",
	"adversarial.judge.accuracy":        "",
	"adversarial.judge.precision_lower": "",
	"adversarial.judge.recall_lower":    "",
	"adversarial.regressions":           "",
	// Shadow analysis windows (suites.shadow.analysis), the Argo-style decision.
	"shadow.analysis.passed":               "",
	"shadow.analysis.windows":              "",
	"shadow.analysis.failed_windows":       "",
	"shadow.analysis.inconclusive_windows": "",
}

var attrRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// predictiveMetricNames lists them for error messages, placeholders shown.
func predictiveMetricNames() []string {
	out := make([]string, 0, len(predictiveMetrics))
	for name, suffix := range predictiveMetrics {
		switch suffix {
		case "attr":
			name += "[.<attribute>]"
		case "attr+any":
			name += "[.<attribute>|.any]"
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// validatePredictiveMetric returns (handled, error): handled is false when
// name is not in a predictive family.
func validatePredictiveMetric(name string) (bool, error) {
	if !strings.HasPrefix(name, "fairness.") && !strings.HasPrefix(name, "robustness.") &&
		!strings.HasPrefix(name, "privacy.mia.") && !strings.HasPrefix(name, "privacy.epsilon_lb") &&
		!strings.HasPrefix(name, "privacy.exposure") && !strings.HasPrefix(name, "privacy.extraction") &&
		!strings.HasPrefix(name, "shadow.analysis") && !strings.HasPrefix(name, "adversarial.adaptive") &&
		!strings.HasPrefix(name, "adversarial.judge") && !strings.HasPrefix(name, "adversarial.regressions") {
		return false, nil
	}
	if _, ok := predictiveMetrics[name]; ok {
		return true, nil
	}
	// Longest known base that prefixes name.
	best := ""
	for base := range predictiveMetrics {
		if strings.HasPrefix(name, base+".") && len(base) > len(best) {
			best = base
		}
	}
	if best == "" {
		return true, fmt.Errorf("%q is not a known metric; use one of: %s", name, strings.Join(predictiveMetricNames(), ", "))
	}
	suffix := strings.TrimPrefix(name, best+".")
	switch predictiveMetrics[best] {
	case "attr", "attr+any":
		if attrRE.MatchString(suffix) {
			return true, nil
		}
		return true, fmt.Errorf("%q: %q is not a column name; use %s.<protected attribute>", name, suffix, best)
	}
	return true, fmt.Errorf("%q: %s takes no suffix", name, best)
}
