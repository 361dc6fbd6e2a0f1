package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sandgate/sandgate/modelapi"
)

// ReplayOptions tunes Replay. The zero value works (defaults noted).
type ReplayOptions struct {
	ReleaseID      string // written to every row
	IncumbentModel string // "model" field sent to the incumbent
	CandidateModel string // "model" field sent to the candidate
	MaxTokens      int
	Temperature    *float64 // nil: server default. Set 0 to make the noise floor tight where the server allows.
	Seed           *int64
	Concurrency    int           // requests in flight; default 4
	Timeout        time.Duration // per model call (each of the three); default 60s
	PromptMaxBytes int           // prompt column truncation; default 2048
	Logger         *slog.Logger  // default: discard
}

func (o ReplayOptions) withDefaults() ReplayOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.PromptMaxBytes <= 0 {
		o.PromptMaxBytes = 2048
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Replay sends every request to the incumbent and, as a mirror, to the
// candidate, then sends it to the incumbent again to measure the noise
// floor, and emits one PairRow per request in request order.
//
// The candidate runs beside the incumbent, never in front of it: the
// incumbent's reply and its repeat do not wait for the candidate, and the
// candidate's output only ever lands in CandidateResponse. Failed calls are
// recorded in the row (status, error) rather than failing the replay; Replay
// returns an error only for invalid input, a cancelled ctx or an emit error.
// At most opt.Concurrency requests are in flight or waiting to be emitted.
func Replay(ctx context.Context, incumbent, candidate *modelapi.Client, reqs []Request, opt ReplayOptions, emit func(PairRow) error) error {
	if incumbent == nil || candidate == nil {
		return errors.New("shadow: replay: incumbent and candidate clients are required")
	}
	if emit == nil {
		return errors.New("shadow: replay: emit is nil; pass a function that stores each row")
	}
	if err := validateRequests(reqs); err != nil {
		return err
	}
	opt = opt.withDefaults()
	r := replayer{inc: incumbent, cand: candidate, opt: opt}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Each in-flight request owns a 1-buffered result channel; the queue
	// holds them in request order. The consumer holding one slot plus
	// Concurrency−1 queued bounds the work in flight to Concurrency.
	queue := make(chan chan PairRow, opt.Concurrency-1)
	var wg sync.WaitGroup
	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		defer close(queue)
		for _, req := range reqs {
			res := make(chan PairRow, 1)
			select {
			case queue <- res:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res <- r.pair(ctx, req)
			}()
		}
	}()

	var err error
	emitted := 0
	for res := range queue {
		row := <-res
		if cerr := parent.Err(); cerr != nil {
			err = fmt.Errorf("shadow: replay cancelled after %d of %d requests: %w", emitted, len(reqs), cerr)
			break
		}
		if eerr := emit(row); eerr != nil {
			err = fmt.Errorf("shadow: replay: emit row %d (request %q): %w", emitted, row.RequestID, eerr)
			break
		}
		emitted++
	}
	cancel()
	<-producerDone
	wg.Wait()
	if err == nil {
		// The producer may have stopped early on cancellation with nothing left to emit.
		if cerr := parent.Err(); cerr != nil && emitted < len(reqs) {
			err = fmt.Errorf("shadow: replay cancelled after %d of %d requests: %w", emitted, len(reqs), cerr)
		}
	}
	if err != nil {
		return err
	}
	opt.Logger.Info("shadow replay done", "release_id", opt.ReleaseID, "requests", emitted)
	return nil
}

func validateRequests(reqs []Request) error {
	var errs []error
	seen := make(map[string]int, len(reqs))
	for i, q := range reqs {
		switch {
		case q.ID == "":
			errs = append(errs, fmt.Errorf("shadow: requests[%d]: id is empty; give every request a unique id", i))
		default:
			if j, dup := seen[q.ID]; dup {
				errs = append(errs, fmt.Errorf("shadow: requests[%d]: id %q duplicates requests[%d]; ids key the result rows and must be unique", i, q.ID, j))
			}
			seen[q.ID] = i
		}
		if len(q.Messages) == 0 {
			errs = append(errs, fmt.Errorf("shadow: requests[%d] (%q): messages is empty; a chat request needs at least one message", i, q.ID))
		}
	}
	return errors.Join(errs...)
}

type replayer struct {
	inc, cand *modelapi.Client
	opt       ReplayOptions
}

type callResult struct {
	content string
	latency time.Duration
	status  string
	err     error
}

func (r replayer) pair(ctx context.Context, req Request) PairRow {
	var cand callResult
	candDone := make(chan struct{})
	go func() {
		defer close(candDone)
		cand = r.call(ctx, r.cand, r.opt.CandidateModel, req.Messages)
	}()
	inc := r.call(ctx, r.inc, r.opt.IncumbentModel, req.Messages)
	rep := callResult{status: StatusSkipped}
	if inc.status == StatusOK {
		rep = r.call(ctx, r.inc, r.opt.IncumbentModel, req.Messages)
	}
	<-candDone

	row := PairRow{
		ReleaseID:                r.opt.ReleaseID,
		RequestID:                req.ID,
		Prompt:                   truncate(promptOf(req.Messages), r.opt.PromptMaxBytes),
		IncumbentResponse:        inc.content,
		CandidateResponse:        cand.content,
		IncumbentRepeatResponse:  rep.content,
		IncumbentLatencyMS:       ms(inc.latency),
		CandidateLatencyMS:       ms(cand.latency),
		IncumbentRepeatLatencyMS: ms(rep.latency),
		IncumbentStatus:          inc.status,
		CandidateStatus:          cand.status,
		IncumbentRepeatStatus:    rep.status,
	}
	if inc.status == StatusOK && cand.status == StatusOK {
		row.ExactMatch = ExactMatch(inc.content, cand.content)
		row.Similarity = JaccardSimilarity(inc.content, cand.content)
		row.RougeL = RougeLF1(cand.content, inc.content)
	}
	if inc.status == StatusOK && rep.status == StatusOK {
		row.NoiseExactMatch = ExactMatch(inc.content, rep.content)
		row.NoiseSimilarity = JaccardSimilarity(inc.content, rep.content)
		row.NoiseRougeL = RougeLF1(rep.content, inc.content)
	}
	var errs []string
	for _, c := range []struct {
		who string
		res callResult
	}{{"incumbent", inc}, {"candidate", cand}, {"incumbent_repeat", rep}} {
		if c.res.err != nil {
			errs = append(errs, c.who+": "+truncate(c.res.err.Error(), 512))
			r.opt.Logger.Debug("shadow call failed", "request_id", req.ID, "model", c.who, "status", c.res.status, "err", c.res.err)
		}
	}
	row.Error = strings.Join(errs, "; ")
	return row
}

func (r replayer) call(ctx context.Context, c *modelapi.Client, model string, msgs []modelapi.Message) callResult {
	cctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Chat(cctx, modelapi.ChatRequest{
		Model:       model,
		Messages:    msgs,
		MaxTokens:   r.opt.MaxTokens,
		Temperature: r.opt.Temperature,
		Seed:        r.opt.Seed,
	})
	res := callResult{latency: time.Since(start), err: err}
	if err == nil {
		res.content, res.status = resp.Content, StatusOK
		return res
	}
	res.status = classify(ctx, cctx, err)
	return res
}

// classify separates the per-call timeout (the model's fault) from the
// replay being cancelled (nobody's fault, and not recorded as a failure).
func classify(parent, call context.Context, err error) string {
	var se *modelapi.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Code)
	case errors.Is(err, modelapi.ErrMalformed):
		return StatusMalformed
	case parent.Err() != nil:
		return StatusCanceled
	case errors.Is(call.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return StatusTimeout
	default:
		return StatusTransport
	}
}

// promptOf picks the last user message: it is what a reader of the Parquet
// wants to see next to the responses; the system prompt is the same on every row.
func promptOf(msgs []modelapi.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return msgs[len(msgs)-1].Content
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
