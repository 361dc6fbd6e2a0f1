package modelapi

import (
	"reflect"
	"testing"
)

func TestTableTakeAndAppend(t *testing.T) {
	a := Table{Columns: []Column{Float64Column("x", []float64{1, 2, 3}), StringColumn("s", []string{"a", "b", "c"}),
		Int64Column("n", []int64{7, 8, 9}), BoolColumn("b", []bool{true, false, true})}}
	got := a.Take([]int{2, 0, 0})
	want := Table{Columns: []Column{Float64Column("x", []float64{3, 1, 1}), StringColumn("s", []string{"c", "a", "a"}),
		Int64Column("n", []int64{9, 7, 7}), BoolColumn("b", []bool{true, true, true})}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Take = %+v\nwant %+v", got, want)
	}
	got.Columns[0].Floats[0] = 99
	if a.Columns[0].Floats[2] != 3 {
		t.Fatal("Take shares storage with its source")
	}
	var all Table
	all.Append(a.Slice(0, 1))
	all.Append(a.Slice(1, 3))
	if !reflect.DeepEqual(all.Take([]int{0, 1, 2}), a.Take([]int{0, 1, 2})) || all.Len() != 3 {
		t.Fatalf("Append of two slices = %+v, want %+v", all, a)
	}
}
