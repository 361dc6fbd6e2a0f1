package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandgate/sandgate/internal/testutil"
)

// TestRecordsMatchTheExamples regenerates the reference scorers' member and
// non-member records and compares them byte for byte with the copies the
// examples use, so the examples cannot drift from the models.
func TestRecordsMatchTheExamples(t *testing.T) {
	dir := t.TempDir()
	for _, variant := range []string{"overfit", "dp"} {
		out := &testutil.LockedBuffer{}
		code := Run(context.Background(), Env{Stdout: out, Stderr: out, Getenv: func(string) string { return "" }},
			[]string{"datasets", "records", "--variant", variant, "--out", dir})
		if code != 0 {
			t.Fatalf("records --variant %s: exit %d: %s", variant, code, out.String())
		}
		for _, name := range []string{variant + "-members.parquet", variant + "-non-members.parquet"} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("..", "..", "examples", "data", name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from examples/data/%s: regenerate with `starter datasets records --variant %s --out examples/data`", name, name, variant)
			}
		}
	}
	out := &testutil.LockedBuffer{}
	if code := Run(context.Background(), Env{Stdout: out, Stderr: out, Getenv: func(string) string { return "" }},
		[]string{"datasets", "records", "--variant", "fair", "--out", dir}); code != ExitBadInput {
		t.Errorf("records --variant fair: exit %d, want %d (no published training set)", code, ExitBadInput)
	}
}
