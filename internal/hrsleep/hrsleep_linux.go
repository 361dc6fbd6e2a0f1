// Package hrsleep waits until an instant with sub-millisecond precision,
// for the test doubles of latency benchmarks (model endpoints with a fixed
// service time). time.Sleep wakes up to a millisecond late on this kind of
// machine (the runtime's epoll_wait timeout has millisecond resolution),
// which turns a fixed 20 ms service time into ~21 ms and a 2 ms one into
// ~2.5–3 ms with a wide tail, and charges the code under test for the test
// double's overshoot.
package hrsleep

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sleeper waits with timerfds read through the netpoller: a timerfd expiry
// is an fd event, so epoll_wait returns as soon as it fires. Timerfds are
// pooled (up to the size given to New). Safe for concurrent use.
type Sleeper struct {
	pool chan *timerFD
}

type timerFD struct {
	fd int
	f  *os.File // the same fd, registered with the netpoller
}

// New returns a Sleeper that keeps up to size idle timerfds.
func New(size int) *Sleeper { return &Sleeper{pool: make(chan *timerFD, size)} }

func (s *Sleeper) get() (*timerFD, error) {
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

func (s *Sleeper) put(t *timerFD) {
	select {
	case s.pool <- t:
	default:
		t.f.Close()
	}
}

// Until blocks until deadline (time.Until is monotonic).
func (s *Sleeper) Until(deadline time.Time) error {
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

// Close closes the pooled timerfds; call it once no Until is running.
func (s *Sleeper) Close() {
	for {
		select {
		case t := <-s.pool:
			t.f.Close()
		default:
			return
		}
	}
}
