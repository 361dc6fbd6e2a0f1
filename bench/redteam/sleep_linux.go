package redteambench

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper waits until a deadline with timerfds read through the netpoller.
// The endpoint is the test double, not the code under test: time.Sleep
// wakes up to a millisecond late here (the runtime's epoll_wait timeout has
// millisecond resolution), which would turn the fixed 20 ms latency into
// ~21 ms and charge the runner for the endpoint's overshoot. A timerfd
// expiry is an fd event, so epoll_wait returns as soon as it fires.
type sleeper struct {
	pool chan *timerFD
}

type timerFD struct {
	fd int
	f  *os.File // the same fd, registered with the netpoller
}

func newSleeper(size int) *sleeper { return &sleeper{pool: make(chan *timerFD, size)} }

func (s *sleeper) get() (*timerFD, error) {
	select {
	case t := <-s.pool:
		return t, nil
	default:
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// A non-blocking fd makes os.NewFile register it with the netpoller.
	return &timerFD{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

func (s *sleeper) put(t *timerFD) {
	select {
	case s.pool <- t:
	default:
		t.f.Close()
	}
}

// until blocks until deadline (time.Until is monotonic).
func (s *sleeper) until(deadline time.Time) error {
	d := time.Until(deadline)
	if d <= 0 {
		return nil
	}
	t, err := s.get()
	if err != nil {
		return err
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		t.f.Close()
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	var buf [8]byte // expiration count
	if _, err := t.f.Read(buf[:]); err != nil {
		t.f.Close()
		return fmt.Errorf("read timerfd: %w", err)
	}
	s.put(t)
	return nil
}

func (s *sleeper) close() {
	for {
		select {
		case t := <-s.pool:
			t.f.Close()
		default:
			return
		}
	}
}
