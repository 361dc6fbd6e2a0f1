//go:build !linux

package openloop

import "time"

// pace calls fire(i) at start + i·interval for i in [0, n).
func pace(start time.Time, interval time.Duration, n int, fire func(i int, at time.Time)) {
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		fire(i, at)
	}
}
