package datasets_test

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
)

// BenchmarkWriteImages measures, in one loop so machine noise hits every
// arm alike:
//
//   - write_only: parquet-go writing n distinct pre-generated image rows
//     (the baseline: the writer alone);
//   - gen+write: WriteImages generating and encoding the same rows on
//     GOMAXPROCS workers while the caller writes;
//   - gen_only: one goroutine rendering and encoding, nothing written,
//     which gives images/s per core.
//
// x_vs_write_only near 1 means generation is hidden behind the writer;
// above 1, generation is the bottleneck and the pipeline's images/s is
// about gen_images/s/core × cores.
func BenchmarkWriteImages(b *testing.B) {
	const n = 4000
	benchImages(b, n, 1, func(ctx context.Context, path string) (datasets.FileStats, error) {
		return datasets.WriteImages(ctx, path, 1, 0, n, datasets.ImageOptions{}, datasets.ImageWriteOptions{})
	}, func() []datasets.ImageRow { return slices.Collect(datasets.Images(1, n, datasets.ImageOptions{})) })
}

// BenchmarkWritePerturbations is the same for the perturbation sets (7
// variants per base image, so rows are 7× the base count).
func BenchmarkWritePerturbations(b *testing.B) {
	const nBase = 600
	opt := datasets.ImageOptions{}
	benchImages(b, nBase, opt.Variants(), func(ctx context.Context, path string) (datasets.FileStats, error) {
		return datasets.WritePerturbations(ctx, path, 1, 0, nBase, opt, datasets.ImageWriteOptions{})
	}, func() []datasets.PerturbationRow { return slices.Collect(datasets.Perturbations(1, nBase, opt)) })
}

func benchImages[T any](b *testing.B, n, perBase int, write func(context.Context, string) (datasets.FileStats, error), generate func() []T) {
	ctx := context.Background()
	dir := b.TempDir()
	rowGroup := datasets.ImageRowGroupRows(datasets.ImageOptions{})
	// Distinct rows, generated once outside the timed region: re-writing
	// one repeated batch would flatter zstd.
	rows := generate()
	var base, full, gen time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := datasets.WriteFile(filepath.Join(dir, "base.parquet"), slices.Values(rows), datasets.WriteOptions{RowGroupRows: rowGroup}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := write(ctx, filepath.Join(dir, "gen.parquet")); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		_ = generate()
		base += t1.Sub(t0)
		full += t2.Sub(t1)
		gen += time.Since(t2)
	}
	procs := runtime.GOMAXPROCS(0)
	rowsTotal := float64(n * perBase * b.N)
	b.ReportMetric(rowsTotal/full.Seconds(), "images/s")
	b.ReportMetric(rowsTotal/full.Seconds()/float64(procs), "images/s/core")
	b.ReportMetric(rowsTotal/gen.Seconds(), "gen_images/s/core")
	b.ReportMetric(rowsTotal/base.Seconds(), "write_only_images/s")
	b.ReportMetric(full.Seconds()/base.Seconds(), "x_vs_write_only")
	b.Logf("%d rows x %d: gen+write %.2fx write-only; %.0f images/s on %d procs (%.0f/core), generation alone %.0f images/s/core, write alone %.0f images/s",
		n*perBase, b.N, full.Seconds()/base.Seconds(), rowsTotal/full.Seconds(), procs, rowsTotal/full.Seconds()/float64(procs), rowsTotal/gen.Seconds(), rowsTotal/base.Seconds())
}
