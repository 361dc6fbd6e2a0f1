package modelapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sandgate/sandgate/internal/h1"
)

const (
	// DefaultTimeout bounds one call when Client.HTTP is nil: long enough for
	// a slow local model to generate a few hundred tokens, short enough that
	// a hung model fails the attempt instead of the release.
	DefaultTimeout = 120 * time.Second
	// MaxResponseBytes caps a 2xx body; the model under test is adversarial
	// and must not be able to exhaust the harness's memory.
	MaxResponseBytes = 16 << 20
	// maxErrorBody is how much of a non-2xx body StatusError keeps.
	maxErrorBody = 1 << 10
)

// Client calls an OpenAI-compatible chat endpoint. The zero value is not
// usable (BaseURL is required); a zero HTTP uses a client with
// DefaultTimeout. Safe for concurrent use.
type Client struct {
	// BaseURL is the server root, e.g. http://127.0.0.1:8000. A trailing
	// "/v1" (the form OpenAI SDKs use) is accepted too.
	BaseURL string
	HTTP    *http.Client
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// MaxResponseBytes caps a 2xx body; 0 means the package MaxResponseBytes.
	// Red-team runs set it lower (a few hundred KiB) so that a target that
	// streams an endless body fails fast instead of filling memory.
	MaxResponseBytes int64
}

// NewHTTPClient returns an HTTP client for a Client that keeps up to conns
// idle connections to the endpoint. The zero Client's default transport
// keeps only two, so at higher concurrency most calls would dial a new
// connection (and leave one in TIME_WAIT); red-team runs with many calls in
// flight should use this with conns ≥ their concurrency.
func NewHTTPClient(timeout time.Duration, conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = max(conns, 2)
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return &http.Client{Timeout: timeout, Transport: tr}
}

// NewEndpointHTTPClient is NewHTTPClient for calls to the one endpoint at
// baseURL: for plain http (a sandbox relay on loopback, a local server)
// each exchange is written and read on the calling goroutine over a pool
// of up to conns connections (internal/h1), which saves the two goroutine
// hand-offs per call of net/http's transport — at 64 calls in flight on
// two cores those wakeups were a visible share of each attempt's time.
// Other schemes get NewHTTPClient.
func NewEndpointHTTPClient(baseURL string, timeout time.Duration, conns int) (*http.Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("endpoint URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return NewHTTPClient(timeout, conns), nil
	}
	tr := &h1.Transport{Dial: h1.DialHost(u, 30*time.Second), MaxIdle: max(conns, 2)}
	return &http.Client{Timeout: timeout, Transport: hostOnly{addr: u.Host, rt: tr}}, nil
}

// hostOnly refuses requests to any other host than the one its transport
// dials, which would otherwise silently go to the wrong server.
type hostOnly struct {
	addr string
	rt   http.RoundTripper
}

func (h hostOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != h.addr || req.URL.Scheme != "http" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("this client only reaches http://%s, not %s://%s", h.addr, req.URL.Scheme, req.URL.Host)
	}
	return h.rt.RoundTrip(req)
}

// StatusError is a non-2xx response. Body holds at most 1 KiB of it.
type StatusError struct {
	Code int
	Body string
	// RetryAfter is the server's Retry-After header (delta-seconds or an
	// HTTP date), 0 when absent or unparseable.
	RetryAfter time.Duration
}

// maxRetryAfter caps what a server may ask us to wait: a hostile or broken
// endpoint must not park a worker for hours.
const maxRetryAfter = 10 * time.Minute

// ParseRetryAfter reads a Retry-After header value relative to now: a
// non-negative number of seconds or an HTTP date. It returns 0 when the
// value is empty or invalid, and caps the wait at 10 minutes.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

func (e *StatusError) Error() string {
	msg := strings.TrimSpace(e.Body)
	var eb ErrorBody
	if json.Unmarshal([]byte(e.Body), &eb) == nil && eb.Error.Message != "" {
		msg = eb.Error.Message
	}
	if msg == "" {
		return fmt.Sprintf("model endpoint returned HTTP %d", e.Code)
	}
	return fmt.Sprintf("model endpoint returned HTTP %d: %s", e.Code, msg)
}

// Retryable reports whether the status is one a retry can fix (rate
// limiting, server errors); a 4xx is a bad request and will not change.
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout || e.Code >= 500
}

// Endpoint is the URL Chat posts to.
func (c *Client) Endpoint() string { return c.v1("chat/completions") }

// v1 is BaseURL + "/v1/" + path, whether or not BaseURL already ends in /v1.
func (c *Client) v1(path string) string {
	base := strings.TrimRight(c.BaseURL, "/")
	if strings.HasSuffix(base, "/v1") {
		return base + "/" + path
	}
	return base + "/v1/" + path
}

// Chat sends one chat completion request and returns the first choice.
// Errors: *StatusError for a non-2xx status; ErrMalformed (wrapped) for a
// 2xx body that is not a chat completion; transport and context errors
// wrapped as they come (errors.Is(err, context.DeadlineExceeded) works).
func (c *Client) Chat(ctx context.Context, req ChatRequest) (ChatResponse, error) {
	if c.BaseURL == "" {
		return ChatResponse{}, errors.New("modelapi: Client.BaseURL is empty; set it to the server root, e.g. http://127.0.0.1:8000")
	}
	if len(req.Messages) == 0 {
		return ChatResponse{}, errors.New("modelapi: ChatRequest.Messages is empty; add at least one user message")
	}
	if req.MaxTokens < 0 {
		return ChatResponse{}, fmt.Errorf("modelapi: ChatRequest.MaxTokens is negative (%d); use 0 for the server default", req.MaxTokens)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return ChatResponse{}, fmt.Errorf("modelapi: encode request: %w", err)
	}
	url := c.Endpoint()
	b, err := c.post(ctx, url, body)
	if err != nil {
		return ChatResponse{}, err
	}
	out, err := ParseCompletion(b)
	if err != nil {
		return ChatResponse{}, fmt.Errorf("modelapi: response from %s: %w", url, err)
	}
	return out, nil
}
