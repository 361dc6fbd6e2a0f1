//go:build !linux

package openloop

import (
	"context"
	"time"
)

// pace calls fire(i) at start + i·interval for i in [0, n), stopping with
// ctx's error when ctx ends.
func pace(ctx context.Context, start time.Time, interval time.Duration, n int, fire func(i int, at time.Time)) error {
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fire(i, at)
	}
	return nil
}
