package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/redteam"
)

// LLMLeakOptions configure CanaryExposure and Extraction, which talk to a
// model's legacy completions endpoint (POST /v1/completions). The zero
// value works.
type LLMLeakOptions struct {
	ReleaseID string // copied into every row
	Model     string // the "model" field of each request
	// Concurrency bounds requests in flight (default 4); BatchSize is the
	// number of prompts per request (default 16), since OpenAI-compatible
	// completions servers accept a prompt array and batch it on the GPU.
	Concurrency int
	BatchSize   int
	// Timeout bounds one request (default 60 s). Retryable failures (429,
	// 5xx, timeouts) are retried MaxRetries times (default 2) with
	// exponential backoff from Backoff (default 500 ms), never sooner than
	// the server's Retry-After.
	Timeout    time.Duration
	MaxRetries int
	Backoff    time.Duration
	Logger     *slog.Logger
}

func (o LLMLeakOptions) normalize() (LLMLeakOptions, error) {
	switch {
	case o.Concurrency < 0:
		return o, fmt.Errorf("LLMLeakOptions.Concurrency is %d; use 0 for the default (4) or a positive number", o.Concurrency)
	case o.BatchSize < 0:
		return o, fmt.Errorf("LLMLeakOptions.BatchSize is %d; use 0 for the default (16) or a positive number", o.BatchSize)
	case o.Timeout < 0 || o.Backoff < 0 || o.MaxRetries < 0:
		return o, fmt.Errorf("LLMLeakOptions: Timeout, Backoff and MaxRetries must not be negative")
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.BatchSize == 0 {
		o.BatchSize = 16
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 2
	}
	if o.Backoff == 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// NotSupportedPrefix starts the reason of every "not supported by the
// endpoint" result, so reports can group them.
const NotSupportedPrefix = "not supported by the endpoint"

// notSupported reports whether err says the endpoint cannot do what was
// asked — no /v1/completions route, or a reply refusing or ignoring echo
// and logprobs — as opposed to a transient or server failure. Such an
// endpoint is reported, not failed: many hosted chat APIs cannot score text.
func notSupported(err error) (string, bool) {
	if errors.Is(err, modelapi.ErrLogprobsUnsupported) {
		return fmt.Sprintf("%s: %v", NotSupportedPrefix, err), true
	}
	var se *modelapi.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusUnprocessableEntity, http.StatusNotImplemented:
			return fmt.Sprintf("%s: /v1/completions refused the request: %v", NotSupportedPrefix, err), true
		}
	}
	return "", false
}

// complete sends one completions request with the retry policy of opt.
func complete(ctx context.Context, client *modelapi.Client, req modelapi.TextCompletionRequest, opt LLMLeakOptions) (modelapi.TextCompletion, error) {
	req.Model = opt.Model
	delay := opt.Backoff
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, opt.Timeout)
		out, err := client.Complete(cctx, req)
		cancel()
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("completions call abandoned: %w", ctx.Err())
		}
		// An endpoint that ignored echo/logprobs will ignore them again.
		if !redteam.Retryable(err) || errors.Is(err, modelapi.ErrLogprobsUnsupported) || try >= opt.MaxRetries {
			return out, err
		}
		wait := delay
		var se *modelapi.StatusError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = se.RetryAfter
		}
		opt.Logger.DebugContext(ctx, "privacy: retrying completions call", "try", try+1, "delay", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, fmt.Errorf("completions call abandoned during backoff (last error: %v): %w", err, ctx.Err())
		case <-t.C:
		}
		delay *= 2
	}
}

// batches cuts n items into [lo, hi) ranges of at most size.
func batches(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}
