package redteam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

func TestLimitsShare(t *testing.T) {
	l := Limits{RequestsPerSecond: 100, Burst: 5, TokensPerSecond: 1000, TokenBurst: 3}
	s := l.Share(4)
	if s.RequestsPerSecond != 25 || s.Burst != 2 || s.TokensPerSecond != 250 || s.TokenBurst != 1 {
		t.Fatalf("Share(4) = %+v", s)
	}
	if got := l.Share(0); got != (Limits{100, 5, 1000, 3}) {
		t.Fatalf("Share(0) = %+v, want l unchanged", got)
	}
	if b := (Budget{MaxQueries: 10, MaxTokens: 3}).Share(4); b != (Budget{MaxQueries: 2, MaxTokens: 1}) {
		t.Fatalf("Budget.Share = %+v", b)
	}
	if err := (Limits{RequestsPerSecond: -1}).Validate(); err == nil {
		t.Fatal("negative rate accepted")
	}
}

// okServer answers every completion and records arrival times.
type okServer struct {
	mu       sync.Mutex
	arrivals []time.Time
	inflight atomic.Int32
	maxIn    int32 // answer 429 when more than this are in flight (0: never)
	delay    time.Duration
}

func (s *okServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.arrivals = append(s.arrivals, time.Now())
	s.mu.Unlock()
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if s.maxIn > 0 && n > s.maxIn {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	w.Write([]byte(okCompletion))
}

func prompts(n int) []datasets.PromptRow {
	out := make([]datasets.PromptRow, n)
	for i := range out {
		out[i] = datasets.PromptRow{ID: fmt.Sprint("p", i), Goal: GoalLeakSecret, Prompt: "code?"}
	}
	return out
}

// TestSharedRateLimit: two runners, each given half of a global limit R,
// never together exceed R requests in any 1 s window at the endpoint.
// Tolerance: the two 1-request bursts, plus R × 50 ms for the delay between
// a grant and its arrival (a window of arrivals spans grants over 1 s plus
// that delay; on this shared machine it reaches tens of milliseconds).
func TestSharedRateLimit(t *testing.T) {
	const R = 60.0
	srv := &okServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client := &modelapi.Client{BaseURL: hs.URL}
	global := Limits{RequestsPerSecond: R, Burst: 2}
	var wg sync.WaitGroup
	for shard := range 2 {
		th, err := NewThrottle(ThrottleOptions{Limits: global.Share(2), MaxConcurrency: 8})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			opt := RunOptions{Concurrency: 8, Throttle: th, Shard: shard, Logger: slog.New(slog.DiscardHandler)}
			if err := Run(context.Background(), client, testTarget, prompts(75), opt, func(AttemptRow) error { return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	srv.mu.Lock()
	at := slices.Clone(srv.arrivals)
	srv.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	if len(at) != 150 {
		t.Fatalf("%d requests, want 150", len(at))
	}
	worst := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		worst = max(worst, j-i)
	}
	span := at[len(at)-1].Sub(at[0])
	const tolerance = 2 + 3 // bursts + R·0.05 s
	t.Logf("150 requests in %v (%.1f/s); busiest 1 s window: %d (limit %v, tolerance %d)", span, 149/span.Seconds(), worst, R, tolerance)
	if worst > int(R)+tolerance {
		t.Errorf("busiest 1 s window had %d requests, over R=%v plus tolerance %d", worst, R, tolerance)
	}
	if span < 2*time.Second {
		t.Errorf("150 requests at 60/s finished in %v; the limiter is not limiting", span)
	}
}

// TestAIMDBacksOff: an endpoint that answers 429 beyond 4 concurrent calls
// makes the window shrink from 32, and every attempt still succeeds
// through retries.
func TestAIMDBacksOff(t *testing.T) {
	srv := &okServer{maxIn: 4, delay: 5 * time.Millisecond}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	th, err := NewThrottle(ThrottleOptions{MaxConcurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	opt := RunOptions{Concurrency: 32, Throttle: th, MaxRetries: 30, Backoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	var tl Tally
	if err := Run(context.Background(), &modelapi.Client{BaseURL: hs.URL}, testTarget, prompts(200), opt, func(r AttemptRow) error { tl.Add(r); return nil }); err != nil {
		t.Fatal(err)
	}
	if tl.Overall.Errored != 0 || tl.Overall.Defended != 200 {
		t.Fatalf("tally %+v, want all 200 defended after retries", tl.Overall)
	}
	if w := th.Window(); w >= 32 {
		t.Errorf("window %d after repeated 429s, want it cut below 32", w)
	}
}

func TestBudgetStopsRun(t *testing.T) {
	hs := httptest.NewServer(&okServer{})
	defer hs.Close()
	th, err := NewThrottle(ThrottleOptions{Budget: Budget{MaxQueries: 10}, MaxConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = Run(context.Background(), &modelapi.Client{BaseURL: hs.URL}, testTarget, prompts(50), RunOptions{Concurrency: 1, Throttle: th, Logger: slog.New(slog.DiscardHandler)},
		func(AttemptRow) error { n++; return nil })
	if !errors.Is(err, ErrBudget) || n != 10 {
		t.Fatalf("err %v after %d rows, want ErrBudget after 10", err, n)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 delays the retry by a
// second although the backoff is 1 ms; a 400 is not retried.
func TestRetryAfterHonoured(t *testing.T) {
	var calls atomic.Int32
	var times [2]time.Time
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= 2 {
			times[n-1] = time.Now()
		}
		switch r.Header.Get("X-Case") {
		case "400":
			w.WriteHeader(400)
			return
		}
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		w.Write([]byte(okCompletion))
	}))
	defer hs.Close()
	opt := RunOptions{MaxRetries: 3, Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	req := modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}}
	c := Call(context.Background(), &modelapi.Client{BaseURL: hs.URL}, req, opt)
	if c.Err != nil || c.Retries != 1 {
		t.Fatalf("call: %+v", c)
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retry after %v, want ≥ 1s as Retry-After asked", gap)
	}
	calls.Store(10)
	bad := &modelapi.Client{BaseURL: hs.URL, HTTP: &http.Client{Transport: setHeader{"X-Case", "400"}}}
	c = Call(context.Background(), bad, req, opt)
	if c.StatusCode != 400 || c.Retries != 0 {
		t.Fatalf("400: %+v, want no retry", c)
	}
}

type setHeader [2]string

func (h setHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h[0], h[1])
	return http.DefaultTransport.RoundTrip(r)
}
