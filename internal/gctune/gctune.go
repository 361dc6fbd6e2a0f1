// Package gctune sets the garbage collector's policy of sandgate's
// long-running processes, unless the operator set GOGC or GOMEMLIMIT.
//
// Go's default (GOGC=100) collects at every doubling of the live heap. The
// worker's and the shadow proxy's live heaps are small and their garbage is
// per request, so with the default they collect many times a second under
// load, and each cycle takes CPU (a quarter of GOMAXPROCS plus assists) from
// the work in flight: on two cores the red-team runner lost ~3% of its
// throughput to it (bench/redteam) and the proxy's primary path its p99
// (bench/shadow). A higher GOGC with a soft memory limit trades a bounded
// amount of memory for that.
package gctune

import "runtime/debug"

// Worker is the worker's policy: collect at 5× the live heap (GOGC=400),
// and harder as the heap nears 1 GiB.
func Worker() Policy { return Policy{Percent: 400, LimitBytes: 1 << 30} }

// Policy is a GOGC percentage (-1: only the limit triggers a collection)
// and a soft memory limit in bytes (0: none).
type Policy struct {
	Percent    int
	LimitBytes int64
}

// Apply sets p unless getenv reports GOGC or GOMEMLIMIT (the operator's
// choice wins), and says whether it did.
func Apply(getenv func(string) string, p Policy) bool {
	if getenv == nil || getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	if p.LimitBytes > 0 {
		debug.SetMemoryLimit(p.LimitBytes)
	}
	debug.SetGCPercent(p.Percent)
	return true
}
