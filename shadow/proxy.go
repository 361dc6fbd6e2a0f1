package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandgate/sandgate/internal/bufpool"
	"github.com/sandgate/sandgate/internal/h1"
)

// ProxyConfig configures a mirroring Proxy. Incumbent and Candidate are
// required; every other zero value means the default noted beside it.
type ProxyConfig struct {
	// Incumbent serves every client; its reply is the only one clients see.
	Incumbent *url.URL
	// Candidate receives sampled mirrors; its reply is recorded and discarded.
	Candidate *url.URL

	// SampleRate is the share of mirrorable requests copied to the
	// candidate, in [0, 1]. 0 mirrors nothing (a plain reverse proxy).
	SampleRate float64
	// RequestIDHeader names the header whose value decides sampling (a
	// hash of it, so one request id is sampled the same way on every
	// proxy replica) and becomes the row's request_id. Requests without it
	// are sampled by an arrival counter. Default "X-Request-Id".
	RequestIDHeader string

	// QueueSize bounds mirrors waiting for a worker; a full queue drops the
	// mirror (counted) instead of making the client wait. Default 1024.
	QueueSize int
	// Workers is how many mirrors are in flight to the candidate. Default 16.
	Workers int
	// MirrorTimeout bounds one candidate exchange, body included. Default 30s.
	MirrorTimeout time.Duration

	// MaxMirrorBody is the largest request body mirrored. Bigger bodies are
	// still proxied to the incumbent untouched but counted as
	// skipped_too_large: a truncated JSON body would only make the
	// candidate fail. Default 8 MiB.
	MaxMirrorBody int64
	// MaxCaptureBytes caps how much of each reply (incumbent and candidate)
	// is kept for the record; the client still gets the whole incumbent
	// reply. Default 1 MiB.
	MaxCaptureBytes int64

	// ForwardCredentials lists headers (case-insensitive) that are copied
	// to the candidate although they look like credentials. By default
	// every credential-like header is stripped (see isCredentialHeader):
	// the candidate is untrusted and must not be able to replay a user's
	// token elsewhere.
	ForwardCredentials []string
	// CandidateHeader is set on every mirrored request after stripping,
	// e.g. the candidate's own Authorization.
	CandidateHeader http.Header

	// Recorder receives one row per mirrored request; nil records nothing.
	Recorder RowSink
	// ReleaseID is written to every row.
	ReleaseID string
	Logger    *slog.Logger // default: discard

	// IncumbentTransport and CandidateTransport default to separate
	// keep-alive transports, so a candidate exhausting its connections can
	// never take one from the primary path.
	IncumbentTransport http.RoundTripper
	CandidateTransport http.RoundTripper
}

// RowSink stores recorded pairs. Add is called from mirror workers, never
// from the client's path; if it blocks, the mirror queue fills and later
// mirrors are dropped and counted.
type RowSink interface {
	Add(ctx context.Context, row ProxyPairRow) error
}

func (c ProxyConfig) withDefaults() ProxyConfig {
	if c.RequestIDHeader == "" {
		c.RequestIDHeader = "X-Request-Id"
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.MirrorTimeout <= 0 {
		c.MirrorTimeout = 30 * time.Second
	}
	if c.MaxMirrorBody <= 0 {
		c.MaxMirrorBody = 8 << 20
	}
	if c.MaxCaptureBytes <= 0 {
		c.MaxCaptureBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c ProxyConfig) validate() error {
	var errs []error
	checkURL := func(name string, u *url.URL) {
		switch {
		case u == nil:
			errs = append(errs, fmt.Errorf("shadow: proxy: %s URL is missing; give the model server root, e.g. http://127.0.0.1:8000", name))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("shadow: proxy: %s URL %q: scheme must be http or https", name, u))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("shadow: proxy: %s URL %q has no host", name, u))
		}
	}
	checkURL("incumbent", c.Incumbent)
	checkURL("candidate", c.Candidate)
	if math.IsNaN(c.SampleRate) || c.SampleRate < 0 || c.SampleRate > 1 {
		errs = append(errs, fmt.Errorf("shadow: proxy: sample rate %v: must be between 0 and 1 (0.1 mirrors 10%% of requests)", c.SampleRate))
	}
	return errors.Join(errs...)
}

// ProxyStats are the proxy's counters. Fields are atomics so the hot path
// never takes a lock; String makes *ProxyStats an expvar.Var, so a caller
// can publish it without the proxy touching expvar's global registry.
type ProxyStats struct {
	Requests         atomic.Int64 // every request proxied to the incumbent
	Sampled          atomic.Int64 // mirrorable requests chosen by sampling
	Mirrored         atomic.Int64 // mirrors sent to the candidate (whatever the outcome)
	DroppedQueueFull atomic.Int64 // sampled but dropped: the queue was full
	SkippedTooLarge  atomic.Int64 // sampled but the body exceeded MaxMirrorBody
	CandidateErrors  atomic.Int64 // candidate transport error, timeout or non-2xx
	IncumbentErrors  atomic.Int64 // incumbent transport error or non-2xx (proxied as is)
	Recorded         atomic.Int64 // rows handed to the recorder
	RecordErrors     atomic.Int64 // rows the recorder refused
	DroppedClosed    atomic.Int64 // sampled while the proxy was shutting down
	SkippedBadBody   atomic.Int64 // sampled but the client's upload failed mid-body
}

// StatsSnapshot is a point-in-time copy of ProxyStats, the JSON served on
// /debug/shadow.
type StatsSnapshot struct {
	Requests         int64 `json:"requests"`
	Sampled          int64 `json:"sampled"`
	Mirrored         int64 `json:"mirrored"`
	DroppedQueueFull int64 `json:"dropped_queue_full"`
	SkippedTooLarge  int64 `json:"skipped_too_large"`
	CandidateErrors  int64 `json:"candidate_errors"`
	IncumbentErrors  int64 `json:"incumbent_errors"`
	Recorded         int64 `json:"recorded"`
	RecordErrors     int64 `json:"record_errors"`
	DroppedClosed    int64 `json:"dropped_closed"`
	SkippedBadBody   int64 `json:"skipped_bad_body"`
	QueueLen         int   `json:"queue_len"`
	QueueCap         int   `json:"queue_cap"`
}

// Snapshot reads every counter once.
func (s *ProxyStats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Requests:         s.Requests.Load(),
		Sampled:          s.Sampled.Load(),
		Mirrored:         s.Mirrored.Load(),
		DroppedQueueFull: s.DroppedQueueFull.Load(),
		SkippedTooLarge:  s.SkippedTooLarge.Load(),
		CandidateErrors:  s.CandidateErrors.Load(),
		IncumbentErrors:  s.IncumbentErrors.Load(),
		Recorded:         s.Recorded.Load(),
		RecordErrors:     s.RecordErrors.Load(),
		DroppedClosed:    s.DroppedClosed.Load(),
		SkippedBadBody:   s.SkippedBadBody.Load(),
	}
}

// String implements expvar.Var.
func (s *ProxyStats) String() string {
	b, _ := json.Marshal(s.Snapshot())
	return string(b)
}

// Proxy is a reverse proxy in front of the incumbent that mirrors a sample
// of inference requests to the candidate. The client's request never waits
// on the mirror: sampling, the bounded queue and the hand-off are
// non-blocking, and the candidate is called by separate workers after the
// incumbent's reply has been delivered.
type Proxy struct {
	cfg     ProxyConfig
	rp      *httputil.ReverseProxy
	bufs    *bufpool.Pool
	candRT  http.RoundTripper
	stats   ProxyStats
	counter atomic.Uint64 // arrival counter for sampling without a request id
	seq     atomic.Int64  // numbers rows in arrival order

	mu     sync.RWMutex // guards closed against a send on the closed queue
	closed bool
	queue  chan *mirrorJob

	workCtx    context.Context // parent of candidate calls; cancelled by Close
	cancelWork context.CancelFunc
	workers    sync.WaitGroup
}

// NewProxy validates cfg and starts the mirror workers. Call Close to stop them.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Proxy{cfg: cfg, queue: make(chan *mirrorJob, cfg.QueueSize)}
	incRT := cfg.IncumbentTransport
	if incRT == nil {
		incRT = incumbentTransport(cfg.Incumbent)
	}
	p.candRT = cfg.CandidateTransport
	if p.candRT == nil {
		// At most one connection per worker: a hanging candidate cannot
		// make the proxy open sockets without bound.
		p.candRT = newTransport(cfg.Workers)
	}
	inc := cfg.Incumbent
	p.bufs = &bufpool.Pool{}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(inc)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: incRT,
		// -1 flushes after every write: SSE tokens reach the client as the
		// incumbent produces them, not when a buffer fills.
		FlushInterval:  -1,
		ModifyResponse: p.captureResponse,
		BufferPool:     p.bufs,
		ErrorHandler:   p.incumbentError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	p.workCtx, p.cancelWork = context.WithCancel(context.Background())
	for range cfg.Workers {
		p.workers.Add(1)
		go p.worker()
	}
	return p, nil
}

// incumbentTransport reads and writes each live exchange on the proxy
// handler's own goroutine when the incumbent speaks plain HTTP/1.1 (see
// internal/h1: net/http's transport costs two goroutine hand-offs per
// exchange, which showed in the live path's latency); TLS incumbents get
// net/http's transport.
func incumbentTransport(inc *url.URL) http.RoundTripper {
	if inc.Scheme != "http" {
		return newTransport(0)
	}
	return &h1.Transport{
		Dial:        h1.DialHost(inc, 5*time.Second),
		MaxIdle:     1024,
		IdleTimeout: 90 * time.Second,
	}
}

func newTransport(maxConns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // never route model traffic through an environment proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// Stats returns the live counters.
func (p *Proxy) Stats() *ProxyStats { return &p.stats }

// Snapshot returns the counters plus the queue's current length.
func (p *Proxy) Snapshot() StatsSnapshot {
	s := p.stats.Snapshot()
	s.QueueLen, s.QueueCap = len(p.queue), cap(p.queue)
	return s
}

// AdminHandler serves GET /debug/shadow (the counters as JSON). Serve it on
// a separate listener from the proxy so clients cannot reach it.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/shadow", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Snapshot())
	})
	return mux
}

// Close stops accepting mirrors, lets the workers finish the queued ones
// until ctx is done, then cancels what is still in flight. The proxy keeps
// serving the incumbent path afterwards (mirrors are counted as
// dropped_closed), so close the HTTP server first.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.workers.Wait(); close(done) }()
	select {
	case <-done:
		p.cancelWork()
		return nil
	case <-ctx.Done():
		p.cancelWork()
		<-done
		return fmt.Errorf("shadow: proxy close: %d mirrors abandoned: %w", len(p.queue), ctx.Err())
	}
}

// API kinds in ProxyPairRow.API.
const (
	APIOpenAIChat = "openai_chat"
	APIOIPInfer   = "oip_v2_infer"
)

// apiOf says which requests are inference calls worth mirroring; health
// checks and model listings are proxied but never mirrored.
func apiOf(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		return APIOpenAIChat
	case strings.HasPrefix(p, "/v2/models/") && strings.HasSuffix(p, "/infer"):
		return APIOIPInfer
	}
	return ""
}

// mirrorJob carries one sampled request from the client's goroutine to a
// worker. The client's goroutine writes it until enqueue; the worker owns it after.
type mirrorJob struct {
	seq        int64
	requestID  string
	api        string
	received   time.Time
	method     string
	uri        string // path and query
	header     http.Header
	body       []byte
	incStart   time.Time
	incTTFB    time.Duration
	incLatency time.Duration
	incCode    int
	incStatus  string
	incErr     string
	incBody    capture
}

type ctxKey struct{}

// ServeHTTP proxies r to the incumbent and, if r is sampled, queues a mirror.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.stats.Requests.Add(1)
	api := apiOf(r)
	if api == "" || !p.sample(r) {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.stats.Sampled.Add(1)
	// With the queue already full this mirror would be dropped at the end
	// anyway: drop it now, before copying headers and bodies, so a slow
	// candidate does not also cost the live path allocations (and GC).
	if len(p.queue) == cap(p.queue) {
		p.stats.DroppedQueueFull.Add(1)
		p.rp.ServeHTTP(w, r)
		return
	}

	job := &mirrorJob{
		seq:       n,
		requestID: r.Header.Get(p.cfg.RequestIDHeader),
		api:       api,
		received:  time.Now(),
		method:    r.Method,
		uri:       r.URL.RequestURI(),
		header:    r.Header.Clone(),
	}
	if job.requestID == "" {
		job.requestID = "seq-" + strconv.FormatInt(n, 10)
	}
	job.incBody.limit = p.cfg.MaxCaptureBytes

	// Read the body up to the mirror limit; an oversized one is handed to
	// the incumbent as read-so-far + rest, so the client's request is
	// forwarded intact whatever happens to the mirror.
	tooLarge := r.ContentLength > p.cfg.MaxMirrorBody
	if !tooLarge && r.Body != nil && r.Body != http.NoBody {
		buf, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.MaxMirrorBody+1))
		switch {
		case err != nil:
			// The client's upload broke; forward what we have and let the
			// incumbent answer it, but a partial body is not worth mirroring.
			r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			p.stats.SkippedBadBody.Add(1)
			p.rp.ServeHTTP(w, r)
			return
		case int64(len(buf)) > p.cfg.MaxMirrorBody:
			tooLarge = true
			r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		default:
			job.body = buf
			r.Body = io.NopCloser(bytes.NewReader(buf))
			r.ContentLength = int64(len(buf))
		}
	}
	if tooLarge {
		p.stats.SkippedTooLarge.Add(1)
		p.cfg.Logger.Debug("shadow: body too large to mirror", "request_id", job.requestID, "limit", p.cfg.MaxMirrorBody)
		p.rp.ServeHTTP(w, r)
		return
	}

	job.incStart = time.Now()
	defer func() {
		// ReverseProxy aborts the handler with a panic when the copy to the
		// client fails (client gone); the mirror is still owed a record.
		if rec := recover(); rec != nil {
			job.incLatency = time.Since(job.incStart)
			job.incStatus = StatusCanceled
			if job.incErr == "" {
				job.incErr = fmt.Sprint("copy to client aborted: ", rec)
			}
			p.enqueue(job)
			panic(rec)
		}
	}()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, job)))
	job.incLatency = time.Since(job.incStart)
	if job.incStatus == "" {
		job.incStatus = StatusOK
		if job.incBody.err != nil {
			// The copy to the client broke off (client gone or incumbent reset).
			job.incStatus, job.incErr = StatusTransport, job.incBody.err.Error()
			if r.Context().Err() != nil {
				job.incStatus = StatusCanceled
			}
		}
	}
	p.enqueue(job)
}

// sample decides deterministically: by a hash of the request id when there
// is one (stable across retries and replicas), else by an arrival counter,
// which picks exactly ⌊n·rate⌋ of the first n requests.
func (p *Proxy) sample(r *http.Request) bool {
	rate := p.cfg.SampleRate
	if rate <= 0 {
		return false
	}
	if rate >= 1 {
		return true
	}
	if id := r.Header.Get(p.cfg.RequestIDHeader); id != "" {
		h := fnv.New64a()
		_, _ = io.WriteString(h, id)
		return float64(mix64(h.Sum64())) < rate*math.MaxUint64
	}
	n := p.counter.Add(1)
	return math.Floor(float64(n)*rate) != math.Floor(float64(n-1)*rate)
}

// mix64 is the SplitMix64 finaliser: FNV's high bits barely change between
// ids like "id-1", "id-2", so without it the share sampled is far from rate.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (p *Proxy) enqueue(job *mirrorJob) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.stats.DroppedClosed.Add(1)
		return
	}
	select {
	case p.queue <- job:
	default:
		p.stats.DroppedQueueFull.Add(1)
	}
}

// captureResponse runs when the incumbent's headers arrive; it tees the
// body into the job's capture as the reverse proxy copies it to the client.
func (p *Proxy) captureResponse(resp *http.Response) error {
	job, _ := resp.Request.Context().Value(ctxKey{}).(*mirrorJob)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p.stats.IncumbentErrors.Add(1)
	}
	if job == nil {
		return nil
	}
	job.incTTFB = time.Since(job.incStart)
	job.incCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		job.incStatus = "http_" + strconv.Itoa(resp.StatusCode)
	}
	resp.Body = &teeBody{rc: resp.Body, c: &job.incBody}
	return nil
}

func (p *Proxy) incumbentError(w http.ResponseWriter, r *http.Request, err error) {
	p.stats.IncumbentErrors.Add(1)
	if job, ok := r.Context().Value(ctxKey{}).(*mirrorJob); ok {
		job.incStatus, job.incErr = StatusTransport, err.Error()
		if r.Context().Err() != nil {
			job.incStatus = StatusCanceled
		}
	}
	p.cfg.Logger.Warn("shadow: incumbent unreachable", "path", r.URL.Path, "err", err)
	w.WriteHeader(http.StatusBadGateway)
}

// capture keeps the first limit bytes written to it and counts the rest.
type capture struct {
	limit     int64
	buf       bytes.Buffer
	total     int64
	truncated bool
	err       error // first read error other than EOF
}

func (c *capture) Write(b []byte) {
	c.total += int64(len(b))
	room := c.limit - int64(c.buf.Len())
	if room <= 0 {
		c.truncated = c.truncated || len(b) > 0
		return
	}
	if int64(len(b)) > room {
		b, c.truncated = b[:room], true
	}
	c.buf.Write(b)
}

type teeBody struct {
	rc io.ReadCloser
	c  *capture
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	t.c.Write(b[:n])
	if err != nil && err != io.EOF && t.c.err == nil {
		t.c.err = err
	}
	return n, err
}

func (t *teeBody) Close() error { return t.rc.Close() }

type readCloser struct {
	io.Reader
	io.Closer
}
