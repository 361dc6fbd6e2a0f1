//go:build unix

package testutil

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user + system) this process has used so far,
// for benchmarks that report CPU per operation beside wall-clock figures.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg is the 1, 5 and 15 minute load averages ("?" where unknown),
// printed beside benchmark figures: on a shared machine they say how much
// of it the run had.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
