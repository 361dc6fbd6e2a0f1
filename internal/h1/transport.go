// Package h1 is an HTTP/1.1 client transport for proxies that forward to one
// upstream: each exchange writes the request and reads the reply on the
// caller's goroutine over a pooled connection. net/http's Transport hands
// every exchange to a write goroutine and a read goroutine per connection;
// on a small VM each of those handoffs is a thread wakeup, and together they
// were most of what a proxy hop added to a request's latency (see
// bench/sandbox). What it does not do: HTTP/2, proxies, TLS, compression,
// 100-continue, or reading a reply before the request body was sent (a
// server that answers early gets the rest of the body anyway).
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Transport is an http.RoundTripper to the one upstream Dial reaches,
// whatever the request URL's host. Safe for concurrent use.
type Transport struct {
	// Dial opens a stream to the upstream.
	Dial func(ctx context.Context) (net.Conn, error)
	// MaxIdle is how many idle connections are kept (default 128).
	MaxIdle int
	// IdleTimeout closes connections idle longer than this (default 30 s).
	IdleTimeout time.Duration

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

type conn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
}

// ErrClosed is returned by RoundTrip after CloseIdleConnections(true).
var ErrClosed = errors.New("h1: transport closed")

func (t *Transport) get(ctx context.Context) (*conn, bool, error) {
	t.mu.Lock()
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		t.mu.Unlock()
		if idle := time.Since(c.used); idle < t.idleTimeout() && (idle < trustIdle || alive(c)) {
			return c, true, nil
		}
		c.c.Close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	nc, err := t.Dial(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("dial upstream: %w", err)
	}
	return &conn{c: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 16<<10)}, false, nil
}

// trustIdle is how long a connection may sit idle and be reused without
// asking the kernel whether it is still open: servers close idle
// connections after seconds, not within a millisecond of a reply (one that
// means to close says "Connection: close", and those are not pooled), and
// the check is a syscall on every request's path.
const trustIdle = 250 * time.Millisecond

// alive reports whether an idle connection can take a request: the peer
// has not closed it and sent nothing unasked. net/http's transport learns
// this from a read goroutine per connection; here one non-blocking peek
// (MSG_PEEK|MSG_DONTWAIT) asks the kernel. A request written to a
// connection the server already closed fails after its body was consumed
// and could not be retried.
func alive(c *conn) bool {
	if c.br.Buffered() > 0 {
		return false // bytes nobody asked for: the stream is out of step
	}
	sc, ok := c.c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	var buf [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// EAGAIN: open and quiet, the only state a reusable one is in.
		ok = n < 0 && (rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK)
		return true
	}); err != nil {
		return false
	}
	return ok
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return 30 * time.Second
}

func (t *Transport) put(c *conn) {
	c.used = time.Now()
	t.mu.Lock()
	max := t.MaxIdle
	if max <= 0 {
		max = 128
	}
	if !t.closed && len(t.idle) < max {
		t.idle = append(t.idle, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.c.Close()
}

// CloseIdleConnections closes the pooled connections.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
}

// RoundTrip sends req and reads the reply head on the caller's goroutine.
// The body is read from the connection as the caller reads it; the
// connection returns to the pool when the body is read to its end and
// closed, and is closed otherwise. A request on a reused connection that
// fails before any reply byte arrived is retried once on a new one when
// its body can be replayed (none, or GetBody set).
func (t *Transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	// The RoundTripper contract: the body is closed, errors included. A
	// server handler whose request body is proxied relies on it (its
	// server must not find the body still open after the handler).
	defer func() {
		if err != nil && req.Body != nil {
			req.Body.Close()
		}
	}()
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err = t.exchange(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		c.c.Close()
		if !reused || attempt > 0 || !errors.Is(err, errNoReply) {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			b, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = b
			req = &r2
		}
	}
}

var errNoReply = errors.New("h1: connection closed before the reply")

func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request) (*http.Response, error) {
	// A cancelled request must not leave a goroutine blocked on the
	// connection: closing it unblocks reads and writes.
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	if err := req.Write(bufferOnly{c.bw}); err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("write request: %w", err))
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("write request: %w", errors.Join(errNoReply, err)))
	}
	if _, err := c.br.Peek(1); err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("read reply: %w", errors.Join(errNoReply, err)))
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		stop()
		return nil, ctxErr(ctx, fmt.Errorf("read reply: %w", err))
	}
	reusable := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body = &body{ReadCloser: resp.Body, ctx: ctx, t: t, c: c, stop: stop, reusable: reusable, eof: resp.Body == http.NoBody}
	return resp, nil
}

// bufferOnly hides bufio.Writer's ReadFrom: through it, Request.Write
// flushed the head and then wrote the body straight to the socket, two
// writes (and two wakeups upstream) per request where one does.
// WriteByte keeps Request.Write from adding a bufio.Writer of its own.
type bufferOnly struct{ w *bufio.Writer }

func (b bufferOnly) Write(p []byte) (int, error) { return b.w.Write(p) }
func (b bufferOnly) WriteByte(c byte) error      { return b.w.WriteByte(c) }
func (b bufferOnly) WriteString(s string) (int, error) {
	return b.w.WriteString(s)
}

func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// body gives the connection back once the reply was read to its end.
type body struct {
	io.ReadCloser
	ctx      context.Context
	t        *Transport
	c        *conn
	stop     func() bool
	reusable bool
	eof      bool
	once     sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		// A cancelled exchange surfaces as a read on a closed connection:
		// say why, as RoundTrip does.
		err = ctxErr(b.ctx, err)
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		// stop reports false when the context's AfterFunc already ran and
		// closed the connection.
		if b.stop() && b.eof && b.reusable && err == nil {
			b.t.put(b.c)
			return
		}
		b.c.c.Close()
	})
	return err
}

// DialHost returns a Dial for the TCP address of an http URL's host (port
// 80 when the URL names none), with a connect timeout and TCP keep-alives.
func DialHost(u *url.URL, timeout time.Duration) func(ctx context.Context) (net.Conn, error) {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}
