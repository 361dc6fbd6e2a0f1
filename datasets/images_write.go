package datasets

import (
	"context"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// ImageWriteOptions tunes WriteImages and WritePerturbations. The zero
// value uses every core and ImageRowGroupRows.
type ImageWriteOptions struct {
	// Workers render and encode images in parallel while the calling
	// goroutine writes Parquet; 0 means runtime.GOMAXPROCS(0). Rows come
	// out in index order whatever the count, so the file's bytes do not
	// depend on it.
	Workers int
	// RowGroupRows caps rows per row group; 0 means ImageRowGroupRows(opt).
	RowGroupRows int64
}

// perWorkerQueue bounds how many finished rows each worker may hold ahead
// of the writer: enough to ride out a slow row group flush, few enough
// that memory stays at a few MiB whatever the file size.
const perWorkerQueue = 16

// WriteImages generates base images offset .. offset+n-1 (the rows
// ImagesRange yields) on opt.Workers goroutines and streams them into a
// zstd Parquet file at path. It returns once the file is complete; on error
// or cancellation nothing is left at path.
func WriteImages(ctx context.Context, path string, seed uint64, offset, n int64, opt ImageOptions, wo ImageWriteOptions) (FileStats, error) {
	if err := opt.Validate(); err != nil {
		return FileStats{}, err
	}
	norm := opt.normalize()
	rows := parallelOrdered(ctx, offset, n, wo.Workers, func() func(int64) ImageRow {
		s := newImageScratch(norm)
		return func(i int64) ImageRow { return s.image(seed, i) }
	})
	return writeGenerated(ctx, path, rows, n, seed, opt, wo)
}

// WritePerturbations generates the perturbations of base images
// offset .. offset+nBase-1 (the rows PerturbationsRange yields) in
// parallel and streams them into a Parquet file at path, like WriteImages.
// The file holds nBase·opt.Variants() rows.
func WritePerturbations(ctx context.Context, path string, seed uint64, offset, nBase int64, opt ImageOptions, wo ImageWriteOptions) (FileStats, error) {
	if err := opt.Validate(); err != nil {
		return FileStats{}, err
	}
	norm := opt.normalize()
	// Work is handed out per base image: the variants share its render.
	bases := parallelOrdered(ctx, offset, nBase, wo.Workers, func() func(int64) []PerturbationRow {
		s := newImageScratch(norm)
		return func(i int64) []PerturbationRow { return s.perturbations(seed, i) }
	})
	rows := func(yield func(PerturbationRow) bool) {
		for batch := range bases {
			for _, r := range batch {
				if !yield(r) {
					return
				}
			}
		}
	}
	return writeGenerated(ctx, path, rows, nBase*int64(opt.Variants()), seed, opt, wo)
}

func writeGenerated[T any](ctx context.Context, path string, rows iter.Seq[T], want int64, seed uint64, opt ImageOptions, wo ImageWriteOptions) (FileStats, error) {
	if want < 0 {
		return FileStats{}, fmt.Errorf("datasets: write %s: negative row count %d", path, want)
	}
	rg := wo.RowGroupRows
	if rg <= 0 {
		rg = ImageRowGroupRows(opt)
	}
	meta := opt.Params()
	for k, v := range meta {
		delete(meta, k)
		meta["sandgate."+k] = v
	}
	meta["sandgate.generator"] = ImagesGenerator
	meta["sandgate.generator_version"] = ImagesGeneratorVersion
	meta["sandgate.seed"] = strconv.FormatUint(seed, 10)

	// WriteFile cannot tell a cancelled sequence from a finished one, so it
	// writes beside path and the rename below happens only for a complete
	// file: a reader of path never sees a truncated dataset.
	tmp := path + ".incomplete"
	stats, err := WriteFile(tmp, rows, WriteOptions{RowGroupRows: rg, Metadata: meta})
	if err != nil {
		return FileStats{}, err
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return FileStats{}, fmt.Errorf("datasets: write %s: stopped after %d of %d rows: %w", path, stats.Rows, want, err)
	}
	if stats.Rows != want {
		os.Remove(tmp)
		return FileStats{}, fmt.Errorf("datasets: write %s: generated %d rows, want %d", path, stats.Rows, want)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return FileStats{}, fmt.Errorf("datasets: write %s: %w", path, err)
	}
	return stats, nil
}

// parallelOrdered yields gen(offset) .. gen(offset+n-1) in index order while
// workers goroutines compute them. Worker w owns indexes offset+w,
// offset+w+workers, ...; the consumer reads the workers' queues round robin,
// which restores index order without a reorder buffer and bounds memory to
// workers·perWorkerQueue results. newGen runs once per worker so each holds
// its own scratch buffers.
//
// The sequence ends early, without error, when ctx is cancelled; callers
// check ctx.Err() afterwards. Stopping the iteration stops the workers and
// waits for them, so no goroutine outlives the range loop.
func parallelOrdered[T any](ctx context.Context, offset, n int64, workers int, newGen func() func(int64) T) iter.Seq[T] {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return func(yield func(T) bool) {
		if n <= 0 {
			return
		}
		nw := int(min(int64(workers), n))
		done := make(chan struct{})
		queues := make([]chan T, nw)
		var wg sync.WaitGroup
		for w := range nw {
			q := make(chan T, perWorkerQueue)
			queues[w] = q
			wg.Go(func() {
				defer close(q)
				gen := newGen()
				for i := offset + int64(w); i < offset+n; i += int64(nw) {
					if ctx.Err() != nil {
						return
					}
					select {
					case q <- gen(i):
					case <-done:
						return
					case <-ctx.Done():
						return
					}
				}
			})
		}
		defer func() {
			close(done)
			wg.Wait()
		}()
		for k := range n {
			v, ok := <-queues[k%int64(nw)]
			if !ok { // the worker saw ctx cancelled
				return
			}
			if !yield(v) {
				return
			}
		}
	}
}
