package datasets_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
	"github.com/sandgate/sandgate/datasets/tabularfit"
)

// TestFitFromSample: a 125k-row "real" sample (originals of the bundled
// spec, read back with Arrow) is split 80/20; a spec fitted on the 100k
// training rows generates 100k rows that must match the training marginals
// (KS < 0.05 per numeric column) and correlation matrix (max |Δ| < 0.05),
// and pass the privacy check against the held-out rows.
func TestFitFromSample(t *testing.T) {
	if testing.Short() {
		t.Skip("fits and generates 100k rows")
	}
	ctx := t.Context()
	dir := t.TempDir()
	spec, err := datasets.BundledTabularSpec("credit-applicant")
	if err != nil {
		t.Fatal(err)
	}
	// With twins: ReadSample must drop them (they are copies, not data).
	if _, err := datasets.WriteTabularDataset(ctx, spec, filepath.Join(dir, "sample"), datasets.TabularDatasetOptions{Seed: 99, Rows: 125000}); err != nil {
		t.Fatal(err)
	}
	fitted, train, holdout, err := tabularfit.Fit(ctx, filepath.Join(dir, "sample", "part-00000.parquet"), tabularfit.ReadOptions{}, 0.2,
		datasets.FitOptions{Name: "credit-fitted", Seed: 1, Protected: []string{"sex", "race"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := train.Rows() + holdout.Rows(); r != 125000 {
		t.Fatalf("sample has %d original rows after dropping twins, want 125000", r)
	}
	// The fitted model is an ordinary spec: it survives YAML.
	y, err := fitted.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if fitted, err = datasets.ParseTabularSpec(y); err != nil {
		t.Fatal(err)
	}
	synthPath := filepath.Join(dir, "synth")
	m, err := datasets.WriteTabularDataset(ctx, fitted, synthPath, datasets.TabularDatasetOptions{Rows: int64(train.Rows()), Tabular: datasets.TabularOptions{NoTwins: true}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(synthPath, m.Files[0].Key)
	if n, err := arrowcheck.CountRowsArrow(file); err != nil || n != int64(train.Rows()) {
		t.Fatalf("arrow read back: %d, %v", n, err)
	}
	synth, err := tabularfit.ReadSample(ctx, file, tabularfit.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, c := range train.Columns {
		names = append(names, c.Name)
		if c.Type != datasets.ColumnInt && c.Type != datasets.ColumnFloat {
			continue
		}
		a, b := slices.Clone(c.Num), slices.Clone(synth.Column(c.Name).Num)
		slices.Sort(a)
		slices.Sort(b)
		ks := stat.KolmogorovSmirnov(a, nil, b, nil)
		t.Logf("KS %-18s %.4f", c.Name, ks)
		if ks >= 0.05 {
			t.Errorf("column %s: KS %.4f >= 0.05", c.Name, ks)
		}
	}
	ct, cs := corrMatrix(train, names), corrMatrix(synth, names)
	var worst float64
	var wa, wb string
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if d := math.Abs(ct.At(i, j) - cs.At(i, j)); d > worst {
				worst, wa, wb = d, names[i], names[j]
			}
		}
	}
	t.Logf("max |Δ correlation| %.4f (%s~%s)", worst, wa, wb)
	if worst >= 0.05 {
		t.Errorf("correlation matrix differs by %.4f at %s~%s (limit 0.05)", worst, wa, wb)
	}
	rep, err := datasets.CheckTabularPrivacy(ctx, train, holdout, synth, datasets.PrivacyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("privacy: %+v", rep)
	if !rep.Pass {
		t.Errorf("privacy check failed: %+v", rep)
	}

	// The check has teeth: releasing the training rows themselves fails.
	leak, err := datasets.CheckTabularPrivacy(ctx, train, holdout, train, datasets.PrivacyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if leak.Pass || leak.ExactMatches != int64(train.Rows()) {
		t.Errorf("copying the training data passed the privacy check: %+v", leak)
	}
}

// corrMatrix is the Pearson correlation of the columns as numbers
// (categories by their sorted-order code, bools 0/1).
func corrMatrix(s *datasets.Sample, names []string) *mat.SymDense {
	n := s.Rows()
	x := mat.NewDense(n, len(names), nil)
	for j, name := range names {
		c := s.Column(name)
		col := c.Num
		if c.Type == datasets.ColumnCategory {
			vals := slices.Clone(c.Str)
			slices.Sort(vals)
			vals = slices.Compact(vals)
			col = make([]float64, n)
			for i, v := range c.Str {
				k, _ := slices.BinarySearch(vals, v)
				col[i] = float64(k)
			}
		}
		x.SetCol(j, col)
	}
	var c mat.SymDense
	stat.CorrelationMatrix(&c, x, nil)
	return &c
}
