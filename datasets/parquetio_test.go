package datasets_test

import (
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
)

func collect(seed uint64, n int, opt datasets.PromptOptions) []datasets.PromptRow {
	return slices.Collect(datasets.Prompts(seed, n, opt))
}

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// The independent reader (arrow-go) must see exactly what parquet-go wrote.
func TestWriteFileArrowRoundTrip(t *testing.T) {
	rows := collect(42, 3000, datasets.PromptOptions{})
	path := filepath.Join(t.TempDir(), "part-00000.parquet")
	st, err := datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{
		RowGroupRows: 1000,
		Metadata:     map[string]string{"sandgate.generator": datasets.PromptsGenerator},
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, size := fileSHA(t, path)
	if st.Rows != 3000 || st.SHA256 != sum || st.Bytes != size {
		t.Fatalf("stats %+v, file sha %s size %d", st, sum, size)
	}

	n, err := arrowcheck.CountRowsArrow(path)
	if err != nil || n != 3000 {
		t.Fatalf("CountRowsArrow = %d, %v", n, err)
	}
	if n, err := datasets.CountRows(path); err != nil || n != 3000 {
		t.Fatalf("CountRows = %d, %v", n, err)
	}

	for _, col := range []struct {
		name string
		get  func(datasets.PromptRow) string
	}{
		{"id", func(r datasets.PromptRow) string { return r.ID }},
		{"prompt", func(r datasets.PromptRow) string { return r.Prompt }},
		{"family", func(r datasets.PromptRow) string { return r.Family }},
		{"category", func(r datasets.PromptRow) string { return r.Category }},
		{"atlas_id", func(r datasets.PromptRow) string { return r.AtlasID }},
		{"template_id", func(r datasets.PromptRow) string { return r.TemplateID }},
		{"converters", func(r datasets.PromptRow) string { return r.Converters }},
		{"goal", func(r datasets.PromptRow) string { return r.Goal }},
		{"marker", func(r datasets.PromptRow) string { return r.Marker }},
		{"expected", func(r datasets.PromptRow) string { return r.Expected }},
	} {
		got, err := arrowcheck.ReadColumnStrings(path, col.name)
		if err != nil {
			t.Fatalf("column %s: %v", col.name, err)
		}
		if len(got) != len(rows) {
			t.Fatalf("column %s: %d values, want %d", col.name, len(got), len(rows))
		}
		for i := range rows {
			if got[i] != col.get(rows[i]) {
				t.Fatalf("column %s row %d: arrow read %.60q, wrote %.60q", col.name, i, got[i], col.get(rows[i]))
			}
		}
	}
	idx, err := arrowcheck.ReadColumnInt64s(path, "index")
	if err != nil || len(idx) != 3000 || idx[2999] != 2999 {
		t.Fatalf("index column: len %d err %v", len(idx), err)
	}
	seeds, err := arrowcheck.ReadColumnInt64s(path, "seed")
	if err != nil || seeds[0] != 42 {
		t.Fatalf("seed column: %v %v", seeds[:1], err)
	}

	info, err := arrowcheck.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []string{"id", "index", "family", "category", "atlas_id", "template_id", "converters", "goal", "marker", "expected", "prompt", "seed"}
	if !slices.Equal(info.Columns, wantCols) {
		t.Fatalf("columns %v, want %v (update doc.go and notebooks if this changes)", info.Columns, wantCols)
	}
	if info.Compression != "ZSTD" || info.RowGroups != 3 || info.KeyValue["sandgate.generator"] != datasets.PromptsGenerator {
		t.Fatalf("footer: %+v", info)
	}
	if _, err := arrowcheck.ReadColumnStrings(path, "nope"); err == nil {
		t.Fatal("missing column accepted")
	}
}

// Same seed, same bytes: a regenerated shard must match its manifest sha256.
func TestWriteFileDeterministic(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, seed uint64) datasets.FileStats {
		st, err := datasets.WriteFile(filepath.Join(dir, name), datasets.Prompts(seed, 2000, datasets.PromptOptions{}), datasets.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b, c := write("a.parquet", 7), write("b.parquet", 7), write("c.parquet", 8)
	if a != b {
		t.Fatalf("same seed, different files: %+v vs %+v", a, b)
	}
	if a.SHA256 == c.SHA256 {
		t.Fatal("different seeds produced identical files")
	}
	// Nothing but the three files: temporary files are renamed or removed.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("leftover files in %s: %v", dir, ents)
	}
}

func TestReadRowsOffsetLimit(t *testing.T) {
	rows := collect(3, 2500, datasets.PromptOptions{})
	path := filepath.Join(t.TempDir(), "p.parquet")
	if _, err := datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{RowGroupRows: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ off, lim, from, to int64 }{
		{0, 10, 0, 10},
		{950, 100, 950, 1050}, // crosses a row-group boundary
		{2000, 0, 2000, 2500}, // limit 0: to the end
		{2450, 100, 2450, 2500},
		{2500, 5, 2500, 2500},
		{9999, 5, 2500, 2500},
	} {
		got, err := datasets.ReadRows[datasets.PromptRow](path, tc.off, tc.lim)
		if err != nil {
			t.Fatalf("ReadRows(%d, %d): %v", tc.off, tc.lim, err)
		}
		if !slices.Equal(got, rows[tc.from:tc.to]) {
			t.Fatalf("ReadRows(%d, %d) returned %d rows, want rows[%d:%d]", tc.off, tc.lim, len(got), tc.from, tc.to)
		}
	}
	if _, err := datasets.ReadRows[datasets.PromptRow](path, -1, 1); err == nil {
		t.Fatal("negative offset accepted")
	}

	type other struct {
		Score float64 `parquet:"score"`
	}
	_, err := datasets.ReadRows[other](path, 0, 1)
	if err == nil || !strings.Contains(err.Error(), "score") {
		t.Fatalf("schema mismatch error = %v, want it to name column score", err)
	}
	if _, err := datasets.ReadRows[datasets.PromptRow](filepath.Join(t.TempDir(), "missing.parquet"), 0, 1); err == nil {
		t.Fatal("missing file accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.parquet")
	os.WriteFile(junk, []byte("not parquet at all"), 0o644)
	if _, err := datasets.CountRows(junk); err == nil || !strings.Contains(err.Error(), "Parquet") {
		t.Fatalf("CountRows(junk) = %v", err)
	}
}

// parquet-go buffers the whole file unless row groups are bounded. With a
// bound, completed row groups reach the disk while rows are still coming,
// which is what keeps memory flat for any file size.
func TestWriteFileStreamsRowGroups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.parquet")
	var sizeMidway int64 = -1
	rows := func(yield func(datasets.PromptRow) bool) {
		for r := range datasets.Prompts(1, 20000, datasets.PromptOptions{Families: []string{"jailbreak", "pii_solicitation"}}) {
			if r.Index == 15000 {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if fi, err := e.Info(); err == nil && strings.Contains(e.Name(), ".tmp-") {
						sizeMidway = fi.Size()
					}
				}
			}
			if !yield(r) {
				return
			}
		}
	}
	st, err := datasets.WriteFile(path, iter.Seq[datasets.PromptRow](rows), datasets.WriteOptions{RowGroupRows: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if sizeMidway <= 0 {
		t.Fatalf("temporary file was %d bytes after 15000 rows: rows are being buffered, not streamed", sizeMidway)
	}
	if sizeMidway >= st.Bytes {
		t.Fatalf("midway size %d >= final size %d", sizeMidway, st.Bytes)
	}
	info, err := arrowcheck.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.RowGroups != 10 || slices.Max(info.RowGroupRows) != 2000 {
		t.Fatalf("row groups %d (%v), want 10 of 2000", info.RowGroups, info.RowGroupRows)
	}

	// The default bound applies when none is given.
	def := filepath.Join(dir, "default.parquet")
	if _, err := datasets.WriteFile(def, datasets.Prompts(1, 10, datasets.PromptOptions{}), datasets.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if datasets.DefaultRowGroupRows <= 0 || datasets.DefaultRowGroupRows > 1<<20 {
		t.Fatalf("DefaultRowGroupRows = %d", datasets.DefaultRowGroupRows)
	}
}

func TestWriteFileEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "empty.parquet")
	st, err := datasets.WriteFile(path, datasets.Prompts(1, 0, datasets.PromptOptions{}), datasets.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 0 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	if n, err := arrowcheck.CountRowsArrow(path); err != nil || n != 0 {
		t.Fatalf("CountRowsArrow(empty) = %d, %v", n, err)
	}
	if _, err := datasets.WriteFile[datasets.PromptRow](path, nil, datasets.WriteOptions{}); err == nil {
		t.Fatal("nil sequence accepted")
	}
}

// BenchmarkWritePrompts reports generate-and-write throughput and its ratio
// to writing the same rows pre-generated (the baseline, measured in the
// same loop so machine noise hits both).
func BenchmarkWritePrompts(b *testing.B) {
	const n = 20000
	opt := datasets.PromptOptions{}
	rows := collect(1, n, opt)
	dir := b.TempDir()
	var base, full time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := datasets.WriteFile(filepath.Join(dir, "base.parquet"), slices.Values(rows), datasets.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := datasets.WriteFile(filepath.Join(dir, "gen.parquet"), datasets.Prompts(1, n, opt), datasets.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		base += t1.Sub(t0)
		full += time.Since(t1)
	}
	b.ReportMetric(float64(n*b.N)/full.Seconds(), "rows/s")
	b.ReportMetric(full.Seconds()/base.Seconds(), "x_vs_write_only")
}
