//go:build !linux

package hrsleep

import "time"

// Sleeper falls back to time.Sleep where timerfds do not exist.
type Sleeper struct{}

// New returns a Sleeper.
func New(int) *Sleeper { return &Sleeper{} }

// Until blocks until deadline.
func (*Sleeper) Until(deadline time.Time) error {
	time.Sleep(time.Until(deadline))
	return nil
}

// Close releases nothing here.
func (*Sleeper) Close() {}
