package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestRelay puts a relay in front of h, reached by dialing the test
// server directly as the process provider dials the sandbox socket.
func newTestRelay(t *testing.T, opt RelayOptions, h http.Handler) *Relay {
	t.Helper()
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	addr := up.Listener.Addr().String()
	r, err := NewRelay(opt, Upstream{
		Host: "127.0.0.1:8080",
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func echoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Host", r.Host)
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "model crashed", http.StatusInternalServerError)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	return mux
}

func post(t *testing.T, u, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(u, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRelayForwardsAndCounts(t *testing.T) {
	r := newTestRelay(t, RelayOptions{}, echoHandler())
	if !strings.HasPrefix(r.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", r.URL())
	}
	code, body, hdr := post(t, r.URL()+"/v1/chat", "hello")
	if code != 200 || body != "hello" || hdr.Get("X-Host") != "127.0.0.1:8080" {
		t.Fatalf("got %d %q host %q", code, body, hdr.Get("X-Host"))
	}
	if code, _, _ := post(t, r.URL()+"/boom", ""); code != 500 {
		t.Fatalf("/boom = %d", code)
	}
	// The client can have the whole response a moment before the relay
	// books it, so poll.
	want := RelayStats{Requests: 2, Errors: 1, BytesIn: 5, BytesOut: 5 + int64(len("model crashed\n"))}
	eventually(t, 5*time.Second, "relay stats to settle", func() bool { return r.Stats() == want })
	tr := r.Transcript()
	if len(tr) != 2 || tr[0].Method != "POST" || tr[0].Path != "/v1/chat" || tr[0].Status != 200 ||
		tr[0].BytesIn != 5 || tr[0].BytesOut != 5 || tr[1].Status != 500 {
		t.Fatalf("transcript = %+v", tr)
	}
}

func TestRelayRequestBudget(t *testing.T) {
	r := newTestRelay(t, RelayOptions{MaxRequests: 2}, echoHandler())
	for i := 0; i < 2; i++ {
		if code, _, _ := post(t, r.URL()+"/", "x"); code != 200 {
			t.Fatalf("request %d = %d", i+1, code)
		}
	}
	code, body, hdr := post(t, r.URL()+"/", "x")
	if code != http.StatusTooManyRequests || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("request 3 = %d %s", code, hdr.Get("Content-Type"))
	}
	var e struct {
		Error struct {
			Type, Budget, Message string
			Limit, Used           int64
		}
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Type != "budget_exceeded" || e.Error.Budget != "requests" || e.Error.Limit != 2 || e.Error.Used != 2 ||
		!strings.Contains(e.Error.Message, "request") {
		t.Fatalf("body = %s", body)
	}
	if st := r.Stats(); st.Requests != 2 || st.Rejected != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRelayByteBudget(t *testing.T) {
	r := newTestRelay(t, RelayOptions{MaxBytes: 100}, echoHandler())
	// 60 in + 60 out = 120: admitted (under budget when it started), and
	// exhausts the budget for the next one.
	if code, _, _ := post(t, r.URL()+"/", strings.Repeat("a", 60)); code != 200 {
		t.Fatalf("first = %d", code)
	}
	code, body, _ := post(t, r.URL()+"/", "b")
	if code != http.StatusTooManyRequests || !strings.Contains(body, `"budget":"bytes"`) {
		t.Fatalf("second = %d %s", code, body)
	}
}

func TestRelayLatencyAndTimeout(t *testing.T) {
	const lat = 150 * time.Millisecond
	r := newTestRelay(t, RelayOptions{Latency: lat, RequestTimeout: 600 * time.Millisecond}, echoHandler())
	start := time.Now()
	if code, _, _ := post(t, r.URL()+"/", "x"); code != 200 {
		t.Fatalf("code %d", code)
	}
	if took := time.Since(start); took < lat {
		t.Fatalf("request took %s, want at least the injected %s", took, lat)
	}
	eventually(t, 5*time.Second, "the exchange to be booked", func() bool { return len(r.Transcript()) == 1 })
	if tr := r.Transcript(); tr[0].Latency < lat {
		t.Fatalf("transcript latency %s", tr[0].Latency)
	}
	code, body, _ := post(t, r.URL()+"/hang", "")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "timeout") {
		t.Fatalf("/hang = %d %s", code, body)
	}
	eventually(t, 5*time.Second, "the timeout to count as an error", func() bool { return r.Stats().Errors == 1 })
}

func TestRelayUpstreamDown(t *testing.T) {
	r, err := NewRelay(RelayOptions{}, Upstream{Dial: func(ctx context.Context) (net.Conn, error) {
		return nil, errors.New("no model socket")
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	code, body, _ := post(t, r.URL()+"/", "")
	if code != http.StatusBadGateway || !strings.Contains(body, "no model socket") {
		t.Fatalf("got %d %s", code, body)
	}
	eventually(t, 5*time.Second, "the failed exchange in the transcript", func() bool {
		tr := r.Transcript()
		return len(tr) == 1 && strings.Contains(tr[0].Err, "no model socket")
	})
}

func TestRelayTranscriptIsBoundedAndConcurrentSafe(t *testing.T) {
	r := newTestRelay(t, RelayOptions{TranscriptSize: 5}, echoHandler())
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(r.URL()+"/", "text/plain", bytes.NewReader([]byte("abc")))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	eventually(t, 5*time.Second, "all 12 exchanges to be booked", func() bool {
		st := r.Stats()
		return st.Requests == 12 && st.BytesIn == 36 && st.BytesOut == 36
	})
	if tr := r.Transcript(); len(tr) != 5 {
		t.Fatalf("transcript has %d entries, want 5", len(tr))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(r.URL()); err == nil {
		t.Fatal("relay answers after Close")
	}
}

func TestRelayRejectsBadOptions(t *testing.T) {
	_, err := NewRelay(RelayOptions{MaxRequests: -1}, Upstream{Dial: func(context.Context) (net.Conn, error) { return nil, nil }}, nil)
	if err == nil {
		t.Fatal("negative budget accepted")
	}
}
