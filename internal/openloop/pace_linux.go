package openloop

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pace calls fire(i) at start + i·interval for i in [0, n), from a
// goroutine locked to an OS thread that sleeps in nanosleep with a 1 ns
// timer slack. Go's own timers wake through the netpoller, whose epoll wait
// has millisecond resolution: on this kind of machine time.Sleep to an
// instant 1 ms away is ~0.5 ms late at the median and ~1.1 ms at p99, which
// a latency benchmark would then charge to the system under test. The
// thread's slack is reset and the thread unlocked at the end, never left
// to exit: a thread's exit sends the parent-death signal to every child it
// forked (a sandbox started from it earlier would be SIGKILLed).
// It stops early, returning ctx's error, when ctx ends (checked at every
// instant).
func pace(ctx context.Context, start time.Time, interval time.Duration, n int, fire func(i int, at time.Time)) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		precise := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) == nil
		defer func() {
			// 0 restores the default slack (were that to fail, a pool
			// thread with precise timers does no harm).
			_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0)
			runtime.UnlockOSThread()
		}()
		for i := range n {
			at := start.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				if precise {
					ts := unix.NsecToTimespec(int64(d))
					for unix.Nanosleep(&ts, &ts) == unix.EINTR {
					}
				} else {
					time.Sleep(d)
				}
			}
			if err := ctx.Err(); err != nil {
				done <- err
				return
			}
			fire(i, at)
		}
		done <- nil
	}()
	return <-done
}
