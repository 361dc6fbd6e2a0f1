package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/regate"
)

// newGateCmd is `starter gate`: re-judge a stored release under a policy,
// from the rows it wrote to S3, without calling the model. It needs only S3
// (AWS_* and SANDGATE_BUCKET), not Temporal, so it runs in any CI job.
func newGateCmd(env Env) *cobra.Command {
	var policyFile, releaseID, baselineID, output string
	cmd := &cobra.Command{
		Use:   "gate --policy FILE --release ID [--baseline-release ID]",
		Short: "Re-gate a stored release with a policy, offline (the model is not called)",
		Long: `gate recomputes a stored release's metrics from the Parquet rows under
releases/<id>/results/ (each file checked against the sha256 in its manifest) and
applies every rule of the policy to them, whatever its phase.

The policy file is a gate policy ("rules:") or a release config (its "gate:").
--baseline-release names the last released version: regression rules see its
metrics as "baseline" (from its report.json); without it baseline is empty.

Exit codes: 0 released, 3 blocked, 2 bad policy or arguments, 1 other errors
(including a stored file that no longer matches its manifest).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return withCode(ExitBadInput, fmt.Errorf("--output %q: use text or json", output))
			}
			p, err := loadPolicy(policyFile)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			if err := datasets.ValidateReleaseID(releaseID); err != nil {
				return withCode(ExitBadInput, fmt.Errorf("--release: %w", err))
			}
			if baselineID != "" {
				if err := datasets.ValidateReleaseID(baselineID); err != nil {
					return withCode(ExitBadInput, fmt.Errorf("--baseline-release: %w", err))
				}
			}
			ctx := cmd.Context()
			st, err := objstore.New(ctx, objstore.ConfigFromEnv())
			if err != nil {
				return withCode(ExitBadInput, fmt.Errorf("connect to S3: %w", err))
			}
			return runGate(ctx, env.Stdout, st, p, releaseID, baselineID, output)
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "policy file (YAML or JSON: a \"rules:\" list, or a release config with \"gate:\")")
	cmd.Flags().StringVar(&releaseID, "release", "", "id of the stored release to re-gate")
	cmd.Flags().StringVar(&baselineID, "baseline-release", "", "id of the last released version, for regression rules (optional)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	_ = cmd.MarkFlagRequired("policy")
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

// runGate re-gates and prints; the returned error carries the exit code.
func runGate(ctx context.Context, out io.Writer, st regate.Store, p gate.Policy, releaseID, baselineID, output string) error {
	var baseline gate.Metrics
	if baselineID != "" {
		l, err := datasets.NewLayout(baselineID)
		if err != nil {
			return withCode(ExitBadInput, fmt.Errorf("--baseline-release: %w", err))
		}
		b, err := st.Get(ctx, l.ReportJSON())
		if err != nil {
			return fmt.Errorf("baseline release %s: read its report: %w", baselineID, err)
		}
		if baseline, err = regate.BaselineFromReport(b); err != nil {
			return fmt.Errorf("baseline release %s: %w", baselineID, err)
		}
	}
	s, err := regate.Summaries(ctx, st, releaseID)
	if err != nil {
		return err
	}
	v, err := s.Verdict(p, baseline)
	if err != nil {
		return withCode(ExitBadInput, err)
	}
	if output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(map[string]any{
			"release_id": releaseID, "model_name": s.ModelName, "model_version": s.ModelVersion,
			"baseline_release_id": baselineID, "stages": s.Stages, "metrics": s.Metrics(), "verdict": v,
		})
		if err != nil {
			return fmt.Errorf("write verdict: %w", err)
		}
	} else {
		printVerdict(out, releaseID, baselineID, s, v)
	}
	if v.Verdict == gate.Blocked {
		return withCode(ExitBlocked, fmt.Errorf("release %s blocked by: %s", releaseID, strings.Join(v.Failed, ", ")))
	}
	return nil
}

func printVerdict(out io.Writer, releaseID, baselineID string, s regate.Stored, v gate.Verdict) {
	fmt.Fprintf(out, "release:  %s (%s %s)\n", releaseID, s.ModelName, s.ModelVersion)
	stages := "none"
	if len(s.Stages) > 0 {
		stages = strings.Join(s.Stages, ", ")
	}
	fmt.Fprintf(out, "results:  %s (recomputed from stored rows; the model was not called)\n", stages)
	if baselineID != "" {
		fmt.Fprintf(out, "baseline: %s\n", baselineID)
	}
	fmt.Fprintf(out, "verdict:  %s\n\n", v.Verdict)

	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSEVERITY\tRESULT\tVALUE\tTHRESHOLD\tDETAIL")
	for _, r := range v.Rules {
		value, threshold := fmt.Sprintf("%.4g", r.Value), fmt.Sprintf("%.4g", r.Threshold)
		if r.Missing {
			value = "-"
		}
		if r.Op == "expr" && r.Threshold == 0 && !strings.Contains(r.Message, "bound") {
			threshold = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Severity, ruleStatus(r), value, threshold, oneLine(r.Message))
	}
	tw.Flush()

	if len(v.Failed) > 0 {
		fmt.Fprintf(out, "\nblocked by: %s\n", strings.Join(v.Failed, ", "))
		for _, r := range v.Rules {
			if !r.Passed && len(r.Evidence) > 0 {
				fmt.Fprintf(out, "evidence for %s:\n", r.Name)
				for _, k := range r.Evidence {
					fmt.Fprintf(out, "  %s\n", k)
				}
			}
		}
	}
}

func ruleStatus(r gate.RuleResult) string {
	switch {
	case r.Passed && r.Missing:
		return "pass (missing)"
	case r.Passed:
		return "pass"
	case r.Missing:
		return "MISSING"
	case r.Severity == gate.SeverityWarn:
		return "warn"
	default:
		return "FAIL"
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// loadPolicy reads a policy file. A release config is accepted too (its
// "gate:" section), so the policy a release ran with can be re-applied as is.
func loadPolicy(path string) (gate.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return gate.Policy{}, fmt.Errorf("--policy: %w", err)
	}
	var release struct {
		Kind string    `yaml:"kind"`
		Gate yaml.Node `yaml:"gate"`
	}
	if yaml.Unmarshal(b, &release) == nil && release.Kind == "Release" && !release.Gate.IsZero() {
		if b, err = yaml.Marshal(&release.Gate); err != nil {
			return gate.Policy{}, fmt.Errorf("--policy %s: gate section: %w", path, err)
		}
	}
	p, err := gate.ParsePolicy(b)
	if err != nil {
		return gate.Policy{}, fmt.Errorf("--policy %s: %w", path, err)
	}
	return p, nil
}
