package shadowbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/shadow"
)

// BenchmarkProxyCPU: process CPU time (user+system) and bytes allocated
// per request, one request at a time, direct and through the mirroring
// proxy (every request mirrored to a fast candidate). Both figures hold
// on a shared machine, where the latency benchmark needs a quiet one.
func BenchmarkProxyCPU(b *testing.B) {
	inc := model(b, 0, "incumbent")
	cand := model(b, 0, "CANDIDATE")
	p, err := shadow.NewProxy(shadow.ProxyConfig{Incumbent: mustURL(inc), Candidate: mustURL(cand), SampleRate: 1, MirrorTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	per := func(url string, n int) (time.Duration, uint64) {
		var ms0, ms1 runtimeMem
		ms0.read()
		t0 := testutil.ProcessCPU()
		for range n {
			resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		t := (testutil.ProcessCPU() - t0) / time.Duration(n)
		ms1.read()
		return t, (ms1.alloc - ms0.alloc) / uint64(n)
	}
	for b.Loop() {
		const n = 5000
		d, da := per(inc, n)
		m, ma := per(srv.URL, n)
		fmt.Printf("per request: direct %.0f µs CPU %d B allocated | through the proxy, mirrored %.0f µs CPU %d B | the proxy and its mirror add %.0f µs CPU | load %s\n",
			float64(d)/1e3, da, float64(m)/1e3, ma, float64(m-d)/1e3, testutil.LoadAvg())
		b.ReportMetric(float64(m-d)/1e3, "proxy_cpu_µs")
		b.ReportMetric(float64(ma), "proxy_B/req")
	}
}
