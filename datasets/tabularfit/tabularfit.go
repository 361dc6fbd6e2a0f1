// Package tabularfit reads a sample Parquet file with Apache Arrow (pqarrow)
// and fits a tabular spec to it (datasets.FitTabular). It is separate from
// datasets so binaries that only generate do not link arrow-go.
package tabularfit

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

	"github.com/sandgate/sandgate/datasets"
)

// MaxSampleRows bounds what ReadSample loads: fitting keeps the sample in
// memory (8 bytes per numeric cell), and a million rows is plenty for
// marginals and a copula.
const MaxSampleRows = 5_000_000

// batchRows keeps Arrow's decoding buffers small.
const batchRows = 16384

// ReadOptions selects the columns to read.
type ReadOptions struct {
	// Columns to read; empty means every supported column except the
	// generator's bookkeeping (id, twin_of, flipped_attribute).
	Columns []string
	// Exclude drops columns (identifiers, free text) from the default set.
	Exclude []string
}

// ReadSample loads a Parquet file into a datasets.Sample. Integer columns
// become int, floating point float, booleans bool, strings (plain or
// dictionary) category. Rows whose twin_of is set (counterfactual twins of
// a sandgate dataset) are skipped: they are copies, not observations.
func ReadSample(ctx context.Context, path string, opts ReadOptions) (*datasets.Sample, error) {
	fail := func(err error) (*datasets.Sample, error) {
		return nil, fmt.Errorf("tabularfit: read %s: %w", path, err)
	}
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fail(err)
	}
	defer rdr.Close()
	if rdr.NumRows() > MaxSampleRows {
		return fail(fmt.Errorf("%d rows is over the %d-row sample limit; sample it down first (e.g. DuckDB USING SAMPLE)", rdr.NumRows(), MaxSampleRows))
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return fail(err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return fail(err)
	}
	want := opts.Columns
	if len(want) == 0 {
		for _, f := range sc.Fields() {
			if !slices.Contains([]string{"id", "twin_of", "flipped_attribute"}, f.Name) && !slices.Contains(opts.Exclude, f.Name) {
				want = append(want, f.Name)
			}
		}
	}
	readNames := slices.Clone(want)
	twinIdx := -1
	if sc.HasField("twin_of") {
		twinIdx = len(readNames)
		readNames = append(readNames, "twin_of")
	}
	var leaves []int
	for _, name := range readNames {
		idx := rdr.MetaData().Schema.ColumnIndexByName(name)
		if idx < 0 {
			return fail(fmt.Errorf("no column %q", name))
		}
		leaves = append(leaves, idx)
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return fail(err)
	}
	defer rr.Release()

	s := &datasets.Sample{}
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		rec := rr.RecordBatch()
		if s.Columns == nil {
			for j, name := range want {
				typ, err := columnType(rec.Column(j).DataType())
				if err != nil {
					return fail(fmt.Errorf("column %q: %w; pass it in ReadOptions.Exclude", name, err))
				}
				s.Columns = append(s.Columns, datasets.SampleColumn{Name: name, Type: typ})
			}
		}
		var keep []bool
		if twinIdx >= 0 {
			tw := rec.Column(twinIdx)
			keep = make([]bool, rec.NumRows())
			for i := range keep {
				keep[i] = tw.IsNull(i)
			}
		}
		for j := range want {
			if err := appendColumn(&s.Columns[j], rec.Column(j), keep); err != nil {
				return fail(err)
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	if s.Columns == nil {
		return fail(errors.New("the file has no rows"))
	}
	return s, nil
}

func columnType(t arrow.DataType) (string, error) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return datasets.ColumnInt, nil
	case arrow.FLOAT32, arrow.FLOAT64:
		return datasets.ColumnFloat, nil
	case arrow.BOOL:
		return datasets.ColumnBool, nil
	case arrow.STRING, arrow.LARGE_STRING:
		return datasets.ColumnCategory, nil
	case arrow.DICTIONARY:
		if d := t.(*arrow.DictionaryType); d.ValueType.ID() == arrow.STRING {
			return datasets.ColumnCategory, nil
		}
	}
	return "", fmt.Errorf("Arrow type %s is not supported (int, float, bool, string)", t)
}

func appendColumn(c *datasets.SampleColumn, a arrow.Array, keep []bool) error {
	for i := 0; i < a.Len(); i++ {
		if keep != nil && !keep[i] {
			continue
		}
		if a.IsNull(i) {
			return fmt.Errorf("column %q has a null at batch row %d; fill or drop nulls, or exclude the column", c.Name, i)
		}
		switch v := a.(type) {
		case *array.Int8:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Int16:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Int32:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Int64:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Uint8:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Uint16:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Uint32:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Uint64:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Float32:
			c.Num = append(c.Num, float64(v.Value(i)))
		case *array.Float64:
			c.Num = append(c.Num, v.Value(i))
		case *array.Boolean:
			b := 0.0
			if v.Value(i) {
				b = 1
			}
			c.Num = append(c.Num, b)
		case *array.String:
			c.Str = append(c.Str, v.Value(i))
		case *array.LargeString:
			c.Str = append(c.Str, v.Value(i))
		case *array.Dictionary:
			c.Str = append(c.Str, v.Dictionary().(*array.String).Value(v.GetValueIndex(i)))
		default:
			return fmt.Errorf("column %q: unexpected Arrow array %T", c.Name, a)
		}
	}
	return nil
}

// Fit reads a sample with Arrow, splits off a held-out part (holdout share
// of rows, e.g. 0.2; 0 uses every row for fitting) and fits a spec to the
// rest. It returns the spec and both splits for CheckTabularPrivacy.
func Fit(ctx context.Context, path string, ro ReadOptions, holdout float64, fo datasets.FitOptions) (spec *datasets.TabularSpec, train, test *datasets.Sample, err error) {
	if holdout < 0 || holdout >= 1 {
		return nil, nil, nil, fmt.Errorf("tabularfit: holdout share %g must be in [0, 1)", holdout)
	}
	s, err := ReadSample(ctx, path, ro)
	if err != nil {
		return nil, nil, nil, err
	}
	train, test = s.Split(fo.Seed, holdout)
	spec, err = datasets.FitTabular(ctx, train, fo)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tabularfit: %s: %w", path, err)
	}
	return spec, train, test, nil
}
