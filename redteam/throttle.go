package redteam

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits is a request-rate and token-rate limit. Zero rates mean unlimited.
//
// Sharing a global limit: when S shards (activities, workers) run at the
// same time against one endpoint whose limit is R requests/s, give each
// shard Limits{RequestsPerSecond: R}.Share(S). Every shard then refills at
// R/S and holds a bucket of ⌈Burst/S⌉ (at least 1), so over any window of
// w seconds all shards together send at most R·w + S·⌈Burst/S⌉ requests:
// the sum never exceeds R beyond the configured burst. Keep Burst small
// (1..S) when the provider enforces R over short windows.
type Limits struct {
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	Burst             int     `json:"burst,omitempty"` // requests that may go at once (default 1)
	TokensPerSecond   float64 `json:"tokens_per_second,omitempty"`
	TokenBurst        int     `json:"token_burst,omitempty"` // default: one second of tokens
}

// Share returns the limits of one of n concurrent workers so that the sum
// over all n never exceeds l (see Limits). n < 1 is treated as 1.
func (l Limits) Share(n int) Limits {
	if n < 1 {
		n = 1
	}
	ceil := func(b int) int {
		if b <= 0 {
			return 0
		}
		return max(1, (b+n-1)/n)
	}
	return Limits{
		RequestsPerSecond: l.RequestsPerSecond / float64(n),
		Burst:             ceil(l.Burst),
		TokensPerSecond:   l.TokensPerSecond / float64(n),
		TokenBurst:        ceil(l.TokenBurst),
	}
}

// Validate names the first bad field.
func (l Limits) Validate() error {
	switch {
	case l.RequestsPerSecond < 0 || math.IsNaN(l.RequestsPerSecond) || math.IsInf(l.RequestsPerSecond, 0):
		return fmt.Errorf("redteam: Limits.RequestsPerSecond is %v; use 0 (unlimited) or a positive finite rate", l.RequestsPerSecond)
	case l.TokensPerSecond < 0 || math.IsNaN(l.TokensPerSecond) || math.IsInf(l.TokensPerSecond, 0):
		return fmt.Errorf("redteam: Limits.TokensPerSecond is %v; use 0 (unlimited) or a positive finite rate", l.TokensPerSecond)
	case l.Burst < 0 || l.TokenBurst < 0:
		return fmt.Errorf("redteam: Limits.Burst/TokenBurst must not be negative (got %d/%d)", l.Burst, l.TokenBurst)
	}
	return nil
}

// ErrBudget is returned (wrapped) when a Budget is spent: the run stopped
// on purpose, not because the target failed.
var ErrBudget = errors.New("budget exhausted")

// Budget caps what a run (or one shard of it) may spend. Zero fields are
// unlimited. Token accounting uses the usage the server reports after each
// call, so a run may overshoot MaxTokens by at most the calls in flight
// when the budget ran out.
type Budget struct {
	MaxQueries int64 `json:"max_queries,omitempty"` // target calls, retries included
	MaxTokens  int64 `json:"max_tokens,omitempty"`  // prompt + completion tokens
}

// Share divides a global budget among n shards (rounding down, at least 1
// where the budget is set) so that shards together never exceed it.
func (b Budget) Share(n int) Budget {
	if n < 1 {
		n = 1
	}
	div := func(v int64) int64 {
		if v <= 0 {
			return 0
		}
		return max(1, v/int64(n))
	}
	return Budget{MaxQueries: div(b.MaxQueries), MaxTokens: div(b.MaxTokens)}
}

// Throttle paces calls to one endpoint: a request-rate limiter, a token-rate
// limiter, a spending Budget and an adaptive (AIMD) cap on calls in flight.
// One Throttle may be shared by several runners in a process; across
// processes give each its Limits.Share. Safe for concurrent use.
type Throttle struct {
	req, tok *rate.Limiter
	budget   Budget
	queries  atomic.Int64
	tokens   atomic.Int64

	mu       sync.Mutex
	wake     chan struct{}
	inflight int
	limit    float64 // current AIMD window; int(limit) calls may be in flight
	maxConc  int
	minConc  int
	latency  time.Duration // AIMDOptions.LatencyTarget
	lastCut  time.Time

	rampUp  time.Duration
	created time.Time
	started atomic.Int64
}

// ThrottleOptions configure NewThrottle.
type ThrottleOptions struct {
	Limits Limits
	Budget Budget
	// MaxConcurrency is the AIMD ceiling and starting window (default 16).
	MaxConcurrency int
	// MinConcurrency is the AIMD floor (default 1).
	MinConcurrency int
	// RampUp spreads the first MaxConcurrency calls evenly over this
	// long instead of sending them at once. Against a target with a steady
	// latency, calls sent together come back together and contend for the
	// CPU in lockstep on every round trip; staggered once, they stay
	// staggered. A good value is the target's typical latency.
	RampUp time.Duration
	// LatencyTarget, when set, halves the window on replies slower than
	// it, so a saturating target is backed off before it starts failing.
	LatencyTarget time.Duration
}

// NewThrottle validates o and builds a Throttle.
func NewThrottle(o ThrottleOptions) (*Throttle, error) {
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	if o.MaxConcurrency < 0 || o.MinConcurrency < 0 || o.Budget.MaxQueries < 0 || o.Budget.MaxTokens < 0 || o.LatencyTarget < 0 {
		return nil, fmt.Errorf("redteam: ThrottleOptions: concurrency, budget and LatencyTarget must not be negative (%+v)", o)
	}
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = 16
	}
	if o.MinConcurrency == 0 {
		o.MinConcurrency = 1
	}
	if o.MinConcurrency > o.MaxConcurrency {
		return nil, fmt.Errorf("redteam: ThrottleOptions.MinConcurrency %d exceeds MaxConcurrency %d", o.MinConcurrency, o.MaxConcurrency)
	}
	t := &Throttle{budget: o.Budget, wake: make(chan struct{}), limit: float64(o.MaxConcurrency),
		maxConc: o.MaxConcurrency, minConc: o.MinConcurrency, latency: o.LatencyTarget, rampUp: o.RampUp, created: time.Now()}
	if r := o.Limits.RequestsPerSecond; r > 0 {
		t.req = rate.NewLimiter(rate.Limit(r), max(1, o.Limits.Burst))
	}
	if r := o.Limits.TokensPerSecond; r > 0 {
		b := o.Limits.TokenBurst
		if b <= 0 {
			b = max(1, int(r))
		}
		t.tok = rate.NewLimiter(rate.Limit(r), b)
	}
	return t, nil
}

// Signal is what a finished call tells the AIMD controller.
type Signal struct {
	Overloaded bool          // 429, 5xx or a timeout: back off
	Latency    time.Duration // of a successful call
	Tokens     int           // usage reported by the server
}

// Acquire waits for a concurrency slot, the request limiter and (with an
// estimate of the call's tokens) the token limiter, and charges one query
// to the budget. It returns a release function to call exactly once with
// the call's Signal. Errors: ctx's, or ErrBudget (wrapped).
func (t *Throttle) Acquire(ctx context.Context, estTokens int) (release func(Signal), err error) {
	if n := t.queries.Add(1); t.budget.MaxQueries > 0 && n > t.budget.MaxQueries {
		return nil, fmt.Errorf("redteam: %d-query budget: %w", t.budget.MaxQueries, ErrBudget)
	}
	if t.budget.MaxTokens > 0 && t.tokens.Load() >= t.budget.MaxTokens {
		return nil, fmt.Errorf("redteam: %d-token budget: %w", t.budget.MaxTokens, ErrBudget)
	}
	if err := t.ramp(ctx); err != nil {
		return nil, err
	}
	if err := t.slot(ctx); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			t.done(Signal{})
		}
	}()
	// The rate limiters are waited on while holding the slot: the slot
	// bounds memory and sockets, the limiter bounds the endpoint's rate.
	if t.req != nil {
		if err := t.req.Wait(ctx); err != nil {
			return nil, fmt.Errorf("redteam: waiting for the request rate limiter: %w", err)
		}
	}
	if t.tok != nil && estTokens > 0 {
		if err := t.tok.WaitN(ctx, min(estTokens, t.tok.Burst())); err != nil {
			return nil, fmt.Errorf("redteam: waiting for the token rate limiter: %w", err)
		}
	}
	ok = true
	var once sync.Once
	return func(s Signal) { once.Do(func() { t.done(s) }) }, nil
}

// ramp delays the k-th of the first MaxConcurrency calls to k/MaxConcurrency
// of RampUp after the throttle was made.
func (t *Throttle) ramp(ctx context.Context) error {
	if t.rampUp <= 0 {
		return nil
	}
	k := t.started.Add(1) - 1
	if k >= int64(t.maxConc) {
		return nil
	}
	wait := time.Until(t.created.Add(time.Duration(k) * t.rampUp / time.Duration(t.maxConc)))
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redteam: ramping up: %w", ctx.Err())
	}
}

func (t *Throttle) slot(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.inflight < int(t.limit) {
			t.inflight++
			t.mu.Unlock()
			return nil
		}
		wake := t.wake
		t.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("redteam: waiting for a concurrency slot: %w", ctx.Err())
		}
	}
}

// done releases a slot and adapts the window: additive increase of one
// slot per window of successes, multiplicative decrease (halving) on
// overload, at most once per observed latency so that one burst of
// failures from calls already in flight counts as a single congestion event.
func (t *Throttle) done(s Signal) {
	if s.Tokens > 0 {
		t.tokens.Add(int64(s.Tokens))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight--
	now := time.Now()
	slow := t.latency > 0 && s.Latency > t.latency
	switch {
	case s.Overloaded || slow:
		cool := max(s.Latency, 50*time.Millisecond)
		if now.Sub(t.lastCut) >= cool {
			t.limit = max(float64(t.minConc), t.limit/2)
			t.lastCut = now
		}
	case s.Latency > 0:
		t.limit = min(float64(t.maxConc), t.limit+1/t.limit)
	}
	close(t.wake)
	t.wake = make(chan struct{})
}

// Window is the current number of calls allowed in flight.
func (t *Throttle) Window() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.limit)
}

// Spent reports queries and tokens charged so far.
func (t *Throttle) Spent() (queries, tokens int64) {
	q := t.queries.Load()
	if t.budget.MaxQueries > 0 {
		q = min(q, t.budget.MaxQueries)
	}
	return q, t.tokens.Load()
}
