package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
)

// runDatasets runs `starter datasets ...` in-process with a root command
// of its own, so the test does not depend on cli.go wiring the command.
func runDatasets(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	cmd := newDatasetsCmd(env)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	code = 0
	if err != nil {
		errb.WriteString("error: " + err.Error() + "\n")
		code = ExitError
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		} else if isUsageError(err) {
			code = ExitBadInput
		}
	}
	return code, out.String(), errb.String()
}

func TestDatasetsGenerateImagesAndReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "imgs")
	args := []string{"generate", "--kind", "images", "--rows", "25", "--part-rows", "10", "--seed", "7", "--width", "32", "--height", "32", "--out", dir}
	code, out, errs := runDatasets(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := datasets.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	// 3 image parts (10, 10, 5) and their perturbation parts (×7 rows).
	if len(m.Files) != 6 || m.Rows != 25*8 || m.Seed != 7 || m.Generator != datasets.ImagesGenerator || m.Params["width"] != "32" {
		t.Fatalf("manifest %+v", m)
	}
	for _, f := range m.Files {
		n, err := arrowcheck.CountRowsArrow(filepath.Join(dir, filepath.FromSlash(f.Key)))
		if err != nil || n != f.Rows {
			t.Fatalf("%s: %d rows, %v; manifest says %d", f.Key, n, err, f.Rows)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".staging-*")); len(entries) != 0 {
		t.Fatalf("staging left behind: %v", entries)
	}
	st, _ := os.Stat(filepath.Join(dir, "manifest.json"))

	// Same parameters: reused, nothing rewritten.
	code, out, errs = runDatasets(t, args...)
	if code != 0 || !strings.Contains(out, "reused") {
		t.Fatalf("second run: exit %d, %q %q", code, out, errs)
	}
	if st2, _ := os.Stat(filepath.Join(dir, "manifest.json")); !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("manifest rewritten on reuse")
	}
	// A missing part, or another seed, regenerates.
	os.Remove(filepath.Join(dir, "images", "part-00001.parquet"))
	if code, out, _ = runDatasets(t, args...); code != 0 || strings.Contains(out, "reused") {
		t.Fatalf("missing part was not regenerated: %d %q", code, out)
	}
	b2, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if !bytes.Equal(b, b2) {
		t.Fatal("regenerating with the same seed changed the manifest (and so the file hashes)")
	}
}

func TestDatasetsGeneratePrompts(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runDatasets(t, "generate", "--kind", "prompts", "--rows", "300", "--part-rows", "200", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := datasets.ParseManifest(b)
	if err != nil || m.Rows != 300 || len(m.Files) != 2 || m.Files[1].Key != "part-00001.parquet" {
		t.Fatalf("manifest %+v, %v", m, err)
	}
}

func TestDatasetsGenerateBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"generate", "--kind", "videos", "--out", dir},
		{"generate", "--kind", "images", "--rows", "0", "--out", dir},
		{"generate", "--kind", "images", "--width", "3", "--out", dir},
		{"generate", "--kind", "prompts", "--width", "32", "--out", dir},
		{"generate", "--kind", "prompts", "--spec", "x.yaml", "--out", dir},
		{"generate", "--kind", "tabular", "--out", dir},
		{"generate", "--kind", "images", "--out", "s3://"},
		{"generate", "--kind", "images", "--out", "gs://bucket/x"},
		{"generate", "--kind", "images"},
		{"generate", "--kind", "images", "--rows", "x", "--out", dir},
	} {
		code, _, errs := runDatasets(t, args...)
		if code != ExitBadInput {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitBadInput, errs)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("bad flags wrote %v", entries)
	}
}

// TestDatasetsFitFromGeneratedSample fits a spec to a tabular sample that
// sandgate generated, which must pass the privacy check and be usable.
func TestDatasetsFitFromGeneratedSample(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runDatasets(t, "generate", "--kind", "tabular", "--spec", "credit-applicant", "--rows", "3000", "--out", dir); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(parts) == 0 {
		parts, _ = filepath.Glob(filepath.Join(dir, "*", "*.parquet"))
	}
	if len(parts) == 0 {
		t.Fatal("no parquet part generated")
	}
	spec := filepath.Join(t.TempDir(), "fitted.yaml")
	code, stdout, stderr := runDatasets(t, "fit", "--sample", parts[0], "--out", spec, "--protected", "sex", "--check-rows", "3000")
	if code != 0 {
		t.Fatalf("fit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.ParseTabularSpec(b); err != nil {
		t.Fatalf("fitted spec does not parse back: %v", err)
	}
	if code, _, _ := runDatasets(t, "fit", "--sample", filepath.Join(dir, "missing.parquet"), "--out", spec); code != ExitBadInput {
		t.Errorf("missing sample: exit %d, want %d", code, ExitBadInput)
	}
}
