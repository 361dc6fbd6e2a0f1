package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/internal/cli"
)

// TestPredictiveReleases runs the classifier examples as a user does: the
// fair credit scorer and the robust imaging model are released; the biased
// scorer is blocked on disparate impact and counterfactual flips, the
// brittle imaging model on its noise flip rate. Every result file reads
// back with Arrow, and each report carries the suite's metrics.
func TestPredictiveReleases(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	ports := []string{"--data-dir", dataDir, "--temporal-port", "0", "--ui-port", "0", "--s3-port", "0", "--no-ui"}
	cases := []struct {
		file       string
		wantCode   int
		wantFailed []string
		metrics    []string
	}{
		{"release-credit.yaml", cli.ExitReleased, nil, []string{"fairness.disparate_impact_ratio.race", "fairness.flip_rate_upper.any", "robustness.tabular_flip_rate"}},
		{"release-credit-biased.yaml", cli.ExitBlocked, []string{"four-fifths-rule", "counterfactual-flips"}, []string{"fairness.disparate_impact_ratio"}},
		{"release-imaging.yaml", cli.ExitReleased, nil, []string{"robustness.noise_flip_rate_upper", "robustness.pixel_attack_success_rate", "robustness.hsj_success_rate"}},
		{"release-imaging-brittle.yaml", cli.ExitBlocked, []string{"noise-flips"}, []string{"robustness.noise_flip_rate_upper"}},
		{"release-credit-overfit.yaml", cli.ExitBlocked, []string{"empirical-epsilon", "membership-auc"}, []string{"privacy.epsilon_lb", "privacy.mia.auc", "privacy.mia.tpr_at_fpr_1e-3"}},
		{"release-credit-dp.yaml", cli.ExitReleased, nil, []string{"privacy.epsilon_lb", "privacy.epsilon_claimed"}},
		{"release-credit-limit.yaml", cli.ExitReleased, nil, []string{"fairness.counterfactual_change_rate.any", "fairness.mean_prediction_gap", "robustness.output_change_rate"}},
		{"release-credit-limit-biased.yaml", cli.ExitBlocked, []string{"counterfactual-limit-change"}, []string{"fairness.counterfactual_change_rate.any"}},
	}
	for _, tc := range cases {
		code, out := runCLI(t, ctx, append([]string{"dev", "-f", filepath.Join("..", "examples", tc.file)}, ports...)...)
		t.Logf("%s:\n%s", tc.file, out)
		if code != tc.wantCode {
			t.Errorf("%s: exit %d, want %d", tc.file, code, tc.wantCode)
			continue
		}
		for _, rule := range tc.wantFailed {
			if !strings.Contains(out, rule) {
				t.Errorf("%s: output does not name the failing rule %q", tc.file, rule)
			}
		}
		_ = tc.metrics
	}

	env := startStack(t, ctx, dataDir)
	for _, tc := range cases {
		cfg, raw, err := config.Load(filepath.Join("..", "examples", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		id := cfg.ReleaseID(config.Digest(raw))
		verifyParquet(t, ctx, env.store, id)
		b, err := env.store.Get(ctx, layout(t, id).ReportJSON())
		if err != nil {
			t.Fatalf("%s: report: %v", tc.file, err)
		}
		var rep audit.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, s := range rep.Suites {
			for k, v := range s.Metrics {
				got[k] = v
			}
		}
		for _, m := range tc.metrics {
			if _, ok := got[m]; !ok {
				t.Errorf("%s: report lacks metric %s (has %d metrics)", tc.file, m, len(got))
			}
		}
		t.Logf("%s: %s", tc.file, summarize(got, tc.metrics))
		switch tc.file {
		case "release-credit-dp.yaml":
			// The audit of a DP-trained model never exceeds its guarantee.
			if got["privacy.epsilon_lb"] >= got["privacy.epsilon_claimed"] {
				t.Errorf("dp: audited ε_lb %.3f ≥ claimed ε %.3f", got["privacy.epsilon_lb"], got["privacy.epsilon_claimed"])
			}
		case "release-credit-overfit.yaml":
			if got["privacy.epsilon_lb"] < 1 {
				t.Errorf("overfit: audited ε_lb %.3f, want clearly above zero", got["privacy.epsilon_lb"])
			}
			// The bound is printed with its confidence and the thresholds scanned.
			md, err := env.store.Get(ctx, layout(t, id).ReportMarkdown())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(md), "with 95% confidence") || !strings.Contains(string(md), "over 200 thresholds") {
				t.Errorf("overfit: the report does not print ε with its confidence and thresholds")
			}
		}
		if tc.wantCode == cli.ExitBlocked && !slices.ContainsFunc(rep.Gate.Failed, func(s string) bool { return slices.Contains(tc.wantFailed, s) }) {
			t.Errorf("%s: report's failed rules %v", tc.file, rep.Gate.Failed)
		}
	}
}

func summarize(m map[string]float64, keys []string) string {
	var parts []string
	for _, k := range keys {
		b, _ := json.Marshal(m[k])
		parts = append(parts, k+"="+string(b))
	}
	return strings.Join(parts, " ")
}

var _ = context.Background
