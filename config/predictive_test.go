package config

import (
	"os"
	"strings"
	"testing"
)

func TestPredictiveExamplesParse(t *testing.T) {
	for _, f := range []string{"release-credit.yaml", "release-credit-biased.yaml", "release-imaging.yaml", "release-imaging-brittle.yaml",
		"release-credit-overfit.yaml", "release-credit-dp.yaml", "release-credit-limit.yaml", "release-credit-limit-biased.yaml"} {
		r, _, err := Load("../examples/" + f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Suites.Membership != nil {
			continue
		}
		if (r.Model.Type != TypeClassifier && r.Model.Type != TypeRegressor) || r.Model.Protocol != ProtocolOIP || r.Model.OIPModel == "" {
			t.Errorf("%s: model %+v", f, r.Model)
		}
		if r.Suites.Robustness == nil || r.Suites.Robustness.Seed != r.Seed {
			t.Errorf("%s: robustness defaults not applied: %+v", f, r.Suites.Robustness)
		}
	}
}

func TestPredictiveNamesTheField(t *testing.T) {
	b, err := readExample("release-credit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	cases := []struct{ name, yaml, want string }{
		{"suite on a chat model", strings.Replace(good, "type: classifier", "type: chat", 1), "suites.fairness: applies to classifier and regressor models"},
		{"unknown type", strings.Replace(good, "type: classifier", "type: ranker", 1), "model.type: \"ranker\" is not a model type"},
		{"chat protocol on a classifier", strings.Replace(good, "protocol: oip-v2", "protocol: openai-chat", 1), "model.protocol: \"openai-chat\" is not supported for a classifier"},
		{"no protected attributes", strings.Replace(good, "protected: [sex, race, foreign_worker]", "protected: []", 1), "suites.fairness.protected: is empty"},
		{"privileged not protected", strings.Replace(good, "privileged: {sex: male,", "privileged: {gender: male, sex: male,", 1), "suites.fairness.privileged.gender: is not in suites.fairness.protected"},
		{"threshold out of range", strings.Replace(good, "threshold: 0.5", "threshold: 1.5", 1), "suites.fairness.threshold: is 1.5"},
		{"bad inputs", strings.Replace(good, "inputs: tabular", "inputs: audio", 1), "suites.robustness.inputs: is \"audio\""},
		{"typo in suite", strings.Replace(good, "max_step: 0.02", "max_stepp: 0.02", 1), "suites.robustness.max_stepp: unknown field; did you mean \"max_step\"?"},
		{"too few rows", strings.Replace(good, "rows: 3000", "rows: 3", 1), "suites.fairness.dataset.rows: is 3"},
		{"unknown fairness metric", strings.Replace(good, "metric: fairness.disparate_impact_ratio\n", "metric: fairness.disparate_impact\n", 1), "fairness.disparate_impact\" is not a known metric"},
		{"membership on a regressor", strings.Replace(strings.Replace(good, "type: classifier", "type: regressor", 1), "\ngate:", "  membership: {members: a.parquet, non_members: b.parquet, label_column: y}\n\ngate:", 1), "suites.membership: membership inference needs class probabilities"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func readExample(name string) ([]byte, error) { return os.ReadFile("../examples/" + name) }

func TestRedTeamPrivacyShadowFieldsNamed(t *testing.T) {
	good := string(exampleBytes(t))
	cases := []struct{ name, yaml, want string }{
		{"unknown strategy", strings.Replace(good, "strategies: [search]", "strategies: [search, gcg]", 1), "suites.adversarial.adaptive.strategies[1]: \"gcg\" is not a strategy"},
		{"pair without attacker", strings.Replace(good, "strategies: [search]", "strategies: [pair]", 1), "needs an attacker model"},
		{"rate limit without a rate", strings.Replace(good, "rate_limit: {requests_per_second: 500, burst: 8}", "rate_limit: {burst: 8}", 1), "suites.adversarial.rate_limit"},
		{"secret and format differ", strings.Replace(good, `format: "#### #### #### ####", secret: "4929 0731 6682 5510"`, `format: "####", secret: "4929 0731 6682 5510"`, 1), "suites.privacy.exposure.secrets[0]"},
		{"unknown network profile", strings.Replace(good, "    budget: {requests: 100000, timeout: 30s}", "    budget: {requests: 100000, timeout: 30s}\n    network: {profile: satellite}", 1), "model.sandbox.network.profile"},
		{"shadow rule with analysis", strings.Replace(good, "  shadow:\n    requests: 100\n", "  shadow:\n    requests: 100\n    analysis: {interval: 1m}\n", 1), "with suites.shadow.analysis the windows decide"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.yaml == good {
				t.Fatal("the edit did not apply; update the test")
			}
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
