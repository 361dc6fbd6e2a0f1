// Package arrowcheck reads Parquet files with Apache Arrow's Go reader
// (arrow-go pqarrow), independently of parquet-go, which writes them. Tests
// use it to prove every file a release writes opens in the reader family
// notebooks use (pyarrow shares the format implementation lineage), not just
// in the library that wrote it.
//
// It lives in its own package so production binaries do not link arrow-go.
package arrowcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// batchRows keeps decoding memory small on large files.
const batchRows = 8192

// CountRowsArrow decodes every column of every row group and returns the
// number of rows actually decoded. It fails if that differs from the footer,
// so a truncated or corrupt page cannot hide behind correct metadata.
func CountRowsArrow(path string) (int64, error) {
	var n int64
	footer, err := scan(path, nil, func(rec arrow.RecordBatch) error {
		n += rec.NumRows()
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n != footer {
		return 0, fmt.Errorf("arrowcheck: %s: decoded %d rows, footer says %d", path, n, footer)
	}
	return n, nil
}

// ReadColumnStrings returns a string column (top-level name) in row order.
// Nulls are returned as "".
func ReadColumnStrings(path, column string) ([]string, error) {
	var out []string
	_, err := scan(path, []string{column}, func(rec arrow.RecordBatch) error {
		col := rec.Column(0)
		switch a := col.(type) {
		case *array.String:
			for i := 0; i < a.Len(); i++ {
				out = append(out, a.Value(i))
			}
		case *array.LargeString:
			for i := 0; i < a.Len(); i++ {
				out = append(out, a.Value(i))
			}
		case *array.Binary:
			for i := 0; i < a.Len(); i++ {
				out = append(out, string(a.Value(i)))
			}
		case *array.Dictionary:
			dict, ok := a.Dictionary().(*array.String)
			if !ok {
				return fmt.Errorf("column %q is a dictionary of %s, not strings", column, a.Dictionary().DataType())
			}
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					out = append(out, "")
					continue
				}
				out = append(out, dict.Value(a.GetValueIndex(i)))
			}
		default:
			return fmt.Errorf("column %q has Arrow type %s, not a string", column, col.DataType())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadColumnInt64s returns an integer column (top-level name) as int64s.
func ReadColumnInt64s(path, column string) ([]int64, error) {
	var out []int64
	_, err := scan(path, []string{column}, func(rec arrow.RecordBatch) error {
		switch a := rec.Column(0).(type) {
		case *array.Int64:
			out = append(out, a.Int64Values()...)
		case *array.Int32:
			for _, v := range a.Int32Values() {
				out = append(out, int64(v))
			}
		case *array.Uint64:
			for _, v := range a.Uint64Values() {
				out = append(out, int64(v))
			}
		default:
			return fmt.Errorf("column %q has Arrow type %s, not an integer", column, a.DataType())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FileInfo is footer metadata, for tests asserting how a file was written.
type FileInfo struct {
	Rows      int64
	RowGroups int
	// RowGroupRows is the row count of each row group.
	RowGroupRows []int64
	// Columns are the top-level field names in schema order.
	Columns []string
	// Compression is the codec of the first column chunk ("ZSTD", ...).
	Compression string
	// KeyValue is the file's key/value metadata.
	KeyValue map[string]string
}

// Inspect reads the footer through arrow-go.
func Inspect(path string) (FileInfo, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return FileInfo{}, fmt.Errorf("arrowcheck: open %s: %w", path, err)
	}
	defer rdr.Close()
	md := rdr.MetaData()
	info := FileInfo{Rows: rdr.NumRows(), RowGroups: rdr.NumRowGroups(), KeyValue: map[string]string{}}
	for i := 0; i < rdr.NumRowGroups(); i++ {
		rg := md.RowGroup(i)
		info.RowGroupRows = append(info.RowGroupRows, rg.NumRows())
		if i == 0 && rg.NumColumns() > 0 {
			cc, err := rg.ColumnChunk(0)
			if err != nil {
				return FileInfo{}, fmt.Errorf("arrowcheck: %s: column chunk: %w", path, err)
			}
			info.Compression = cc.Compression().String()
		}
	}
	root := md.Schema.Root()
	for i := 0; i < root.NumFields(); i++ {
		info.Columns = append(info.Columns, root.Field(i).Name())
	}
	kv := md.KeyValueMetadata()
	for i, k := range kv.Keys() {
		info.KeyValue[k] = kv.Values()[i]
	}
	return info, nil
}

// scan streams record batches of the named top-level columns (all when
// columns is nil) and returns the footer's row count.
func scan(path string, columns []string, fn func(arrow.RecordBatch) error) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("arrowcheck: %s: %w", path, err) }
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fail(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return fail(err)
	}
	var cols []int
	if columns != nil {
		sc, err := fr.Schema()
		if err != nil {
			return fail(err)
		}
		for _, name := range columns {
			idx := sc.FieldIndices(name)
			if len(idx) == 0 {
				var have []string
				for _, f := range sc.Fields() {
					have = append(have, f.Name)
				}
				return fail(fmt.Errorf("no column %q (columns: %v)", name, have))
			}
			// Field index == leaf index only for flat schemas, which is all
			// sandgate writes; nested columns are rejected rather than misread.
			if sc.Field(idx[0]).Type.ID() == arrow.STRUCT || sc.Field(idx[0]).Type.ID() == arrow.LIST {
				return fail(fmt.Errorf("column %q is nested; arrowcheck reads flat columns", name))
			}
			cols = append(cols, leafIndex(rdr, name))
		}
		if slices.Contains(cols, -1) {
			return fail(errors.New("column not found among leaves"))
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), cols, nil)
	if err != nil {
		return fail(err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := fn(rr.RecordBatch()); err != nil {
			return fail(err)
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	return rdr.NumRows(), nil
}

func leafIndex(rdr *file.Reader, name string) int {
	return rdr.MetaData().Schema.ColumnIndexByName(name)
}
