package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func dialer(addr string, dials *atomic.Int64) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

func TestReusesOneConnectionForSequentialExchanges(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	defer srv.Close()
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for i := range 20 {
		resp, err := c.Post("http://upstream/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != "POST /x body" {
			t.Fatalf("reply %q", got)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("dialled %d times for 20 sequential exchanges, want 1", n)
	}
}

func TestChunkedRequestAndStreamedReply(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for _, part := range []string{"a", "b", string(b)} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	c := &http.Client{Transport: tr}
	// An io.Reader of unknown length goes out chunked.
	resp, err := c.Post("http://upstream/", "text/plain", io.MultiReader(strings.NewReader("c"), strings.NewReader("d")))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "abcd" || resp.ContentLength != -1 {
		t.Fatalf("reply %q length %d", got, resp.ContentLength)
	}
}

func TestRetriesOnceWhenAnIdleConnectionWasClosedByTheServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	c := &http.Client{Transport: tr}
	get := func() {
		t.Helper()
		resp, err := c.Get("http://upstream/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	get()
	srv.CloseClientConnections() // the pooled connection is now dead
	get()
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2 (one retry on a fresh connection)", n)
	}
}

func TestCancelUnblocksAndDropsTheConnection(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream/", nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	tr.mu.Lock()
	idle := len(tr.idle)
	tr.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections after a cancelled exchange, want 0", idle)
	}
}

func TestUnreadBodyClosesTheConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	}))
	defer srv.Close()
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	c := &http.Client{Transport: tr}
	for range 2 {
		resp, err := c.Get("http://upstream/")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		_, _ = resp.Body.Read(buf)
		resp.Body.Close()
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2: a half-read reply must not return its connection", n)
	}
}

func TestDeadIdleConnectionIsNotUsedForABody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	var dials atomic.Int64
	tr := &Transport{Dial: dialer(srv.Listener.Addr().String(), &dials)}
	c := &http.Client{Transport: tr}
	post := func(body string) {
		t.Helper()
		// No GetBody: a request written to a dead connection could not
		// be retried, so the dead one must be noticed before writing.
		req, _ := http.NewRequest(http.MethodPost, "http://upstream/", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = int64(len(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != body {
			t.Fatalf("echo %q, want %q", got, body)
		}
	}
	post("one")
	srv.CloseClientConnections()
	// The close reaches our end asynchronously: poll until the pool sees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		c := tr.idle[0]
		tr.mu.Unlock()
		if !alive(c) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("closed connection still looks alive")
		}
		time.Sleep(time.Millisecond)
	}
	// As if it had idled past trustIdle, after which reuse asks first.
	tr.mu.Lock()
	tr.idle[0].used = time.Now().Add(-time.Second)
	tr.mu.Unlock()
	post("two")
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2", n)
	}
}

type closeCounter struct {
	io.Reader
	closed atomic.Int64
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestBodyClosedWhenTheExchangeFails(t *testing.T) {
	tr := &Transport{Dial: func(ctx context.Context) (net.Conn, error) { return nil, errors.New("no route") }}
	body := &closeCounter{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "http://upstream/", body)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("no error from a failed dial")
	}
	if body.closed.Load() != 1 {
		t.Fatalf("body closed %d times, want 1 (RoundTripper contract)", body.closed.Load())
	}
}
