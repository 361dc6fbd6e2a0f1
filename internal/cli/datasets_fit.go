package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/tabularfit"
)

// newDatasetsFitCmd is `starter datasets fit`: learn a tabular spec from a
// sample Parquet file, check that what it generates does not copy the
// sample, and write the spec for `datasets generate --kind tabular --spec`.
func newDatasetsFitCmd(env Env) *cobra.Command {
	var sample, out, protected, exclude string
	var seed uint64
	var holdout float64
	var checkRows int64
	cmd := &cobra.Command{
		Use:   "fit --sample FILE.parquet --out SPEC.yaml",
		Short: "Fit marginals and a Gaussian copula to a sample; write the spec after a privacy check",
		Long: `fit reads the sample with Arrow, holds out a share of its rows, fits empirical
marginals and a Gaussian copula on the rest, generates --check-rows synthetic rows
and runs the privacy check: no synthetic row may equal a sample row, and synthetic
rows must not sit closer to the training rows than held-out real rows do. The spec
is written only when the check passes (exit 3 when it fails).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if sample == "" || out == "" {
				return withCode(ExitBadInput, fmt.Errorf("--sample and --out are required"))
			}
			if holdout <= 0 || holdout >= 0.9 {
				return withCode(ExitBadInput, fmt.Errorf("--holdout %v: give a share between 0 and 0.9 (e.g. 0.2)", holdout))
			}
			ro := tabularfit.ReadOptions{Exclude: splitList(exclude)}
			fo := datasets.FitOptions{Seed: seed, Protected: splitList(protected)}
			spec, train, test, err := tabularfit.Fit(ctx, sample, ro, holdout, fo)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			g, err := datasets.NewTabular(spec, datasets.TabularOptions{NoTwins: true})
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			synth := g.SampleOf(seed, 0, checkRows)
			rep, err := datasets.CheckTabularPrivacy(ctx, train, test, synth, datasets.PrivacyOptions{})
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Fprintf(env.Stdout, "privacy check: %s\n", b)
			if !rep.Pass {
				return withCode(ExitBlocked, fmt.Errorf("privacy check failed: synthetic rows copy or sit too close to the sample; spec not written"))
			}
			y, err := spec.Encode()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, y, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(env.Stdout, "spec written to %s (%d training rows, %d held out)\n", out, train.Rows(), test.Rows())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sample, "sample", "", "sample Parquet file (read with Arrow)")
	f.StringVar(&out, "out", "", "where to write the fitted spec (YAML)")
	f.StringVar(&protected, "protected", "", "comma-separated protected attribute columns (category or bool)")
	f.StringVar(&exclude, "exclude", "", "comma-separated columns to leave out (identifiers, free text)")
	f.Uint64Var(&seed, "seed", 1, "seed for the split and the check rows")
	f.Float64Var(&holdout, "holdout", 0.2, "share of sample rows held out for the privacy check")
	f.Int64Var(&checkRows, "check-rows", 20000, "synthetic rows generated for the privacy check")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
