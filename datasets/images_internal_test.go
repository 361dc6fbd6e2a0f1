package datasets

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestParallelOrdered(t *testing.T) {
	ctx := context.Background()
	square := func() func(int64) int64 { return func(i int64) int64 { return i * i } }
	for _, workers := range []int{1, 2, 5, 64} {
		got := slices.Collect(parallelOrdered(ctx, 10, 100, workers, square))
		if len(got) != 100 {
			t.Fatalf("workers=%d: %d values", workers, len(got))
		}
		for k, v := range got {
			if i := int64(10 + k); v != i*i {
				t.Fatalf("workers=%d: value %d is %d, want %d", workers, k, v, i*i)
			}
		}
	}
	if got := slices.Collect(parallelOrdered(ctx, 0, 0, 3, square)); len(got) != 0 {
		t.Fatalf("n=0 yielded %v", got)
	}

	// Breaking out of the loop stops and reaps every worker.
	before := runtime.NumGoroutine()
	for v := range parallelOrdered(ctx, 0, 1_000_000, 4, square) {
		if v > 100 {
			break
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after an early break, %d before", n, before)
	}

	// Cancellation ends the sequence early.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	for range parallelOrdered(cctx, 0, 1_000_000, 3, square) {
		if n++; n == 50 {
			cancel()
		}
	}
	if n >= 1_000_000 {
		t.Fatal("cancellation did not stop the sequence")
	}
}
