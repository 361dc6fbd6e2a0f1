package modelapi

import (
	"errors"
	"fmt"
	"math"
)

// ColumnType is the element type of a Table column.
type ColumnType int

// Column types. Each maps to one OIP v2 datatype (see Datatype).
const (
	Float64 ColumnType = iota + 1
	Int64
	String
	Bool
)

func (t ColumnType) String() string {
	switch t {
	case Float64:
		return "float64"
	case Int64:
		return "int64"
	case String:
		return "string"
	case Bool:
		return "bool"
	}
	return fmt.Sprintf("ColumnType(%d)", int(t))
}

// Datatype is the OIP v2 tensor datatype a column of this type is sent as.
func (t ColumnType) Datatype() string {
	switch t {
	case Float64:
		return DatatypeFP64
	case Int64:
		return DatatypeINT64
	case String:
		return DatatypeBYTES
	case Bool:
		return DatatypeBOOL
	}
	return ""
}

// Column is one named, typed column. Exactly the slice matching Type is
// used; the others stay nil.
type Column struct {
	Name    string
	Type    ColumnType
	Floats  []float64
	Ints    []int64
	Strings []string
	Bools   []bool
}

// Float64Column, Int64Column, StringColumn and BoolColumn build columns
// without copying v.
func Float64Column(name string, v []float64) Column {
	return Column{Name: name, Type: Float64, Floats: v}
}

// Int64Column builds an int64 column.
func Int64Column(name string, v []int64) Column { return Column{Name: name, Type: Int64, Ints: v} }

// StringColumn builds a string column (sent as BYTES).
func StringColumn(name string, v []string) Column {
	return Column{Name: name, Type: String, Strings: v}
}

// BoolColumn builds a bool column.
func BoolColumn(name string, v []bool) Column { return Column{Name: name, Type: Bool, Bools: v} }

// Len is the number of values in the column's typed slice.
func (c Column) Len() int {
	switch c.Type {
	case Float64:
		return len(c.Floats)
	case Int64:
		return len(c.Ints)
	case String:
		return len(c.Strings)
	case Bool:
		return len(c.Bools)
	}
	return 0
}

// Float returns row i as a float64 whatever the numeric type; bools are
// 0/1. Strings return NaN: callers check Type first.
func (c Column) Float(i int) float64 {
	switch c.Type {
	case Float64:
		return c.Floats[i]
	case Int64:
		return float64(c.Ints[i])
	case Bool:
		if c.Bools[i] {
			return 1
		}
		return 0
	}
	return math.NaN()
}

func (c Column) slice(lo, hi int) Column {
	out := Column{Name: c.Name, Type: c.Type}
	switch c.Type {
	case Float64:
		out.Floats = c.Floats[lo:hi]
	case Int64:
		out.Ints = c.Ints[lo:hi]
	case String:
		out.Strings = c.Strings[lo:hi]
	case Bool:
		out.Bools = c.Bools[lo:hi]
	}
	return out
}

// Table is a set of equal-length named columns: the rows a tabular model
// scores. The OIP client sends one input tensor per column, named after
// it (the MLServer pandas-codec layout), so column names must be the
// model's input names.
type Table struct {
	Columns []Column
}

// Len is the number of rows (that of the first column; Validate checks
// that all agree).
func (t Table) Len() int {
	if len(t.Columns) == 0 {
		return 0
	}
	return t.Columns[0].Len()
}

// Column returns the column named name.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Names lists the column names in order.
func (t Table) Names() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// Slice returns rows lo..hi-1, sharing storage with t.
func (t Table) Slice(lo, hi int) Table {
	out := Table{Columns: make([]Column, len(t.Columns))}
	for i, c := range t.Columns {
		out.Columns[i] = c.slice(lo, hi)
	}
	return out
}

// Take returns a copy of rows idx of t, in that order; an index may repeat.
func (t Table) Take(idx []int) Table {
	out := Table{Columns: make([]Column, len(t.Columns))}
	for ci, c := range t.Columns {
		nc := Column{Name: c.Name, Type: c.Type}
		for _, i := range idx {
			switch c.Type {
			case Float64:
				nc.Floats = append(nc.Floats, c.Floats[i])
			case Int64:
				nc.Ints = append(nc.Ints, c.Ints[i])
			case String:
				nc.Strings = append(nc.Strings, c.Strings[i])
			case Bool:
				nc.Bools = append(nc.Bools, c.Bools[i])
			}
		}
		out.Columns[ci] = nc
	}
	return out
}

// Append adds src's rows to t. src must have t's columns in t's order (as
// the parts of one dataset do); an empty t takes src's columns.
func (t *Table) Append(src Table) {
	if len(t.Columns) == 0 {
		t.Columns = append([]Column(nil), src.Columns...)
		return
	}
	for i := range t.Columns {
		d, s := &t.Columns[i], src.Columns[i]
		d.Floats = append(d.Floats, s.Floats...)
		d.Ints = append(d.Ints, s.Ints...)
		d.Strings = append(d.Strings, s.Strings...)
		d.Bools = append(d.Bools, s.Bools...)
	}
}

// Validate reports the first problem: no columns, an empty or duplicate
// name, an unknown type, a column whose length differs from the first's,
// or a NaN/Inf float (JSON cannot carry it).
func (t Table) Validate() error {
	if len(t.Columns) == 0 {
		return errors.New("table has no columns; add at least one feature column")
	}
	n := t.Columns[0].Len()
	seen := make(map[string]bool, len(t.Columns))
	for i, c := range t.Columns {
		switch {
		case c.Name == "":
			return fmt.Errorf("table column %d has an empty name; name it after the model input", i)
		case seen[c.Name]:
			return fmt.Errorf("table column %q appears twice; column names must be unique", c.Name)
		case c.Type.Datatype() == "":
			return fmt.Errorf("table column %q has unknown type %v; use Float64, Int64, String or Bool", c.Name, c.Type)
		case c.Len() != n:
			return fmt.Errorf("table column %q has %d rows, column %q has %d; all columns must have the same length",
				c.Name, c.Len(), t.Columns[0].Name, n)
		}
		seen[c.Name] = true
		for j, v := range c.Floats {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("table column %q row %d is %v; JSON cannot carry NaN or Inf, impute or drop the row", c.Name, j, v)
			}
		}
	}
	return nil
}
