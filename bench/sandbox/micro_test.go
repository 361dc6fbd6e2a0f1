package sandboxbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/sandbox"
)

// BenchmarkRelayClosedLoop is a CPU-profiling aid: one relayed request per
// iteration, parallel, no pacing.
func BenchmarkRelayClosedLoop(b *testing.B) {
	model, relay := modelAndRelay(b)
	for _, tc := range []struct{ name, url string }{{"direct", model.URL}, {"relay", relay.URL()}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Post(tc.url+"/v1/chat/completions", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkRelayCPU: process CPU time (user+system, getrusage) per request,
// one request at a time, direct and through the relay. CPU time is what a
// hop costs whatever else the machine is doing, so this is the figure to
// watch while the machine is shared; the latency benchmarks need it quiet.
func BenchmarkRelayCPU(b *testing.B) {
	model, relay := modelAndRelay(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	per := func(url string, n int) time.Duration {
		t0 := testutil.ProcessCPU()
		for range n {
			resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return (testutil.ProcessCPU() - t0) / time.Duration(n)
	}
	for b.Loop() {
		const n = 5000
		var d, r time.Duration
		for range 2 {
			d += per(model.URL, n)
			r += per(relay.URL(), n)
		}
		d, r = d/2, r/2
		fmt.Printf("CPU per request: direct %.0f µs, relay %.0f µs, the relay adds %.0f µs (%.2fx) | load %s\n", us(d), us(r), us(r-d), float64(r)/float64(d), testutil.LoadAvg())
		b.ReportMetric(us(r-d), "relay_cpu_µs")
		b.ReportMetric(float64(r)/float64(d), "x_direct")
	}
}

// modelAndRelay starts a trivial chat model and a relay in front of it
// (request and token budgets on, transcript on); both stop at cleanup.
func modelAndRelay(b *testing.B) (*httptest.Server, *sandbox.Relay) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	}))
	b.Cleanup(model.Close)
	addr := model.Listener.Addr().String()
	relay, err := sandbox.NewRelay(sandbox.RelayOptions{MaxRequests: 1 << 40, MaxTokens: 1 << 50, MaxBytes: 1 << 50}, sandbox.Upstream{Host: addr, Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close() })
	return model, relay
}
