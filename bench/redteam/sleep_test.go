package redteambench

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/hrsleep"
)

// BenchmarkEndpointSleep reports how late the endpoint's 20 ms wait ends,
// p50 and p99 over 64 concurrent waiters, for the timerfd sleeper the
// benchmark endpoint uses and for time.Sleep, measured in the same run.
//
//	go test ./bench/redteam -run '^$' -bench EndpointSleep -benchtime 20x
func BenchmarkEndpointSleep(b *testing.B) {
	s := hrsleep.New(2 * concurrency)
	defer s.Close()
	for _, c := range []struct {
		name string
		wait func(time.Time) error
	}{
		{"timerfd", s.Until},
		{"time.Sleep", func(d time.Time) error { time.Sleep(time.Until(d)); return nil }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var mu sync.Mutex
			var late []time.Duration
			for range b.N {
				var wg sync.WaitGroup
				for k := range concurrency {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// Staggered like the runner's ramp-up.
						start := time.Now().Add(time.Duration(k) * latency / concurrency)
						if err := c.wait(start); err != nil {
							b.Error(err)
							return
						}
						start = time.Now()
						if err := c.wait(start.Add(latency)); err != nil {
							b.Error(err)
							return
						}
						l := time.Since(start) - latency
						mu.Lock()
						late = append(late, l)
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Microseconds()), "late-p50-us")
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "late-p99-us")
		})
	}
}
