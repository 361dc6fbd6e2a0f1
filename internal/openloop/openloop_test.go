package openloop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestInterleavedSplitsTheLoadInBlocks(t *testing.T) {
	var hits [2]atomic.Int64
	var srv [2]*httptest.Server
	for k := range srv {
		srv[k] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[k].Add(1)
			if k == 1 {
				w.WriteHeader(http.StatusTeapot)
			}
		}))
		defer srv[k].Close()
	}
	// 400 requests at 1,000/s in blocks of 50: 200 each, 20 of each not counted.
	res := Interleaved(context.Background(), srv[0].Client(), []string{srv[0].URL, srv[1].URL}, `{}`, 1000, 400*time.Millisecond, 50*time.Millisecond)
	if h0, h1 := hits[0].Load(), hits[1].Load(); h0 != 200 || h1 != 200 {
		t.Fatalf("hits = %d, %d, want 200 each", h0, h1)
	}
	if n0, n1 := len(res[0].Latencies), len(res[1].Latencies); n0 != 180 || n1 != 180 {
		t.Fatalf("counted %d, %d, want 180 each", n0, n1)
	}
	if res[0].Errors != 0 || res[1].Errors != 180 {
		t.Fatalf("errors = %d, %d, want 0 and 180 (HTTP 418 counts as an error)", res[0].Errors, res[1].Errors)
	}
	if q := res[0].Quantile(0.5); q <= 0 || q > res[0].Quantile(1) {
		t.Fatalf("median %v outside (0, max %v]", q, res[0].Quantile(1))
	}
}

func TestPaceFiresEveryInstantInOrder(t *testing.T) {
	start := time.Now()
	var last time.Time
	n := 0
	_ = pace(context.Background(), start, time.Millisecond, 50, func(i int, at time.Time) {
		if i != n || !at.Equal(start.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("call %d got i=%d at=%v", n, i, at.Sub(start))
		}
		if now := time.Now(); now.Before(at) {
			t.Fatalf("fired %v early", at.Sub(now))
		}
		last = at
		n++
	})
	if n != 50 || last.Sub(start) != 49*time.Millisecond {
		t.Fatalf("fired %d times, last at %v", n, last.Sub(start))
	}
}
