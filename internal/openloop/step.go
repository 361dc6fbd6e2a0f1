package openloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Outcome classifies one request of a Step.
type Outcome int8

const (
	// OK is a 200 answered within the timeout.
	OK Outcome = iota
	// TimedOut is a request not answered within the timeout, counted from
	// its scheduled instant, or a 504 from a gateway on the way.
	TimedOut
	// Failed is a transport error or any other status.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case TimedOut:
		return "timeout"
	}
	return "error"
}

// Request is one request of a Step.
type Request struct {
	// Scheduled is the request's instant, from the step's start.
	Scheduled time.Duration
	// SendLag is how late the generator actually sent it.
	SendLag time.Duration
	// Latency runs from the scheduled instant to the end of the reply (or
	// to the deadline, for a timeout), so a stalled generator or a queue
	// shows up here rather than as a lower rate.
	Latency time.Duration
	// Done is when it ended, from the step's start.
	Done    time.Duration
	Outcome Outcome
	Status  int // 0 without a response
	Err     string
}

// StepOptions is one step of a ramp: POST Body to URL at Rate per second
// for Duration, each request given Timeout from its scheduled instant.
type StepOptions struct {
	URL         string
	Body        []byte
	ContentType string // default application/json
	Rate        float64
	Duration    time.Duration
	Timeout     time.Duration
}

// Step runs one open-loop step and waits for every request to end; the
// requests come back in schedule order. Unlike Run, nothing is dropped as
// warm-up and every request carries its outcome, so a caller can compute
// rates and quantiles its own way and record each request.
func Step(ctx context.Context, c *http.Client, opt StepOptions) ([]Request, error) {
	if opt.Rate <= 0 || opt.Duration <= 0 || opt.Timeout <= 0 {
		return nil, fmt.Errorf("openloop: rate %v, duration %v and timeout %v must be positive", opt.Rate, opt.Duration, opt.Timeout)
	}
	ct := opt.ContentType
	if ct == "" {
		ct = "application/json"
	}
	n := max(1, int(opt.Rate*opt.Duration.Seconds()+0.5))
	interval := time.Duration(float64(time.Second) / opt.Rate)
	out := make([]Request, n)
	var wg sync.WaitGroup
	start := time.Now().Add(5 * time.Millisecond)
	if err := pace(ctx, start, interval, n, func(i int, at time.Time) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = send(ctx, c, opt, ct, start, at)
		}()
	}); err != nil {
		wg.Wait()
		return nil, fmt.Errorf("openloop: step stopped: %w", err)
	}
	wg.Wait()
	return out, ctx.Err()
}

func send(ctx context.Context, c *http.Client, opt StepOptions, ct string, start, at time.Time) Request {
	r := Request{Scheduled: at.Sub(start), SendLag: max(0, time.Since(at))}
	rctx, cancel := context.WithDeadline(ctx, at.Add(opt.Timeout))
	defer cancel()
	err := func() error {
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, opt.URL, bytes.NewReader(opt.Body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ct)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		r.Status = resp.StatusCode
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}()
	end := time.Now()
	r.Latency, r.Done = end.Sub(at), end.Sub(start)
	switch {
	case err == nil:
		r.Outcome = OK
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, r.Status == http.StatusGatewayTimeout,
		ctx.Err() == nil && r.Latency >= opt.Timeout:
		// Not answered within the timeout, whatever error the cut-off
		// surfaced as.
		r.Outcome, r.Err = TimedOut, err.Error()
		if r.Status != http.StatusGatewayTimeout || r.Latency > opt.Timeout {
			// The deadline is the latency we know it exceeded.
			r.Latency, r.Done = opt.Timeout, r.Scheduled+opt.Timeout
		}
	default:
		r.Outcome, r.Err = Failed, err.Error()
	}
	return r
}
