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
	n := int(float64(rate) * dur.Seconds())
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	bad := make([]bool, n)
	var wg sync.WaitGroup
	start := time.Now().Add(5 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
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
	}
	wg.Wait()
	var r Result
	for i := n / 10; i < n; i++ {
		if bad[i] {
			r.Errors++
		}
		r.Latencies = append(r.Latencies, lat[i])
	}
	slices.Sort(r.Latencies)
	return r
}
