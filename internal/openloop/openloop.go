// Package openloop is the load generator of the latency tests and
// benchmarks: requests leave at their scheduled instants whatever earlier
// ones are doing, and each is timed from its scheduled instant, so a stall
// shows up in the latencies instead of slowing the load (coordinated
// omission).
package openloop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Result is one run: the latencies of the counted requests, sorted, and
// how many of them failed (transport error or a status other than 200).
type Result struct {
	Latencies []time.Duration
	Errors    int
}

// Quantile is the q-quantile (0 < q ≤ 1) of the latencies by the nearest
// rank; 0 for an empty run.
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*q+0.5) - 1
	return r.Latencies[max(0, min(i, len(r.Latencies)-1))]
}

// Run POSTs body (JSON) to url rate times per second for dur, each request
// on its own goroutine. The first tenth (connection set-up) is not counted.
func Run(ctx context.Context, c *http.Client, url, body string, rate int, dur time.Duration) Result {
	return Interleaved(ctx, c, []string{url}, body, rate, dur, dur)[0]
}

// Interleaved is Run over several targets taking turns in blocks of block
// (request i goes to urls[(i/perBlock) % len(urls)]), so that every target
// sees the same machine over the same stretch of time at the same load.
// Comparing targets run one after the other instead charges whatever else
// the machine did meanwhile (a build, a collection) to one of them. The
// first tenth of each target's requests is not counted.
func Interleaved(ctx context.Context, c *http.Client, urls []string, body string, rate int, dur, block time.Duration) []Result {
	n := int(float64(rate) * dur.Seconds())
	interval := time.Second / time.Duration(rate)
	perBlock := max(1, int(block/interval))
	lat := make([]time.Duration, n)
	bad := make([]bool, n)
	var wg sync.WaitGroup
	// A cancelled ctx fails the requests not yet sent; they count as errors.
	_ = pace(ctx, time.Now().Add(5*time.Millisecond), interval, n, func(i int, at time.Time) {
		url := urls[(i/perBlock)%len(urls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			lat[i], bad[i] = time.Since(at), err != nil
		}()
	})
	wg.Wait()
	out := make([]Result, len(urls))
	seen := make([]int, len(urls))
	total := make([]int, len(urls))
	for i := range n {
		total[(i/perBlock)%len(urls)]++
	}
	for i := range n {
		k := (i / perBlock) % len(urls)
		seen[k]++
		if seen[k] <= total[k]/10 {
			continue
		}
		if bad[i] {
			out[k].Errors++
		}
		out[k].Latencies = append(out[k].Latencies, lat[i])
	}
	for k := range out {
		slices.Sort(out[k].Latencies)
	}
	return out
}
