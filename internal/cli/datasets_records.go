package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/refmodel/predictive"
	"github.com/sandgate/sandgate/tableio"
)

// newDatasetsRecordsCmd is `starter datasets records`: the member and
// non-member records of a bundled reference scorer, the inputs a
// membership-inference suite needs (suites.membership.members/non_members).
func newDatasetsRecordsCmd(env Env) *cobra.Command {
	var variant, out string
	cmd := &cobra.Command{
		Use:   "records --variant overfit|dp --out DIR",
		Short: "Write the training (member) and held-out (non-member) records of a reference credit scorer",
		Long: `records writes DIR/<variant>-members.parquet and DIR/<variant>-non-members.parquet:
the exact rows the reference credit scorer of that variant was trained on, and as
many rows from the same distribution it never saw. Columns are the model's inputs
plus "approved", the label it learned. Point suites.membership at them (local
paths are uploaded to the release's inputs/ when the release starts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{predictive.CreditOverfit, predictive.CreditDP}, variant) {
				return withCode(ExitBadInput, fmt.Errorf("--variant %q: use %s or %s (the variants with a published training set)", variant, predictive.CreditOverfit, predictive.CreditDP))
			}
			if out == "" {
				return withCode(ExitBadInput, fmt.Errorf("--out is required: a directory"))
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, members := range []bool{true, false} {
				t, err := predictive.Records(variant, members)
				if err != nil {
					return err
				}
				name := variant + "-members.parquet"
				if !members {
					name = variant + "-non-members.parquet"
				}
				p := filepath.Join(out, name)
				if err := tableio.WriteFile(p, t); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "%s: %d records\n", p, t.Len())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&variant, "variant", "", "reference credit scorer variant: overfit or dp")
	cmd.Flags().StringVar(&out, "out", "", "directory to write the two Parquet files to")
	return cmd
}
