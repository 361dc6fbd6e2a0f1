package tableio

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sandgate/sandgate/modelapi"
)

func TestWriteFileRoundTrip(t *testing.T) {
	in := modelapi.Table{Columns: []modelapi.Column{
		modelapi.StringColumn("sex", []string{"female", "male", "female"}),
		modelapi.Float64Column("income", []float64{52000.5, 31000, 0}),
		modelapi.Int64Column("age", []int64{41, 23, 67}),
		modelapi.BoolColumn("approved", []bool{true, false, true}),
	}}
	p := filepath.Join(t.TempDir(), "records.parquet")
	if err := WriteFile(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(context.Background(), p, Options{Columns: in.Names()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("read back %+v\nwant %+v", out, in)
	}
	bad := modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("x", []float64{1}), modelapi.Float64Column("y", []float64{1, 2})}}
	if err := WriteFile(filepath.Join(t.TempDir(), "bad.parquet"), bad); err == nil {
		t.Fatal("a ragged table was written")
	}
}
