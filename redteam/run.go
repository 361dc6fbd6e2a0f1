package redteam

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// RunOptions configures Run (and privacy.Run). Zero values get defaults,
// except MaxRetries: 0 means no retries.
type RunOptions struct {
	Concurrency int           // requests in flight (default 4)
	Timeout     time.Duration // per HTTP call, each retry gets a fresh one (default 60s)
	MaxRetries  int           // retries on 429/5xx/timeouts/transport errors
	MaxTokens   int           // completion budget per call (0: server default)
	ReleaseID   string
	Shard       int
	Model       string

	Backoff    time.Duration // first retry delay, doubled per retry, jittered (default 500ms)
	MaxBackoff time.Duration // cap on one delay (default 15s)
	Detectors  *Registry     // nil: DefaultDetectors()
	Logger     *slog.Logger  // nil: slog.Default()

	// AttemptTimeout bounds one attempt, retries and backoff included, so
	// a slow-loris target or a long Retry-After cannot hang a shard
	// (0: no bound beyond Timeout per try).
	AttemptTimeout time.Duration
	// Throttle, when set, paces every call (rate limits, token budget,
	// adaptive concurrency); share one between runners of a process and
	// give each process Limits.Share of the global limit.
	Throttle *Throttle
}

// Normalize validates opt and fills defaults. Errors name the field.
func (opt RunOptions) Normalize() (RunOptions, error) {
	switch {
	case opt.Concurrency < 0:
		return opt, fmt.Errorf("redteam: RunOptions.Concurrency is %d; use 0 for the default or a positive number", opt.Concurrency)
	case opt.Timeout < 0:
		return opt, fmt.Errorf("redteam: RunOptions.Timeout is %v; use 0 for the default (60s) or a positive duration", opt.Timeout)
	case opt.MaxRetries < 0:
		return opt, fmt.Errorf("redteam: RunOptions.MaxRetries is %d; use 0 (no retries) or more", opt.MaxRetries)
	case opt.MaxTokens < 0:
		return opt, fmt.Errorf("redteam: RunOptions.MaxTokens is %d; use 0 for the server default or a positive number", opt.MaxTokens)
	case opt.Shard < 0:
		return opt, fmt.Errorf("redteam: RunOptions.Shard is %d; shards are numbered from 0", opt.Shard)
	case opt.Backoff < 0 || opt.MaxBackoff < 0:
		return opt, fmt.Errorf("redteam: RunOptions.Backoff/MaxBackoff must not be negative")
	case opt.AttemptTimeout < 0:
		return opt, fmt.Errorf("redteam: RunOptions.AttemptTimeout is %v; use 0 (none) or a positive duration", opt.AttemptTimeout)
	}
	if opt.Concurrency == 0 {
		opt.Concurrency = 4
	}
	if opt.Timeout == 0 {
		opt.Timeout = 60 * time.Second
	}
	if opt.Backoff == 0 {
		opt.Backoff = 500 * time.Millisecond
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 15 * time.Second
	}
	if opt.MaxBackoff < opt.Backoff {
		opt.MaxBackoff = opt.Backoff
	}
	if opt.Detectors == nil {
		opt.Detectors = DefaultDetectors()
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return opt, nil
}

// NewChatRequest builds the request for one attack: the target's system
// prompt (omitted when empty) and the user prompt, at temperature 0 with the
// row's seed so that servers honouring seeds reproduce the reply.
func NewChatRequest(opt RunOptions, system, user string, seed int64) modelapi.ChatRequest {
	var msgs []modelapi.Message
	if system != "" {
		msgs = append(msgs, modelapi.Message{Role: "system", Content: system})
	}
	msgs = append(msgs, modelapi.Message{Role: "user", Content: user})
	temp := 0.0
	return modelapi.ChatRequest{Model: opt.Model, Messages: msgs, MaxTokens: opt.MaxTokens, Temperature: &temp, Seed: &seed}
}

// CallResult is the outcome of Call: the final try and how many retries led
// to it.
type CallResult struct {
	Response   modelapi.ChatResponse
	Err        error
	StatusCode int // 200 on success, the server's status on a StatusError, else 0
	Latency    time.Duration
	Retries    int
}

// Call sends req with a per-try timeout, retrying Retryable errors with
// jittered exponential backoff (never sooner than the server's
// Retry-After). With opt.Throttle each try first waits for it. It stops
// early, returning ctx's error, when ctx ends; opt.AttemptTimeout bounds
// the whole call. Invalid options come back as the result's error, a spent
// budget as an error wrapping ErrBudget.
func Call(ctx context.Context, client *modelapi.Client, req modelapi.ChatRequest, opt RunOptions) CallResult {
	var res CallResult
	opt, err := opt.Normalize()
	if err != nil {
		res.Err = err
		return res
	}
	actx := ctx
	if opt.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, opt.AttemptTimeout)
		defer cancel()
	}
	est := estimateTokens(req)
	for try := 0; ; try++ {
		res.Retries = try
		release := func(Signal) {}
		if opt.Throttle != nil {
			rel, err := opt.Throttle.Acquire(actx, est)
			if err != nil {
				res.Response, res.StatusCode = modelapi.ChatResponse{}, 0
				res.Err = err
				if ctx.Err() != nil {
					res.Err = fmt.Errorf("redteam: call abandoned: %w", ctx.Err())
				} else if actx.Err() != nil {
					res.Err = fmt.Errorf("redteam: no reply within the %v attempt deadline: %w", opt.AttemptTimeout, actx.Err())
				}
				return res
			}
			release = rel
		}
		cctx, cancel := context.WithTimeout(actx, opt.Timeout)
		start := time.Now()
		resp, err := client.Chat(cctx, req)
		res.Latency = time.Since(start)
		cancel()
		res.Response, res.Err, res.StatusCode = resp, err, 200
		code := StatusCode(err)
		release(Signal{
			Overloaded: err != nil && (code == 429 || code >= 500 || IsTimeout(err)),
			Latency:    res.Latency,
			Tokens:     resp.Usage.PromptTokens + resp.Usage.CompletionTokens,
		})
		if err != nil {
			res.Response = modelapi.ChatResponse{}
			res.StatusCode = code
			if cerr := ctx.Err(); cerr != nil {
				res.Err = fmt.Errorf("redteam: call abandoned: %w", cerr)
				return res
			}
			// Name the deadline: the client's error only says "context deadline exceeded".
			if errors.Is(err, context.DeadlineExceeded) {
				if actx.Err() != nil {
					res.Err = fmt.Errorf("redteam: no reply within the %v attempt deadline: %w", opt.AttemptTimeout, err)
					return res
				}
				res.Err = fmt.Errorf("redteam: no reply within %v: %w", opt.Timeout, err)
			}
		}
		if err == nil || !Retryable(err) || try >= opt.MaxRetries {
			return res
		}
		delay := backoff(opt, try)
		var se *modelapi.StatusError
		if errors.As(err, &se) && se.RetryAfter > delay {
			delay = se.RetryAfter
		}
		opt.Logger.DebugContext(ctx, "redteam: retrying model call", "try", try+1, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-actx.Done():
			t.Stop()
			if ctx.Err() == nil {
				res.Err = fmt.Errorf("redteam: attempt deadline %v reached during backoff (last error: %v): %w", opt.AttemptTimeout, err, actx.Err())
				return res
			}
			res.Err = fmt.Errorf("redteam: call abandoned during backoff (last error: %v): %w", err, ctx.Err())
			return res
		case <-t.C:
		}
	}
}

// estimateTokens guesses a call's tokens before it is made (≈4 bytes per
// token plus the completion cap) for the token-rate limiter.
func estimateTokens(req modelapi.ChatRequest) int {
	n := 0
	for _, m := range req.Messages {
		n += len(m.Content)/4 + 4
	}
	return n + req.MaxTokens
}

// backoff is full-jitter exponential: uniform in [d/2, d], d = Backoff·2^try
// capped at MaxBackoff. Jitter keeps parallel workers from retrying in step.
func backoff(opt RunOptions, try int) time.Duration {
	d := opt.Backoff
	for i := 0; i < try && d < opt.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, opt.MaxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Ordered runs work over items with at most concurrency calls in flight and
// hands results to emit in item order, from the calling goroutine (emit
// needs no locking). Memory stays bounded: at most ~2·concurrency results
// wait for a slow predecessor. It returns ctx's error if ctx ends first and
// emit's error as soon as emit fails; no goroutine outlives the call.
func Ordered[T, R any](ctx context.Context, items []T, concurrency int, work func(ctx context.Context, i int, item T) R, emit func(R) error) error {
	return OrderedSeq(ctx, slices.Values(items), concurrency, work, emit)
}

// orderedWindow is how many results per worker may wait for their turn.
const orderedWindow = 4

// OrderedSeq is Ordered over a sequence, which it reads lazily: a run of
// any size holds only the items in flight and the ordered window.
func OrderedSeq[T, R any](ctx context.Context, items iter.Seq[T], concurrency int, work func(ctx context.Context, i int, item T) R, emit func(R) error) error {
	if concurrency < 1 {
		concurrency = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The ordered window holds results that finished out of order until
	// the ones before them are emitted. A window of only `concurrency`
	// would stall every worker behind one slow request (head-of-line
	// blocking); a few times that keeps all workers busy while memory
	// stays bounded by window results.
	futures := make(chan chan R, orderedWindow*concurrency)
	type job struct {
		i    int
		item T
		f    chan R
	}
	// A fixed pool of workers rather than a goroutine per item: a worker's
	// stack grows once to what the HTTP client, JSON decoding and the
	// detectors need, instead of every attempt regrowing (and copying) a
	// fresh goroutine's stack, and the number of calls in flight is the
	// number of workers without a semaphore.
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.f <- work(ctx, j.i, j.item)
			}
		}()
	}
	stopped := false // written by the producer before it closes futures
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(futures)
		defer close(jobs)
		i := 0
		for it := range items {
			f := make(chan R, 1)
			// The future is queued before the job is handed out, so a
			// dispatched job always has its result read (or the run is
			// being cancelled and f, buffered, is simply dropped).
			select {
			case futures <- f:
			case <-ctx.Done():
				stopped = true
				return
			}
			select {
			case jobs <- job{i: i, item: it, f: f}:
			case <-ctx.Done():
				// The consumer may already wait on f: give it the zero
				// result, which it discards because ctx has ended.
				var zero R
				f <- zero
				stopped = true
				return
			}
			i++
		}
	}()

	var err error
	for f := range futures {
		r := <-f
		if err != nil {
			continue // draining after a failure
		}
		if cerr := ctx.Err(); cerr != nil {
			// A result finished under a cancelled context may be an artefact
			// of the cancellation; the caller will resume, so emit nothing.
			err = cerr
			cancel()
			continue
		}
		if eerr := emit(r); eerr != nil {
			err = eerr
			cancel()
			continue
		}
	}
	wg.Wait()
	if err == nil && stopped {
		// The producer stopped early, which only a cancelled ctx makes it do.
		err = ctx.Err()
	}
	return err
}

// Run sends every prompt to the model, judges each reply and emits one
// AttemptRow per prompt in prompt order, whatever opt.Concurrency is.
// Call errors become errored rows; Run itself fails only on bad options, a
// failing emit, a spent opt.Throttle budget (ErrBudget) or ctx ending (then
// rows not yet emitted are not emitted, and a retry of the shard rewrites
// them).
func Run(ctx context.Context, client *modelapi.Client, t Target, prompts []datasets.PromptRow, opt RunOptions, emit func(AttemptRow) error) error {
	return RunSeq(ctx, client, t, slices.Values(prompts), opt, emit)
}

// RunSeq is Run over a lazily read sequence of prompts: memory stays
// bounded by opt.Concurrency whatever the run size.
func RunSeq(ctx context.Context, client *modelapi.Client, t Target, prompts iter.Seq[datasets.PromptRow], opt RunOptions, emit func(AttemptRow) error) error {
	if client == nil {
		return errors.New("redteam: Run needs a modelapi.Client, got nil")
	}
	if emit == nil {
		return errors.New("redteam: Run needs an emit function, got nil")
	}
	if prompts == nil {
		return errors.New("redteam: Run needs a prompt sequence, got nil")
	}
	opt, err := opt.Normalize()
	if err != nil {
		return err
	}
	type result struct {
		row AttemptRow
		err error
	}
	var tally Tally
	err = OrderedSeq(ctx, prompts, opt.Concurrency, func(ctx context.Context, _ int, p datasets.PromptRow) result {
		c := Call(ctx, client, NewChatRequest(opt, t.SystemPrompt, p.Prompt, p.Seed), opt)
		if errors.Is(c.Err, ErrBudget) {
			return result{err: c.Err}
		}
		v := opt.Detectors.Judge(t, p, c.Response, c.Err)
		return result{row: NewAttemptRow(opt, p, c, v)}
	}, func(r result) error {
		if r.err != nil {
			return r.err
		}
		tally.Add(r.row)
		if err := emit(r.row); err != nil {
			return fmt.Errorf("redteam: emit row for prompt %s: %w", r.row.PromptID, err)
		}
		return nil
	})
	s := tally.Summary()
	opt.Logger.InfoContext(ctx, "redteam: run finished", "release", opt.ReleaseID, "shard", opt.Shard,
		"emitted", s.Total, "breached", s.Overall.Breached,
		"defended", s.Overall.Defended, "errored", s.Overall.Errored, "err", err)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("redteam: run stopped after %d prompts: %w", s.Total, err)
		}
		if errors.Is(err, ErrBudget) {
			return fmt.Errorf("redteam: run stopped after %d prompts: %w", s.Total, err)
		}
		return err
	}
	return nil
}
