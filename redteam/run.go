package redteam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
// jittered exponential backoff. It stops early, returning ctx's error, when
// ctx ends. Invalid options come back as the result's error.
func Call(ctx context.Context, client *modelapi.Client, req modelapi.ChatRequest, opt RunOptions) CallResult {
	var res CallResult
	opt, err := opt.Normalize()
	if err != nil {
		res.Err = err
		return res
	}
	for try := 0; ; try++ {
		res.Retries = try
		cctx, cancel := context.WithTimeout(ctx, opt.Timeout)
		start := time.Now()
		resp, err := client.Chat(cctx, req)
		res.Latency = time.Since(start)
		cancel()
		res.Response, res.Err, res.StatusCode = resp, err, 200
		if err != nil {
			res.Response = modelapi.ChatResponse{}
			res.StatusCode = StatusCode(err)
			if cerr := ctx.Err(); cerr != nil {
				res.Err = fmt.Errorf("redteam: call abandoned: %w", cerr)
				return res
			}
			// Name the per-try timeout: the client's error only says "context deadline exceeded".
			if errors.Is(err, context.DeadlineExceeded) {
				res.Err = fmt.Errorf("redteam: no reply within %v: %w", opt.Timeout, err)
			}
		}
		if err == nil || !Retryable(err) || try >= opt.MaxRetries {
			return res
		}
		delay := backoff(opt, try)
		opt.Logger.DebugContext(ctx, "redteam: retrying model call", "try", try+1, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			res.Err = fmt.Errorf("redteam: call abandoned during backoff (last error: %v): %w", err, ctx.Err())
			return res
		case <-t.C:
		}
	}
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
	if concurrency < 1 {
		concurrency = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	futures := make(chan chan R, concurrency)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(futures)
		for i, it := range items {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			f := make(chan R, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				<-sem
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				f <- work(ctx, i, it)
			}()
		}
	}()

	var err error
	emitted := 0
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
		emitted++
	}
	wg.Wait()
	if err == nil && emitted < len(items) {
		// The producer stopped early, which only a cancelled ctx makes it do.
		err = ctx.Err()
	}
	return err
}

// Run sends every prompt to the model, judges each reply and emits one
// AttemptRow per prompt in prompt order, whatever opt.Concurrency is.
// Call errors become errored rows; Run itself fails only on bad options, a
// failing emit or ctx ending (then rows not yet emitted are not emitted,
// and a retry of the shard rewrites them).
func Run(ctx context.Context, client *modelapi.Client, t Target, prompts []datasets.PromptRow, opt RunOptions, emit func(AttemptRow) error) error {
	if client == nil {
		return errors.New("redteam: Run needs a modelapi.Client, got nil")
	}
	if emit == nil {
		return errors.New("redteam: Run needs an emit function, got nil")
	}
	opt, err := opt.Normalize()
	if err != nil {
		return err
	}
	var tally Tally
	err = Ordered(ctx, prompts, opt.Concurrency, func(ctx context.Context, _ int, p datasets.PromptRow) AttemptRow {
		c := Call(ctx, client, NewChatRequest(opt, t.SystemPrompt, p.Prompt, p.Seed), opt)
		v := opt.Detectors.Judge(t, p, c.Response, c.Err)
		return NewAttemptRow(opt, p, c, v)
	}, func(r AttemptRow) error {
		tally.Add(r)
		if err := emit(r); err != nil {
			return fmt.Errorf("redteam: emit row for prompt %s: %w", r.PromptID, err)
		}
		return nil
	})
	s := tally.Summary()
	opt.Logger.InfoContext(ctx, "redteam: run finished", "release", opt.ReleaseID, "shard", opt.Shard,
		"prompts", len(prompts), "emitted", s.Total, "breached", s.Overall.Breached,
		"defended", s.Overall.Defended, "errored", s.Overall.Errored, "err", err)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("redteam: run stopped after %d of %d prompts: %w", s.Total, len(prompts), err)
		}
		return err
	}
	return nil
}
