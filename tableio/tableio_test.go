package tableio_test

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/refmodel/predictive"
	"github.com/sandgate/sandgate/tableio"
)

// The generator's own Parquet file must read back as exactly the rows
// the generator yields in memory.
func TestReadGeneratedCreditFile(t *testing.T) {
	spec, err := datasets.BundledTabularSpec(predictive.CreditSpecName)
	if err != nil {
		t.Fatal(err)
	}
	g, err := datasets.NewTabular(spec, datasets.TabularOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "credit.parquet")
	if _, err := g.WriteParquet(context.Background(), path, 11, 0, 300, datasets.WriteOptions{RowGroupRows: 500}); err != nil {
		t.Fatal(err)
	}
	inputs, err := predictive.CreditInputs()
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, in := range inputs {
		cols = append(cols, in.Name)
	}
	got, err := tableio.ReadFile(context.Background(), path, tableio.Options{Columns: cols})
	if err != nil {
		t.Fatal(err)
	}
	want, err := predictive.LoadCredit(predictive.RowRange{Seed: 11, N: 300, Twins: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != want.Len() || got.Len() != 300*7 {
		t.Fatalf("rows %d, want %d", got.Len(), want.Len())
	}
	if err := tableio.CheckSameSchema(want.Table, got, "generator", path); err != nil {
		t.Fatal(err)
	}
	for i, c := range want.Table.Columns {
		g := got.Columns[i]
		for r := 0; r < got.Len(); r += 97 {
			if c.Type == modelapi.String && c.Strings[r] != g.Strings[r] || c.Type != modelapi.String && c.Float(r) != g.Float(r) {
				t.Fatalf("column %s row %d differs", c.Name, r)
			}
		}
	}

	// All columns: twin_of is null for original rows, which a feature
	// cannot be; the error names the file, column and row.
	_, err = tableio.ReadFile(context.Background(), path, tableio.Options{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"twin_of"`) || !strings.Contains(err.Error(), "null") {
		t.Fatalf("err = %v, want a null in twin_of named", err)
	}
	_, err = tableio.ReadFile(context.Background(), path, tableio.Options{Columns: []string{"age", "nope"}})
	if err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Fatalf("err = %v", err)
	}
}

type badRow struct {
	X    float64 `parquet:"x"`
	Blob []byte  `parquet:"blob"`
	S    string  `parquet:"s"`
	I    int32   `parquet:"i"`
	B    bool    `parquet:"b"`
}

func writeRows(t *testing.T, rows []badRow) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[badRow](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func TestReadErrorsNameFileAndColumn(t *testing.T) {
	ctx := context.Background()
	r := writeRows(t, []badRow{{X: 1, S: "a", I: 3, B: true}, {X: math.NaN(), S: "b", I: -4}})
	tab, err := tableio.Read(ctx, r, r.Size(), "mem.parquet", tableio.Options{Columns: []string{"s", "i", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Columns[0].Strings[1] != "b" || tab.Columns[1].Ints[1] != -4 || !tab.Columns[2].Bools[0] || tab.Columns[1].Type != modelapi.Int64 {
		t.Fatalf("table = %+v", tab)
	}
	_, err = tableio.Read(ctx, r, r.Size(), "mem.parquet", tableio.Options{Columns: []string{"x"}})
	if err == nil || !strings.Contains(err.Error(), `mem.parquet: column "x": row 1 is NaN`) {
		t.Fatalf("NaN: err = %v", err)
	}
	_, err = tableio.Read(ctx, r, r.Size(), "mem.parquet", tableio.Options{Columns: []string{"blob"}})
	if err == nil || !strings.Contains(err.Error(), `column "blob": is binary`) {
		t.Fatalf("blob: err = %v", err)
	}
	_, err = tableio.Read(ctx, bytes.NewReader([]byte("PAR1 not really")), 15, "junk.parquet", tableio.Options{})
	if err == nil || !strings.Contains(err.Error(), "junk.parquet") {
		t.Fatalf("junk: err = %v", err)
	}
}

func TestCheckSameSchema(t *testing.T) {
	a := modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("x", nil), modelapi.StringColumn("s", nil)}}
	for _, tc := range []struct {
		b    modelapi.Table
		want string
	}{
		{a, ""},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("x", nil)}}, `column "s" is in ref but missing from cand`},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Int64Column("x", nil), modelapi.StringColumn("s", nil)}}, `column "x" is float64 in ref but int64 in cand`},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.StringColumn("s", nil), modelapi.Float64Column("x", nil)}}, `column "x" is at position 0`},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("x", nil), modelapi.StringColumn("s", nil), modelapi.BoolColumn("extra", nil)}}, `column "extra" is in cand but missing from ref`},
	} {
		err := tableio.CheckSameSchema(a, tc.b, "ref", "cand")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckSameSchema(%v) = %v, want %q", tc.b.Names(), err, tc.want)
		}
	}
}
