package gate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sandgate/sandgate/sandbox"
)

// Metrics of the stress stage (suites.stress). Each is per network profile
// with a ".<profile>" suffix; without it, the worst over profiles.
//
//	stress.knee_rps[.<profile>]       highest offered rate held with every lower step held (0 = none held)
//	stress.knee_censored[.<profile>]  1 when every step held: the knee is only a lower bound
//	stress.timeout_rate[.<profile>]   timeouts / sent at the expected load
//	stress.error_rate[.<profile>]     other failures / sent at the expected load
//	stress.p99_ms[.<profile>]         p99 latency at the expected load, in ms
var stressMetrics = []string{"stress.knee_rps", "stress.knee_censored", "stress.timeout_rate", "stress.error_rate", "stress.p99_ms"}

func stressMetricNames() []string {
	out := make([]string, len(stressMetrics))
	for i, m := range stressMetrics {
		out[i] = m + "[.<profile>]"
	}
	return out
}

// validateStressMetric returns (handled, error): handled is false when
// name is not a stress metric.
func validateStressMetric(name string) (bool, error) {
	if !strings.HasPrefix(name, "stress.") {
		return false, nil
	}
	for _, base := range stressMetrics {
		if name == base {
			return true, nil
		}
		if prof, ok := strings.CutPrefix(name, base+"."); ok {
			known := append(sandbox.ProfileNames(), "none")
			if slices.Contains(known, prof) {
				return true, nil
			}
			return true, fmt.Errorf("%q: %q is not a network profile; use %s.<%s>", name, prof, base, strings.Join(known, "|"))
		}
	}
	return true, fmt.Errorf("%q is not a known metric; use one of: %s", name, strings.Join(stressMetricNames(), ", "))
}
