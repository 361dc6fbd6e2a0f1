package sandbox

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A streamed reply reaches the client event by event: the model sends the
// second event only after the client has read the first through the relay.
func TestRelayPlainPathStreamsEvents(t *testing.T) {
	firstSeen := make(chan struct{})
	r := newTestRelay(t, RelayOptions{}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-firstSeen:
		case <-time.After(10 * time.Second):
			return // the relay held the first event back: the client will miss "two"
		}
		_, _ = io.WriteString(w, `data: {"usage":{"total_tokens":7}}`+"\n\n")
	}))
	if !r.opt.plain() || r.fsrv == nil {
		t.Fatal("no simulated network, yet not on the plain path")
	}
	resp, err := http.Post(r.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(firstSeen)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "total_tokens") {
		t.Fatalf("rest of the stream %q", rest)
	}
	eventually(t, 5*time.Second, "the stream booked with its tokens", func() bool {
		tr := r.Transcript()
		return len(tr) == 1 && tr[0].Tokens == 7 && tr[0].Status == 200 && tr[0].Err == ""
	})
}

// Past RequestTimeout the client gets 504 and the exchange is booked as an
// error.
func TestRelayPlainPathTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	r := newTestRelay(t, RelayOptions{RequestTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	code, body, hdr := post(t, r.URL()+"/v1/chat/completions", `{}`)
	if code != http.StatusGatewayTimeout || hdr.Get("X-Sandgate-Relay") != "1" || !strings.Contains(body, "timeout") {
		t.Fatalf("got %d %q", code, body)
	}
	if st := r.Stats(); st.Errors != 1 || st.Requests != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A large reply (over what the plain path buffers) arrives whole, and its
// size is counted.
func TestRelayPlainPathLargeReply(t *testing.T) {
	big := strings.Repeat("x", maxBuffered+12345)
	r := newTestRelay(t, RelayOptions{}, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.WriteString(w, big)
	}))
	code, body, _ := post(t, r.URL()+"/x", `{}`)
	if code != 200 || body != big {
		t.Fatalf("got %d, %d bytes", code, len(body))
	}
	eventually(t, 5*time.Second, "booked", func() bool { return r.Stats().BytesOut == int64(len(big)) })
	if tr := r.Transcript(); len(tr) != 1 || !tr[0].ResponseTruncated || len(tr[0].Response) != r.bodyCap {
		t.Fatalf("transcript %+v", tr)
	}
}

// Closing a relay at once, before its server goroutine may have started,
// returns (the plain path's server only closes listeners it has seen).
func TestRelayCloseRightAfterStart(t *testing.T) {
	for range 50 {
		r, err := NewRelay(RelayOptions{}, Upstream{Dial: func(ctx context.Context) (net.Conn, error) { return nil, errors.New("unused") }}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return")
		}
	}
}
