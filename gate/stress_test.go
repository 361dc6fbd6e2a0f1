package gate

import (
	"strings"
	"testing"
)

func TestStressMetricNames(t *testing.T) {
	for _, ok := range []string{"stress.knee_rps", "stress.knee_rps.wan", "stress.timeout_rate.lan", "stress.p99_ms.mobile-3g", "stress.error_rate", "stress.knee_censored.none"} {
		if err := ValidateMetric(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"stress.knee_rps.wna": `"wna" is not a network profile`,
		"stress.knees":        "is not a known metric",
		"stress.knee_rps.":    "is not a network profile",
	} {
		err := ValidateMetric(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
