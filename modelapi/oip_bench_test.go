package modelapi_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/refmodel/predictive"
)

// BenchmarkOIPBatching scores the same 1024 credit applicants through the
// OIP client against the fair credit reference model on loopback, batched
// (256 rows per request) and unbatched (1 row per request), both with 4
// requests in flight, and reports rows/s of each and their ratio.
//
//	go test -run '^$' -bench OIPBatching -benchtime 5x ./modelapi
func BenchmarkOIPBatching(b *testing.B) {
	e, err := predictive.NewEndpoint(predictive.KindCredit, predictive.CreditFair)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(predictive.NewHandler(e, predictive.ServerOptions{}))
	defer srv.Close()
	d, err := predictive.LoadCredit(predictive.RowRange{Seed: 42, N: 1024})
	if err != nil {
		b.Fatal(err)
	}
	batched := &modelapi.OIPClient{BaseURL: srv.URL, Model: predictive.KindCredit, BatchSize: 256, Concurrency: 4}
	single := &modelapi.OIPClient{BaseURL: srv.URL, Model: predictive.KindCredit, BatchSize: 1, Concurrency: 4}
	ctx := context.Background()
	var tBatched, tSingle time.Duration
	b.ResetTimer()
	for range b.N {
		for _, run := range []struct {
			c *modelapi.OIPClient
			t *time.Duration
		}{{batched, &tBatched}, {single, &tSingle}} {
			start := time.Now()
			out, _, err := run.c.PredictTable(ctx, d.Table)
			*run.t += time.Since(start)
			if err != nil || len(out) != d.Len() {
				b.Fatalf("predict: %v", err)
			}
		}
	}
	rows := float64(d.Len() * b.N)
	b.ReportMetric(rows/tBatched.Seconds(), "batched_rows/s")
	b.ReportMetric(rows/tSingle.Seconds(), "unbatched_rows/s")
	b.ReportMetric(tSingle.Seconds()/tBatched.Seconds(), "speedup")
}
