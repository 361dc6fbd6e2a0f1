package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/valyala/fasthttp"

	"github.com/sandgate/sandgate/internal/bufpool"
	"github.com/sandgate/sandgate/internal/h1"
)

// RelayOptions set the relay's budgets and simulated network. Zero values mean
// "unlimited" / "none", except RequestTimeout and TranscriptSize which get
// defaults.
type RelayOptions struct {
	// MaxRequests is how many requests are forwarded; later ones get 429.
	MaxRequests int64
	// MaxBytes bounds request plus response body bytes. It is checked when a
	// request is admitted, so one in-flight exchange may overshoot it.
	MaxBytes int64
	// MaxTokens bounds the tokens the model reports in OpenAI-style "usage"
	// objects of its replies (total_tokens, else prompt+completion or
	// input+output); checked on admission like MaxBytes.
	MaxTokens int64
	// RequestTimeout bounds one exchange including injected latency
	// (default 2m); past it the client gets 504.
	RequestTimeout time.Duration
	// Latency is a fixed delay added before every forwarded request, on top
	// of Network's.
	Latency time.Duration
	// Network simulates a slower link than loopback (the kernel here has no
	// netem): see NetProfile and LookupProfile.
	Network NetProfile
	// Seed makes the injected delays reproducible (0 is a valid seed).
	Seed uint64
	// TranscriptSize is how many recent exchanges are kept (default 1024).
	TranscriptSize int
	// TranscriptBodyBytes is how much of each request and response body the
	// transcript keeps, for replay (default 4096; -1 keeps none).
	TranscriptBodyBytes int
}

// RelayStats are the relay's counters since it started.
type RelayStats struct {
	Requests int64 `json:"requests"` // forwarded to the model
	Rejected int64 `json:"rejected"` // refused for a budget
	Errors   int64 `json:"errors"`   // relay/transport failures and upstream 5xx
	BytesIn  int64 `json:"bytes_in"` // request bodies sent to the model
	BytesOut int64 `json:"bytes_out"`
	Tokens   int64 `json:"tokens"` // from the replies' usage objects
}

// Exchange summarises one request through the relay.
type Exchange struct {
	// Seq numbers exchanges from 1 in arrival order, refusals included.
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Query       string    `json:"query,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Status      int       `json:"status"`
	// Latency is the whole exchange as the harness saw it, InjectedDelay
	// included.
	Latency       time.Duration `json:"latency"`
	InjectedDelay time.Duration `json:"injected_delay,omitempty"`
	BytesIn       int64         `json:"bytes_in"`
	BytesOut      int64         `json:"bytes_out"`
	Tokens        int64         `json:"tokens,omitempty"`
	Err           string        `json:"err,omitempty"`
	// Request and Response are the first TranscriptBodyBytes of each body;
	// the *Truncated flags say whether more was sent.
	Request           string `json:"request,omitempty"`
	RequestTruncated  bool   `json:"request_truncated,omitempty"`
	Response          string `json:"response,omitempty"`
	ResponseTruncated bool   `json:"response_truncated,omitempty"`
}

// Upstream is where a relay forwards to: a dialer for a stream that reaches
// the model, and the Host the model expects to see.
type Upstream struct {
	Host string
	Dial func(ctx context.Context) (net.Conn, error)
}

// Relay is the only way into a sandbox: an HTTP reverse proxy on host
// loopback that enforces budgets, injects latency and records a transcript.
// One per sandbox; safe for concurrent use.
type Relay struct {
	opt  RelayOptions
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	tr   *h1.Transport
	bufs *bufpool.Pool
	// The plain path (no simulated network) is served by fsrv, the other by
	// srv; see relay_fast.go.
	fsrv       *fasthttp.Server
	upHost     string
	base       context.Context // parent of every upstream exchange; ended by Close
	cancelBase context.CancelFunc
	proxy      *httputil.ReverseProxy
	url        string

	delay    *delaySampler
	upLink   *rate.Limiter // request bodies; nil when unlimited
	downLink *rate.Limiter // response bodies
	bodyCap  int

	mu         sync.Mutex
	stats      RelayStats
	seq        int64
	onBreach   func(budget string)
	breached   bool
	transcript []Exchange // ring buffer
	next       int
	full       bool
	closeOnce  sync.Once
	closeErr   error
	serveDone  chan struct{}
}

// NewRelay listens on an ephemeral port on 127.0.0.1 and forwards to up.
func NewRelay(opt RelayOptions, up Upstream, log *slog.Logger) (*Relay, error) {
	if up.Dial == nil {
		return nil, errors.New("relay: Upstream.Dial is nil")
	}
	if opt.MaxRequests < 0 || opt.MaxBytes < 0 || opt.MaxTokens < 0 || opt.Latency < 0 || opt.RequestTimeout < 0 {
		return nil, fmt.Errorf("relay: budgets (MaxRequests, MaxBytes, MaxTokens), Latency and RequestTimeout must not be negative, use 0 for none (got %+v)", opt)
	}
	if err := opt.Network.Validate(); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	switch {
	case opt.TranscriptBodyBytes == 0:
		opt.TranscriptBodyBytes = 4096
	case opt.TranscriptBodyBytes < 0:
		opt.TranscriptBodyBytes = 0
	}
	if opt.RequestTimeout == 0 {
		opt.RequestTimeout = 2 * time.Minute
	}
	if opt.TranscriptSize <= 0 {
		opt.TranscriptSize = 1024
	}
	if up.Host == "" {
		up.Host = "sandbox"
	}
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay: listen on host loopback: %w", err)
	}
	r := &Relay{
		opt:        opt,
		log:        log,
		ln:         ln,
		url:        "http://" + ln.Addr().String(),
		transcript: make([]Exchange, opt.TranscriptSize),
		serveDone:  make(chan struct{}),
		delay:      newDelaySampler(opt.Network, opt.Latency, opt.Seed),
		bodyCap:    opt.TranscriptBodyBytes,
	}
	if bps := opt.Network.BytesPerSecond; bps > 0 {
		r.upLink, r.downLink = newLink(bps), newLink(bps)
	}
	// Every exchange goes to the one model, whatever the URL says, written
	// and read on the handler's own goroutine (see internal/h1 for why).
	// Enough idle streams for a burst at 1,000 req/s: each new one costs a
	// dial through the shim into the sandbox.
	r.tr = &h1.Transport{Dial: up.Dial, MaxIdle: 128, IdleTimeout: 30 * time.Second}
	r.bufs = &bufpool.Pool{}
	r.upHost = up.Host
	r.base, r.cancelBase = context.WithCancel(context.Background())
	target := &url.URL{Scheme: "http", Host: up.Host}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = up.Host
		},
		Transport: r.tr,
		// Without a pool every exchange allocates a 32 KiB copy buffer,
		// most of the relay's garbage, and the collections that follow are
		// the relay's tail latency.
		BufferPool: r.bufs,
		// Zero: ReverseProxy already flushes each write of a streamed
		// reply (text/event-stream, or no Content-Length), so tokens still
		// arrive as produced; a plain JSON reply goes out in one write
		// instead of a flush per write (measured in bench/sandbox).
		FlushInterval: 0,
		ErrorHandler:  r.proxyError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if opt.plain() {
		r.fsrv = r.newFastServer()
	}
	go func() {
		defer close(r.serveDone)
		var err error
		if r.fsrv != nil {
			err = r.fsrv.Serve(ln)
		} else {
			err = r.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("relay stopped serving", "err", err)
		}
	}()
	return r, nil
}

// plain reports whether no network is simulated: no injected delay and no
// bandwidth limit.
func (o RelayOptions) plain() bool {
	n := o.Network
	return o.Latency == 0 && n.Latency == 0 && n.Jitter == 0 && n.BytesPerSecond == 0
}

// URL is the relay's base URL, http://127.0.0.1:port.
func (r *Relay) URL() string { return r.url }

// Stats returns the counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Transcript returns the most recent exchanges, oldest first.
func (r *Relay) Transcript() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Exchange(nil), r.transcript[:r.next]...)
	}
	out := make([]Exchange, 0, len(r.transcript))
	out = append(out, r.transcript[r.next:]...)
	return append(out, r.transcript[:r.next]...)
}

// Close stops accepting, drops open connections and idle upstream streams.
// It is idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.cancelBase() // ends exchanges in flight, streams included
		var err error
		if r.fsrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = r.fsrv.ShutdownWithContext(ctx)
			cancel()
			// Shutdown closes only the listeners Serve has registered: a
			// relay closed right after NewRelay, before its Serve goroutine
			// got that far, would otherwise accept forever.
			if cerr := r.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
				err = cerr
			}
		} else {
			err = r.srv.Close()
		}
		<-r.serveDone
		r.tr.CloseIdleConnections()
		if err != nil {
			r.closeErr = fmt.Errorf("relay: close: %w", err)
		}
	})
	return r.closeErr
}

type ctxKey struct{}

// exchangeState travels with a request so the proxy's error handler can
// record what went wrong.
type exchangeState struct {
	err error
}

// setOnBreach registers f to run once, the first time a budget refuses a
// request (the sandbox snapshots itself then).
func (r *Relay) setOnBreach(f func(budget string)) {
	r.mu.Lock()
	r.onBreach = f
	r.mu.Unlock()
}

func (r *Relay) admit() (seq int64, budget string, limit, used int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	seq = r.seq
	switch {
	case r.opt.MaxRequests > 0 && r.stats.Requests >= r.opt.MaxRequests:
		budget, limit, used = "requests", r.opt.MaxRequests, r.stats.Requests
	case r.opt.MaxBytes > 0 && r.stats.BytesIn+r.stats.BytesOut >= r.opt.MaxBytes:
		budget, limit, used = "bytes", r.opt.MaxBytes, r.stats.BytesIn+r.stats.BytesOut
	case r.opt.MaxTokens > 0 && r.stats.Tokens >= r.opt.MaxTokens:
		budget, limit, used = "tokens", r.opt.MaxTokens, r.stats.Tokens
	default:
		r.stats.Requests++
		return seq, "", 0, 0, true
	}
	r.stats.Rejected++
	if !r.breached && r.onBreach != nil {
		r.breached = true
		// Off the request path: the callback freezes the sandbox.
		go r.onBreach(budget)
	}
	return seq, budget, limit, used, false
}

func (r *Relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	ex := Exchange{Time: start, Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, ContentType: req.Header.Get("Content-Type")}
	errored := false
	var body *countingReader
	cw := &countingWriter{ResponseWriter: w, head: newHeadTail(r.bodyCap)}
	defer func() {
		ex.Latency = time.Since(start)
		if body != nil {
			ex.Request, ex.RequestTruncated = body.head.headString()
		}
		ex.Response, ex.ResponseTruncated = cw.head.headString()
		r.book(ex, errored)
	}()
	if req.Body != nil && req.Body != http.NoBody {
		// A model may stream its reply while the request is still arriving
		// (more so when the upload is paced); without full duplex the
		// server would close the request body at the reply's first flush.
		_ = http.NewResponseController(w).EnableFullDuplex()
		body = &countingReader{r: req.Body, head: newHeadTail(r.bodyCap), link: r.upLink, ctx: req.Context()}
	}

	seq, budget, limit, used, ok := r.admit()
	ex.Seq = seq
	if !ok {
		ex.Status = http.StatusTooManyRequests
		ex.Err = budget + " budget exhausted"
		if body != nil {
			// Keep what the refused request asked, for replay.
			_, _ = io.Copy(io.Discard, io.LimitReader(body, int64(r.bodyCap)))
		}
		writeJSONError(w, http.StatusTooManyRequests, map[string]any{
			"type":    "budget_exceeded",
			"budget":  budget,
			"limit":   limit,
			"used":    used,
			"message": fmt.Sprintf("sandbox relay: %s budget of %d exhausted (%d used)", budget, limit, used),
		})
		return
	}

	ctx, cancel := context.WithTimeout(req.Context(), r.opt.RequestTimeout)
	defer cancel()
	if d := r.delay.next(); d > 0 {
		ex.InjectedDelay = d
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			ex.Status, ex.Err = http.StatusGatewayTimeout, "timed out during injected latency"
			errored = true
			writeJSONError(w, ex.Status, map[string]any{"type": "timeout", "message": "sandbox relay: " + ex.Err})
			return
		}
	}

	st := &exchangeState{}
	ctx = context.WithValue(ctx, ctxKey{}, st)
	out := req.WithContext(ctx)
	if body != nil {
		body.ctx = ctx
		out.Body = body
	}
	cw.link, cw.ctx = r.downLink, ctx
	r.proxy.ServeHTTP(cw, out)

	ex.Status = cw.status
	if ex.Status == 0 {
		ex.Status = http.StatusOK
	}
	ex.BytesOut = cw.n
	if body != nil {
		ex.BytesIn = body.n.Load()
	}
	ex.Tokens = usageTokens(cw.head)
	if st.err != nil {
		ex.Err = st.err.Error()
	}
	errored = ex.Status >= 500 || st.err != nil
}

func (r *Relay) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	if st, ok := req.Context().Value(ctxKey{}).(*exchangeState); ok {
		st.err = err
	}
	status, kind := http.StatusBadGateway, "upstream_unreachable"
	if errors.Is(err, context.DeadlineExceeded) {
		status, kind = http.StatusGatewayTimeout, "timeout"
	}
	r.log.Debug("relay upstream error", "path", req.URL.Path, "err", err)
	writeJSONError(w, status, map[string]any{"type": kind, "message": "sandbox relay: " + err.Error()})
}

// book adds a finished exchange to the counters and the transcript in one
// step, so readers never see one without the other.
func (r *Relay) book(ex Exchange, errored bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.BytesIn += ex.BytesIn
	r.stats.BytesOut += ex.BytesOut
	r.stats.Tokens += ex.Tokens
	if errored {
		r.stats.Errors++
	}
	r.transcript[r.next] = ex
	r.next++
	if r.next == len(r.transcript) {
		r.next, r.full = 0, true
	}
}

func writeJSONError(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sandgate-Relay", "1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// newLink is one direction of a simulated link. The burst is 20 ms worth of
// bytes (at least 4 KiB, so a small write is never split below a page):
// large enough not to cost a wakeup per write, small enough that a measured
// rate over a second is within a few percent.
func newLink(bps int64) *rate.Limiter {
	burst := max(int(bps/50), 4096)
	return rate.NewLimiter(rate.Limit(bps), burst)
}

// pace waits until the link lets n more bytes through.
func pace(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return fmt.Errorf("bandwidth limit: %w", err)
		}
		n -= k
	}
	return nil
}

// countingReader's count is atomic because the transport may still be
// writing the body from its own goroutine after the response arrived.
type countingReader struct {
	r    io.ReadCloser
	n    atomic.Int64
	head *headTail
	link *rate.Limiter
	ctx  context.Context
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.link != nil && len(p) > c.link.Burst() {
		p = p[:c.link.Burst()]
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.head.Write(p[:n])
	if c.link != nil && n > 0 {
		if werr := pace(c.ctx, c.link, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	head   *headTail
	link   *rate.Limiter
	ctx    context.Context
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.head.Write(p)
	if c.link == nil {
		n, err := c.ResponseWriter.Write(p)
		c.n += int64(n)
		return n, err
	}
	// Paced in burst-sized pieces, each flushed, so the harness sees the
	// bytes arrive at the link's rate rather than in one late lump.
	written := 0
	for len(p) > 0 {
		k := min(len(p), c.link.Burst())
		if err := pace(c.ctx, c.link, k); err != nil {
			return written, err
		}
		n, err := c.ResponseWriter.Write(p[:k])
		written += n
		c.n += int64(n)
		if err != nil {
			return written, err
		}
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		p = p[k:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
