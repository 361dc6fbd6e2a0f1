package tableio

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sandgate/sandgate/modelapi"
)

// WriteFile writes t as a flat Parquet file (zstd), one required column per
// Table column: the layout Read reads back and the one to hand sandgate as
// membership records. Parquet orders a group's columns by name, so the
// file's column order is alphabetical whatever t's order is. The file is
// written beside path and renamed into place, so a failed write leaves no
// partial file behind.
func WriteFile(path string, t modelapi.Table) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	group := parquet.Group{}
	for _, c := range t.Columns {
		var n parquet.Node
		switch c.Type {
		case modelapi.Float64:
			n = parquet.Leaf(parquet.DoubleType)
		case modelapi.Int64:
			n = parquet.Int(64)
		case modelapi.String:
			n = parquet.String()
		case modelapi.Bool:
			n = parquet.Leaf(parquet.BooleanType)
		default:
			return fmt.Errorf("tableio: write %s: column %q has type %v", path, c.Name, c.Type)
		}
		group[c.Name] = parquet.Compressed(n, &zstd.Codec{})
	}
	schema := parquet.NewSchema("records", group)
	// Leaf order in the schema is by name; map each leaf to its column.
	cols := make([]modelapi.Column, 0, len(t.Columns))
	for _, p := range schema.Columns() {
		c, _ := t.Column(p[0])
		cols = append(cols, c)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tableio-*.parquet")
	if err != nil {
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// A fixed created_by keeps the bytes the same whichever binary writes
	// them (a test binary has no module version to put there).
	w := parquet.NewWriter(tmp, schema, parquet.CreatedBy("sandgate tableio", "1", ""))
	rows := make([]parquet.Row, 0, 1024)
	flush := func() error {
		if _, err := w.WriteRows(rows); err != nil {
			return err
		}
		rows = rows[:0]
		return nil
	}
	for i := range t.Len() {
		row := make(parquet.Row, len(cols))
		for j, c := range cols {
			var v parquet.Value
			switch c.Type {
			case modelapi.Float64:
				v = parquet.DoubleValue(c.Floats[i])
			case modelapi.Int64:
				v = parquet.Int64Value(c.Ints[i])
			case modelapi.String:
				v = parquet.ByteArrayValue([]byte(c.Strings[i]))
			case modelapi.Bool:
				v = parquet.BooleanValue(c.Bools[i])
			}
			row[j] = v.Level(0, 0, j)
		}
		rows = append(rows, row)
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				tmp.Close()
				return fmt.Errorf("tableio: write %s: %w", path, err)
			}
		}
	}
	if err := flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tableio: write %s: %w", path, err)
	}
	return nil
}
