//go:build !linux

package redteambench

import "time"

// sleeper falls back to time.Sleep where timerfds do not exist.
type sleeper struct{}

func newSleeper(int) *sleeper { return &sleeper{} }

func (*sleeper) until(deadline time.Time) error {
	time.Sleep(time.Until(deadline))
	return nil
}

func (*sleeper) close() {}
