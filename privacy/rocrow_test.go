package privacy

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// The stored ROC must come back column for column, including the +Inf
// threshold of the first point, under the documented column names.
func TestROCRowParquet(t *testing.T) {
	r, err := NewROC([]float64{3, 2, 2, 1}, []float64{2, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	rows := r.Rows("rel-1", "loss", r.Points)
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	back, err := parquet.Read[ROCRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, rows) || !math.IsInf(back[0].Threshold, 1) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", back, rows)
	}
	var names []string
	for _, f := range parquet.SchemaOf(ROCRow{}).Fields() {
		names = append(names, f.Name())
	}
	want := []string{"release_id", "attack", "threshold", "fpr", "tpr", "tp", "fp", "members", "non_members"}
	if !slices.Equal(names, want) {
		t.Errorf("columns %v, want %v", names, want)
	}
}
