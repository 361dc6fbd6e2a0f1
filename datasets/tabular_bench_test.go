package datasets

// Tabular benchmarks and the 10M-row memory test. Neither runs in a plain
// `go test ./...`: benchmarks need -bench, the RSS test an env var.
//
// Ratio (generation+write vs writing pre-generated rows), 3M rows, once:
//
//	go test ./datasets -run '^$' -bench BenchmarkTabularVsPregenerated -benchtime 1x
//	SANDGATE_BENCH_ROWS=10000000 go test ./datasets -run '^$' -bench BenchmarkTabularVsPregenerated -benchtime 1x
//
// Peak RSS of 10M rows (asserts VmHWM < 150 MiB in-process; /usr/bin/time
// reports the same figure as "Maximum resident set size"):
//
//	go test -c -o /tmp/datasets.test ./datasets
//	SANDGATE_RSS_10M=1 /usr/bin/time -v /tmp/datasets.test -test.run TestTabular10MRowsRSS -test.v

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sandgate/sandgate/datasets/arrowcheck"
)

func benchRows(def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv("SANDGATE_BENCH_ROWS"), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTime is user+system CPU of the process, for rows per core-second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTabularVsPregenerated times, in one run, (a) parquet-go writing
// rows generated beforehand and (b) WriteParquet generating the same rows
// on a second goroutine while writing. Both use the same writer options,
// hash the output, and write real files. The pre-generated pool is 1 Mi
// distinct rows (one row group's worth) cycled; row groups are compressed
// independently, so cycling gives the baseline no compression advantage,
// and keeping the pool in compact form (8 bytes a cell) keeps the
// benchmark's own memory near 150 MB. Originals only (no twins): twins are
// copies and would flatter the generator.
func BenchmarkTabularVsPregenerated(b *testing.B) {
	n := benchRows(3_000_000)
	g, err := NewTabular(creditSpec(b), TabularOptions{NoTwins: true})
	if err != nil {
		b.Fatal(err)
	}
	const pool = 1 << 20
	cols := len(g.cols)
	cells := make([]float64, 0, pool*cols)
	g.forEach(1, 0, min(n, pool), func(_, _ int64, _ int, c []float64) bool {
		cells = append(cells, c...)
		return true
	})
	poolRows := int64(len(cells) / cols)
	dir := b.TempDir()
	runtime.GC()

	var base, piped time.Duration
	var baseCPU, pipedCPU time.Duration
	for b.Loop() {
		// (a) baseline: the writer alone.
		t0, c0 := time.Now(), cpuTime()
		f, err := os.Create(filepath.Join(dir, "baseline.parquet"))
		if err != nil {
			b.Fatal(err)
		}
		w := parquet.NewWriter(io.MultiWriter(f, sha256.New()), g.schema,
			parquet.Compression(&zstd.Codec{Level: zstd.DefaultLevel}),
			parquet.MaxRowsPerRowGroup(DefaultTabularRowGroupRows),
			parquet.CreatedBy("sandgate", fileFormatVersion, "datasets"))
		batch := g.newBatch()
		for i := int64(0); i < n; {
			k := 0
			for ; k < len(batch.rows) && i < n; k, i = k+1, i+1 {
				r := i % poolRows
				g.fillRow(batch.rows[k], i, -1, 0, cells[r*int64(cols):(r+1)*int64(cols)])
			}
			if _, err := w.WriteRows(batch.rows[:k]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		base, baseCPU = time.Since(t0), cpuTime()-c0

		// (b) generation pipelined with the same writer.
		runtime.GC()
		t0, c0 = time.Now(), cpuTime()
		st, err := g.WriteParquet(b.Context(), filepath.Join(dir, "generated.parquet"), 1, 0, n, WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		piped, pipedCPU = time.Since(t0), cpuTime()-c0
		if st.Rows != n {
			b.Fatalf("wrote %d rows, want %d", st.Rows, n)
		}
	}
	ratio := piped.Seconds() / base.Seconds()
	b.ReportMetric(ratio, "time_ratio")
	b.ReportMetric(float64(n)/piped.Seconds(), "gen_rows/s")
	b.ReportMetric(float64(n)/pipedCPU.Seconds(), "gen_rows/cpu-s")
	b.ReportMetric(float64(n)/base.Seconds(), "base_rows/s")
	b.ReportMetric(float64(n)/baseCPU.Seconds(), "base_rows/cpu-s")
	b.Logf("%d rows: pre-generated write %v (%.0f rows/s, %.0f rows per CPU-second); generate+write %v (%.0f rows/s, %.0f rows per CPU-second); time ratio %.3f (target <= 1.2); GOMAXPROCS %d",
		n, base.Round(time.Millisecond), float64(n)/base.Seconds(), float64(n)/baseCPU.Seconds(),
		piped.Round(time.Millisecond), float64(n)/piped.Seconds(), float64(n)/pipedCPU.Seconds(), ratio, runtime.GOMAXPROCS(0))
}

// BenchmarkTabularGenerate is generation alone, per original row.
func BenchmarkTabularGenerate(b *testing.B) {
	g, err := NewTabular(creditSpec(b), TabularOptions{NoTwins: true})
	if err != nil {
		b.Fatal(err)
	}
	st := g.newState()
	cells := make([]float64, len(g.cols))
	var i int64
	for b.Loop() {
		g.base(st, 1, i, cells)
		i++
	}
}

// TestTabular10MRowsRSS writes 10 million rows and checks the process's
// peak RSS (VmHWM) stays under 150 MiB. Opt-in: it takes ~10 s of CPU.
func TestTabular10MRowsRSS(t *testing.T) {
	if os.Getenv("SANDGATE_RSS_10M") == "" {
		t.Skip("set SANDGATE_RSS_10M=1 to write 10M rows and measure peak RSS (see tabular_bench_test.go)")
	}
	g, err := NewTabular(creditSpec(t), TabularOptions{NoTwins: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "10m.parquet")
	t0 := time.Now()
	st, err := g.WriteParquet(t.Context(), path, 1, 0, 10_000_000, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0)
	hwm := vmHWM(t)
	t.Logf("10M rows, %d bytes in %v (%.0f rows/s); peak RSS (VmHWM) %.1f MiB", st.Bytes, el.Round(time.Millisecond), 1e7/el.Seconds(), float64(hwm)/(1<<20))
	if hwm >= 150<<20 {
		t.Errorf("peak RSS %.1f MiB, limit 150 MiB", float64(hwm)/(1<<20))
	}
	// Footer only: decoding 10M rows with Arrow would itself take ~90 MiB
	// more and hide the writer's figure under /usr/bin/time; full Arrow
	// decodes are covered by the smaller tests.
	if info, err := arrowcheck.Inspect(path); err != nil || info.Rows != 10_000_000 || info.RowGroups != 10 {
		t.Fatalf("arrow footer: %+v, %v; want 10M rows in 10 row groups", info, err)
	}
}

func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmHWM not in /proc/self/status")
	return 0
}
