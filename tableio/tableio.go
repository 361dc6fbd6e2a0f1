// Package tableio reads flat Parquet files into modelapi.Table, the
// columnar rows the OIP client sends to a tabular model. It uses
// parquet-go (the reader family sandgate already links for writing), so
// production binaries need not link arrow-go.
//
// Type mapping: BOOLEAN → Bool; INT32/INT64 (signed, no decimal or
// temporal logical type) → Int64; FLOAT/DOUBLE → Float64; BYTE_ARRAY with
// the STRING or ENUM logical type → String. Anything else (binary blobs,
// decimals, timestamps, nested or repeated fields) is refused with an
// error naming the file and column. Model features must be complete:
// a null or a NaN is an error naming the file, column and row, never
// silently imputed.
package tableio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sandgate/sandgate/modelapi"
)

// Options select what Read returns. The zero value reads every column.
type Options struct {
	// Columns to read, in this order; nil reads all top-level columns in
	// file order. Use it to skip ids, labels or blobs the model does not
	// take (and that might have nulls or unsupported types).
	Columns []string
}

// ReadFile reads the Parquet file at path.
func ReadFile(ctx context.Context, path string, opt Options) (modelapi.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return modelapi.Table{}, fmt.Errorf("tableio: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return modelapi.Table{}, fmt.Errorf("tableio: stat %s: %w", path, err)
	}
	return Read(ctx, f, st.Size(), path, opt)
}

// Read reads a Parquet file of size bytes from r; name identifies it in
// errors (a path or an object key).
func Read(ctx context.Context, r io.ReaderAt, size int64, name string, opt Options) (t modelapi.Table, err error) {
	// parquet-go panics on some corrupt files (found by FuzzRead, e.g. a
	// bad page-index offset); a user's file must yield an error instead.
	defer func() {
		if v := recover(); v != nil {
			t, err = modelapi.Table{}, fmt.Errorf("tableio: %s: corrupt Parquet file: %v", name, v)
		}
	}()
	pf, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return modelapi.Table{}, fmt.Errorf("tableio: %s: not a readable Parquet file: %w", name, err)
	}
	fields := pf.Schema().Fields()
	want := opt.Columns
	if want == nil {
		for _, f := range fields {
			want = append(want, f.Name())
		}
	}
	for _, col := range want {
		if slices.Contains(t.Names(), col) {
			return modelapi.Table{}, fmt.Errorf("tableio: %s: column %q requested twice", name, col)
		}
		idx := slices.IndexFunc(fields, func(f parquet.Field) bool { return f.Name() == col })
		if idx < 0 {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.Name()
			}
			return modelapi.Table{}, fmt.Errorf("tableio: %s: no column %q; the file has %q", name, col, names)
		}
		f := fields[idx]
		if !f.Leaf() || f.Repeated() {
			return modelapi.Table{}, fmt.Errorf("tableio: %s: column %q is nested or repeated; only flat columns can be model inputs", name, col)
		}
		// For a flat schema, leaf index = field index.
		if err := leafIndexCheck(fields, idx); err != nil {
			return modelapi.Table{}, fmt.Errorf("tableio: %s: %w", name, err)
		}
		typ, err := columnType(f)
		if err != nil {
			return modelapi.Table{}, fmt.Errorf("tableio: %s: column %q: %w", name, col, err)
		}
		c := modelapi.Column{Name: col, Type: typ}
		if err := readColumn(ctx, pf, idx, &c); err != nil {
			return modelapi.Table{}, fmt.Errorf("tableio: %s: column %q: %w", name, col, err)
		}
		t.Columns = append(t.Columns, c)
	}
	if len(t.Columns) == 0 {
		return modelapi.Table{}, fmt.Errorf("tableio: %s: no columns", name)
	}
	return t, nil
}

// leafIndexCheck refuses files where a group precedes the column, which
// would shift leaf indices; such files are not flat.
func leafIndexCheck(fields []parquet.Field, idx int) error {
	for _, f := range fields[:idx] {
		if !f.Leaf() {
			return fmt.Errorf("column %q is nested; only flat files are supported", f.Name())
		}
	}
	return nil
}

func columnType(f parquet.Field) (modelapi.ColumnType, error) {
	typ := f.Type()
	var lt format.LogicalTypeValue
	if l := typ.LogicalType(); l != nil {
		lt = l.Value
	}
	switch typ.Kind() {
	case parquet.Boolean:
		return modelapi.Bool, nil
	case parquet.Int32, parquet.Int64:
		switch v := lt.(type) {
		case nil:
			return modelapi.Int64, nil
		case *format.IntType:
			if !v.IsSigned && v.BitWidth == 64 {
				return 0, errors.New("is UINT64, which may not fit int64; cast it to INT64 or DOUBLE")
			}
			return modelapi.Int64, nil
		}
		return 0, fmt.Errorf("has logical type %s; supported: plain integers, floats, strings, booleans", lt)
	case parquet.Float, parquet.Double:
		return modelapi.Float64, nil
	case parquet.ByteArray:
		switch lt.(type) {
		case *format.StringType, *format.EnumType:
			return modelapi.String, nil
		}
		return 0, errors.New("is binary without a STRING logical type (an image or blob?); it cannot be a tabular feature")
	}
	return 0, fmt.Errorf("has unsupported physical type %s", typ.Kind())
}

// readColumn decodes leaf column idx of every row group into c.
func readColumn(ctx context.Context, pf *parquet.File, idx int, c *modelapi.Column) error {
	buf := make([]parquet.Value, 4096)
	row := 0
	for _, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return err
		}
		pages := rg.ColumnChunks()[idx].Pages()
		err := func() error {
			defer pages.Close()
			for {
				p, err := pages.ReadPage()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("read page: %w", err)
				}
				vr := p.Values()
				for {
					n, err := vr.ReadValues(buf)
					for _, v := range buf[:n] {
						if err := appendValue(c, v, row); err != nil {
							parquet.Release(p)
							return err
						}
						row++
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						parquet.Release(p)
						return fmt.Errorf("decode values: %w", err)
					}
				}
				parquet.Release(p)
			}
		}()
		if err != nil {
			return err
		}
	}
	if int64(row) != pf.NumRows() {
		return fmt.Errorf("decoded %d values, the footer says %d rows", row, pf.NumRows())
	}
	return nil
}

func appendValue(c *modelapi.Column, v parquet.Value, row int) error {
	if v.IsNull() {
		return fmt.Errorf("row %d is null; model features must be complete (impute or drop the rows first)", row)
	}
	switch c.Type {
	case modelapi.Bool:
		c.Bools = append(c.Bools, v.Boolean())
	case modelapi.Int64:
		if v.Kind() == parquet.Int32 {
			c.Ints = append(c.Ints, int64(v.Int32()))
		} else {
			c.Ints = append(c.Ints, v.Int64())
		}
	case modelapi.Float64:
		x := v.Double()
		if v.Kind() == parquet.Float {
			x = float64(v.Float())
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("row %d is %v; model features must be finite (impute or drop the rows first)", row, x)
		}
		c.Floats = append(c.Floats, x)
	case modelapi.String:
		c.Strings = append(c.Strings, string(v.ByteArray()))
	}
	return nil
}

// CheckSameSchema reports the first difference between the columns of a
// and b (names, order and types), naming the tables and the column, e.g.
// a reference dataset and the one a candidate is scored on.
func CheckSameSchema(a, b modelapi.Table, nameA, nameB string) error {
	for i, ca := range a.Columns {
		cb, ok := b.Column(ca.Name)
		switch {
		case !ok:
			return fmt.Errorf("column %q is in %s but missing from %s", ca.Name, nameA, nameB)
		case cb.Type != ca.Type:
			return fmt.Errorf("column %q is %v in %s but %v in %s", ca.Name, ca.Type, nameA, cb.Type, nameB)
		case i >= len(b.Columns) || b.Columns[i].Name != ca.Name:
			return fmt.Errorf("column %q is at position %d in %s but elsewhere in %s; reorder the columns", ca.Name, i, nameA, nameB)
		}
	}
	for _, cb := range b.Columns {
		if _, ok := a.Column(cb.Name); !ok {
			return fmt.Errorf("column %q is in %s but missing from %s", cb.Name, nameB, nameA)
		}
	}
	return nil
}
