package datasets

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets/arrowcheck"
)

func creditSpec(t testing.TB) *TabularSpec {
	t.Helper()
	s, err := BundledTabularSpec("credit-applicant")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTabularDeterminism(t *testing.T) {
	ctx := t.Context()
	spec := creditSpec(t)
	dir := t.TempDir()
	write := func(name string, seed uint64) Manifest {
		m, err := WriteTabularDataset(ctx, spec, filepath.Join(dir, name), TabularDatasetOptions{Seed: seed, Rows: 30000, Shards: 2, Write: WriteOptions{RowGroupRows: 50000}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b, c := write("a", 7), write("b", 7), write("c", 8)
	if len(a.Files) != 2 || a.Rows != 30000*7 {
		t.Fatalf("manifest: %d files, %d rows; want 2 files, %d rows (1 original + 6 twins each)", len(a.Files), a.Rows, 30000*7)
	}
	for i := range a.Files {
		if a.Files[i].SHA256 != b.Files[i].SHA256 {
			t.Errorf("part %d: same seed gave %s and %s", i, a.Files[i].SHA256, b.Files[i].SHA256)
		}
		if a.Files[i].SHA256 == c.Files[i].SHA256 {
			t.Errorf("part %d: seeds 7 and 8 gave the same file", i)
		}
		// The manifest's hash is of the bytes on disk, and Arrow reads them.
		path := filepath.Join(dir, "a", a.Files[i].Key)
		n, err := arrowcheck.CountRowsArrow(path)
		if err != nil || n != a.Files[i].Rows {
			t.Fatalf("arrow read back %s: %d rows, %v; want %d", path, n, err, a.Files[i].Rows)
		}
	}
	info, err := arrowcheck.Inspect(filepath.Join(dir, "a", "part-00000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"id", "twin_of", "flipped_attribute"}
	for _, c := range spec.Columns {
		want = append(want, c.Name)
	}
	if !slices.Equal(info.Columns, want) || info.Compression != "ZSTD" {
		t.Errorf("columns %v compression %s; want %v ZSTD", info.Columns, info.Compression, want)
	}
	if info.KeyValue["seed"] != "7" || info.KeyValue["generator"] != TabularGeneratorName {
		t.Errorf("file metadata %v lacks seed/generator", info.KeyValue)
	}
	// Shard 1 starts at original 15000: its ids continue shard 0's.
	ids, err := arrowcheck.ReadColumnInt64s(filepath.Join(dir, "a", "part-00001.parquet"), "id")
	if err != nil || ids[0] != 15000*7 {
		t.Fatalf("shard 1 first id %v, %v; want %d", ids[:1], err, 15000*7)
	}
}

// Row i depends only on (seed, i): any window equals the same window of a
// longer run, which is what lets shards be generated independently.
func TestTabularRowsIndependentOfOffset(t *testing.T) {
	g, err := NewTabular(creditSpec(t), TabularOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Collect(g.Rows(3, 0, 50))
	win := slices.Collect(g.Rows(3, 20, 10))
	per := int(g.RowsPerOriginal())
	if !reflect.DeepEqual(win, all[20*per:30*per]) {
		t.Fatal("rows 20..29 generated alone differ from the same rows of a longer run")
	}
}

func TestTabularTwins(t *testing.T) {
	spec := creditSpec(t)
	g, err := NewTabular(spec, TabularOptions{})
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, c := range spec.Columns {
		col[c.Name] = i
	}
	var orig TabularRow
	flips := map[string][]any{}
	n := 0
	for r := range g.Rows(11, 0, 200) {
		n++
		if r.TwinOf < 0 {
			if orig.Values != nil {
				checkTwinSet(t, orig, flips, spec)
			}
			orig, flips = r, map[string][]any{}
			continue
		}
		if r.TwinOf != orig.ID || r.ID <= orig.ID {
			t.Fatalf("twin %d points at %d, want %d", r.ID, r.TwinOf, orig.ID)
		}
		for j, v := range r.Values {
			name := spec.Columns[j].Name
			if name == r.FlippedAttribute {
				if v == orig.Values[j] {
					t.Fatalf("twin %d: %s not flipped", r.ID, name)
				}
				flips[name] = append(flips[name], v)
			} else if v != orig.Values[j] {
				t.Fatalf("twin %d flips %s but also changes %s (%v → %v)", r.ID, r.FlippedAttribute, name, orig.Values[j], v)
			}
		}
	}
	checkTwinSet(t, orig, flips, spec)
	if n != 200*7 {
		t.Fatalf("%d rows, want %d", n, 200*7)
	}
	// NoTwins: originals only, ids consecutive.
	g2, _ := NewTabular(spec, TabularOptions{NoTwins: true})
	var ids []int64
	for r := range g2.Rows(11, 0, 5) {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("NoTwins ids %v", ids)
	}
}

// checkTwinSet: every alternative value of every protected attribute
// appears exactly once.
func checkTwinSet(t *testing.T, orig TabularRow, flips map[string][]any, spec *TabularSpec) {
	t.Helper()
	for _, p := range spec.Protected {
		var c ColumnSpec
		var j int
		for j = range spec.Columns {
			if spec.Columns[j].Name == p {
				c = spec.Columns[j]
				break
			}
		}
		var want []any
		if c.Type == ColumnBool {
			want = []any{!orig.Values[j].(bool)}
		} else {
			for _, v := range c.Distribution.Values {
				if v != orig.Values[j] {
					want = append(want, v)
				}
			}
		}
		got := flips[p]
		if len(got) != len(want) {
			t.Fatalf("row %d: %s twins %v, want each of %v", orig.ID, p, got, want)
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Fatalf("row %d: %s twins %v lack %v", orig.ID, p, got, w)
			}
		}
	}
}

func TestTabularBadSpecsWriteNothing(t *testing.T) {
	cases := map[string][]string{
		"bad-unknown-distribution.yaml":  {"columns[0] (income)", `distribution.kind "gamma" is unknown`, "lognormal"},
		"bad-not-psd.yaml":               {"not positive semi-definite", "a~c", "fix:"},
		"bad-protected-missing.yaml":     {"protected[1]", `"race"`, "declare it under columns"},
		"bad-protected-numeric.yaml":     {"protected[0]", "category or bool"},
		"bad-unknown-field.yaml":         {"clamp", "not found"},
		"bad-wrong-param.yaml":           {"distribution.std is not a parameter of poisson", "lambda"},
		"bad-unordered-correlation.yaml": {"race~income", "ordinal: true"},
	}
	for file, wants := range cases {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "tabular", file))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "out")
			spec, err := ParseTabularSpec(b)
			if err == nil {
				// Specs that parse must still be rejected before writing.
				_, err = WriteTabularDataset(t.Context(), spec, dir, TabularDatasetOptions{Rows: 10})
			}
			if err == nil {
				t.Fatal("accepted a bad spec")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
				t.Errorf("output directory exists after a rejected spec")
			}
		})
	}
	// A valid spec mutated after parsing is re-validated by the writer.
	spec := creditSpec(t)
	spec.Protected = append(spec.Protected, "religion")
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := WriteTabularDataset(t.Context(), spec, dir, TabularDatasetOptions{Rows: 10}); err == nil || !strings.Contains(err.Error(), "religion") {
		t.Fatalf("want protected error, got %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("output directory exists after a rejected spec")
	}
}

func TestTabularSpecEncodeRoundTrip(t *testing.T) {
	spec := creditSpec(t)
	b, err := spec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseTabularSpec(b)
	if err != nil {
		t.Fatalf("re-parse encoded spec: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(spec, again) {
		t.Fatal("spec changed through Encode/Parse")
	}
}

// The copula produces the requested latent correlation: check one pair
// through normal scores, which undo the marginal transform.
func TestTabularCorrelationFollowsSpec(t *testing.T) {
	spec := creditSpec(t)
	g, err := NewTabular(spec, TabularOptions{NoTwins: true})
	if err != nil {
		t.Fatal(err)
	}
	s := g.SampleOf(5, 0, 50000)
	fitted, err := FitTabular(t.Context(), s, FitOptions{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fitted.Correlations {
		if c.A == "annual_income" && c.B == "loan_amount" {
			if d := c.Rho - 0.45; d > 0.02 || d < -0.02 {
				t.Fatalf("annual_income~loan_amount normal-score correlation %.3f, spec says 0.45", c.Rho)
			}
			return
		}
	}
	t.Fatal("annual_income~loan_amount not found in fitted correlations")
}
