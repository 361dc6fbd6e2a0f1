package gate

import (
	"strings"
	"testing"
)

func TestValidatePredictiveMetrics(t *testing.T) {
	for _, ok := range []string{
		"fairness.disparate_impact_ratio", "fairness.disparate_impact_ratio.race",
		"fairness.flip_rate.any", "fairness.flip_rate_upper.sex", "robustness.noise_flip_rate_upper",
		"privacy.mia.auc", "privacy.mia.tpr_at_fpr_1e-3", "privacy.epsilon_lb",
		"fairness.equalized_odds_difference.intersectional",
	} {
		if err := ValidateMetric(ok); err != nil {
			t.Errorf("ValidateMetric(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"fairness.disparte_impact_ratio":   "not a known metric",
		"robustness.noise_flip_rate.race":  "takes no suffix",
		"fairness.flip_rate.a-b":           "not a column name",
		"privacy.mia.auroc":                "not a known metric",
		"privacy.epsilon_lb.extra":         "takes no suffix",
		"fairness.disparate_impact_ratio.": "not a column name",
	} {
		err := ValidateMetric(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateMetric(%q) = %v, want an error containing %q", bad, err, want)
		}
	}
}

func TestShadowAnalysisMetricsAreKnown(t *testing.T) {
	for _, m := range []string{"shadow.analysis.passed", "shadow.analysis.windows", "shadow.analysis.failed_windows", "shadow.analysis.inconclusive_windows"} {
		if err := ValidateMetric(m); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}
