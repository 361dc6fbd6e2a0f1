package modelapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero OIPClient fields.
const (
	DefaultBatchSize    = 256
	DefaultConcurrency  = 4
	DefaultMaxRetries   = 2
	DefaultRetryBackoff = 100 * time.Millisecond
)

// OIPClient calls an Open Inference Protocol v2 REST endpoint (KServe,
// Triton, Seldon MLServer). Set BaseURL and Model; every other zero field
// takes its default. Safe for concurrent use once configured; do not copy
// it after first use.
type OIPClient struct {
	// BaseURL is the server root, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Model is the model name in /v2/models/{Model}; Version, when set,
	// adds /versions/{Version}.
	Model   string
	Version string
	// HTTP nil uses a client with DefaultTimeout that keeps enough idle
	// connections for Concurrency.
	HTTP *http.Client
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// BatchSize is the number of rows per request (0: DefaultBatchSize).
	BatchSize int
	// Concurrency bounds requests in flight (0: DefaultConcurrency).
	Concurrency int
	// MaxRetries is the number of retries of a batch after a retryable
	// failure (0: DefaultMaxRetries; negative: none). Backoff starts at
	// RetryBackoff (0: DefaultRetryBackoff) and doubles.
	MaxRetries   int
	RetryBackoff time.Duration
	// Output is the output tensor to read; "" reads the first output.
	Output string
	// MaxResponseBytes caps one reply (0: MaxResponseBytes).
	MaxResponseBytes int64

	once sync.Once
	hc   *http.Client
}

// Stats counts the work of one Predict call. Retries are included in
// Requests.
type Stats struct {
	Requests int64
	Rows     int64
	Retries  int64
}

func (c *OIPClient) modelURL() string {
	u := strings.TrimRight(c.BaseURL, "/") + "/v2/models/" + url.PathEscape(c.Model)
	if c.Version != "" {
		u += "/versions/" + url.PathEscape(c.Version)
	}
	return u
}

func (c *OIPClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(c.concurrency(), 2)
		c.hc = &http.Client{Timeout: DefaultTimeout, Transport: tr}
	})
	return c.hc
}

func (c *OIPClient) concurrency() int {
	if c.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return c.Concurrency
}

func (c *OIPClient) check() error {
	switch {
	case c.BaseURL == "":
		return errors.New("modelapi: OIPClient.BaseURL is empty; set it to the server root, e.g. http://127.0.0.1:8080")
	case c.Model == "":
		return errors.New("modelapi: OIPClient.Model is empty; set it to the model name the server serves (GET /v2/models/{name})")
	case c.BatchSize < 0:
		return fmt.Errorf("modelapi: OIPClient.BatchSize is %d; use a positive size or 0 for %d", c.BatchSize, DefaultBatchSize)
	}
	return nil
}

// PredictTable scores every row of t, BatchSize rows per request with at
// most Concurrency requests in flight, and returns one output vector per
// row in t's order. The first failing batch (after retries) cancels the
// rest; its error is an *InferError naming the batch's rows, or a context
// error.
func (c *OIPClient) PredictTable(ctx context.Context, t Table) ([][]float64, Stats, error) {
	if err := c.check(); err != nil {
		return nil, Stats{}, err
	}
	if err := t.Validate(); err != nil {
		return nil, Stats{}, fmt.Errorf("modelapi: %w", err)
	}
	return c.run(ctx, t.Len(), func(b []byte, lo, hi int) []byte {
		return appendTableRequest(b, t.Slice(lo, hi), c.Output)
	})
}

// PredictTensor scores a batch of tensors sent as one FP32 input named
// input: shape is [n, d1, d2, ...] and data holds n×d1×d2×… values,
// row-major. It batches along the first dimension like PredictTable.
func (c *OIPClient) PredictTensor(ctx context.Context, input string, shape []int, data []float32) ([][]float64, Stats, error) {
	if err := c.check(); err != nil {
		return nil, Stats{}, err
	}
	if input == "" {
		return nil, Stats{}, errors.New("modelapi: PredictTensor input name is empty; use the model's input name from its metadata")
	}
	if len(shape) == 0 {
		return nil, Stats{}, errors.New("modelapi: PredictTensor shape is empty; want [n, ...]")
	}
	per := 1
	for _, d := range shape[1:] {
		if d <= 0 {
			return nil, Stats{}, fmt.Errorf("modelapi: PredictTensor shape %v has a non-positive dimension", shape)
		}
		per *= d
	}
	if shape[0] < 0 || shape[0]*per != len(data) {
		return nil, Stats{}, fmt.Errorf("modelapi: PredictTensor data has %d values; shape %v needs %d", len(data), shape, shape[0]*per)
	}
	return c.run(ctx, shape[0], func(b []byte, lo, hi int) []byte {
		sub := append([]int(nil), shape...)
		sub[0] = hi - lo
		return appendTensorRequest(b, input, sub, data[lo*per:hi*per], c.Output)
	})
}

// run splits rows 0..n-1 into batches and posts them with bounded
// concurrency, writing each batch's outputs into its slots of the result.
func (c *OIPClient) run(ctx context.Context, n int, encode func(b []byte, lo, hi int) []byte) ([][]float64, Stats, error) {
	out := make([][]float64, n)
	if n == 0 {
		return out, Stats{}, nil
	}
	size := c.BatchSize
	if size == 0 {
		size = DefaultBatchSize
	}
	batches := (n + size - 1) / size
	workers := min(c.concurrency(), batches)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		st       stats
		mu       sync.Mutex
		firstErr error
		errBatch = batches
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			var body bytes.Buffer
			for {
				i := int(next.Add(1) - 1)
				if i >= batches || ctx.Err() != nil {
					return
				}
				lo, hi := i*size, min((i+1)*size, n)
				buf = encode(buf[:0], lo, hi)
				res, err := c.postBatch(ctx, buf, &body, hi-lo, &st)
				if err != nil {
					var ie *InferError
					if errors.As(err, &ie) {
						ie.Rows = [2]int{lo, hi}
					}
					mu.Lock()
					// Prefer the earliest batch's error to whichever
					// goroutine won the race, so failures reproduce.
					// Errors caused by our own cancel rank last.
					better := firstErr == nil ||
						(isCanceled(firstErr) && !isCanceled(err)) ||
						(isCanceled(firstErr) == isCanceled(err) && i < errBatch)
					if better {
						firstErr, errBatch = err, i
					}
					mu.Unlock()
					cancel()
					return
				}
				copy(out[lo:hi], res)
				st.rows.Add(int64(hi - lo))
			}
		}()
	}
	wg.Wait()
	s := st.snapshot()
	if firstErr != nil {
		return nil, s, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, s, fmt.Errorf("modelapi: infer %s: %w", c.modelURL(), err)
	}
	return out, s, nil
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

type stats struct{ requests, rows, retries atomic.Int64 }

func (s *stats) snapshot() Stats {
	return Stats{Requests: s.requests.Load(), Rows: s.rows.Load(), Retries: s.retries.Load()}
}

// postBatch sends one request, retrying retryable failures.
func (c *OIPClient) postBatch(ctx context.Context, req []byte, body *bytes.Buffer, rows int, st *stats) ([][]float64, error) {
	retries := c.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	backoff := c.RetryBackoff
	if backoff <= 0 {
		backoff = DefaultRetryBackoff
	}
	for attempt := 0; ; attempt++ {
		st.requests.Add(1)
		res, err := c.postOnce(ctx, req, body, rows)
		if err == nil {
			return res, nil
		}
		var ie *InferError
		if !errors.As(err, &ie) || !ie.Retryable() || attempt >= retries || ctx.Err() != nil {
			return nil, err
		}
		st.retries.Add(1)
		t := time.NewTimer(backoff << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("modelapi: retry wait: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (c *OIPClient) postOnce(ctx context.Context, req []byte, body *bytes.Buffer, rows int) ([][]float64, error) {
	u := c.modelURL() + "/infer"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("modelapi: build request for %s: %w", u, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("modelapi: infer %s: %w", u, ctx.Err())
		}
		return nil, &InferError{Reason: ReasonTransport, Msg: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, statusError(resp)
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = MaxResponseBytes
	}
	body.Reset()
	if _, err := body.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("modelapi: infer %s: %w", u, ctx.Err())
		}
		return nil, &InferError{Reason: ReasonTransport, Msg: "read reply: " + err.Error(), Err: err}
	}
	if int64(body.Len()) > limit {
		return nil, inferErr(ReasonBodyTooLarge, "reply exceeds %d bytes", limit)
	}
	return ParseInferResponse(body.Bytes(), c.Output, rows)
}

func (c *OIPClient) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return c.client().Do(req)
}

func statusError(resp *http.Response) *InferError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	var eb OIPErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	return &InferError{Reason: ReasonHTTPStatus, Status: resp.StatusCode, Msg: truncate(msg, 300)}
}

// Metadata fetches GET /v2/models/{name}[/versions/{v}].
func (c *OIPClient) Metadata(ctx context.Context) (ModelMetadata, error) {
	if err := c.check(); err != nil {
		return ModelMetadata{}, err
	}
	var m ModelMetadata
	if err := c.getJSON(ctx, c.modelURL(), &m); err != nil {
		return ModelMetadata{}, err
	}
	if m.Name == "" {
		return ModelMetadata{}, inferErr(ReasonInvalidJSON, "model metadata has no name")
	}
	return m, nil
}

// Ready reports GET /v2/models/{name}[/versions/{v}]/ready: true on 200,
// false on any other status (a model still loading answers 503 or 404).
// Errors are transport and context failures only.
func (c *OIPClient) Ready(ctx context.Context) (bool, error) {
	if err := c.check(); err != nil {
		return false, err
	}
	return c.probe(ctx, c.modelURL()+"/ready")
}

// ServerReady reports GET /v2/health/ready like Ready.
func (c *OIPClient) ServerReady(ctx context.Context) (bool, error) {
	if c.BaseURL == "" {
		return false, errors.New("modelapi: OIPClient.BaseURL is empty")
	}
	return c.probe(ctx, strings.TrimRight(c.BaseURL, "/")+"/v2/health/ready")
}

func (c *OIPClient) probe(ctx context.Context, u string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("modelapi: build request for %s: %w", u, err)
	}
	resp, err := c.do(req)
	if err != nil {
		return false, fmt.Errorf("modelapi: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK, nil
}

func (c *OIPClient) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("modelapi: build request for %s: %w", u, err)
	}
	resp, err := c.do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("modelapi: GET %s: %w", u, ctx.Err())
		}
		return &InferError{Reason: ReasonTransport, Msg: err.Error(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
	if err != nil {
		return &InferError{Reason: ReasonTransport, Msg: "read reply: " + err.Error(), Err: err}
	}
	if len(b) > 1<<20 {
		return inferErr(ReasonBodyTooLarge, "metadata reply exceeds 1 MiB")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return inferErr(ReasonInvalidJSON, "metadata: %v", err)
	}
	return nil
}
