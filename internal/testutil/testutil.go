// Package testutil holds the few helpers several packages' tests share.
package testutil

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// LockedBuffer collects output written from several goroutines (servers,
// commands) and read by the test.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Reset empties the buffer.
func (l *LockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// AcceptingListener listens on addr and accepts and closes every
// connection until the test ends: a host port that a control connect
// reaches and an egress attempt must not.
func AcceptingListener(t testing.TB, addr string) net.Listener {
	t.Helper()
	return ServeConns(t, addr, func(net.Conn) {})
}

// ServeConns listens on addr and runs handle on each connection, in a
// goroutine of its own, closing the connection when handle returns, until
// the test ends.
func ServeConns(t testing.TB, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln
}
