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
	// RequestTimeout bounds one exchange including injected latency
	// (default 2m); past it the client gets 504.
	RequestTimeout time.Duration
	// Latency is added before every forwarded request, simulating a slower
	// network than loopback (the kernel here has no netem).
	Latency time.Duration
	// TranscriptSize is how many recent exchanges are kept (default 1024).
	TranscriptSize int
}

// RelayStats are the relay's counters since it started.
type RelayStats struct {
	Requests int64 `json:"requests"` // forwarded to the model
	Rejected int64 `json:"rejected"` // refused for a budget
	Errors   int64 `json:"errors"`   // relay/transport failures and upstream 5xx
	BytesIn  int64 `json:"bytes_in"` // request bodies sent to the model
	BytesOut int64 `json:"bytes_out"`
}

// Exchange summarises one request through the relay.
type Exchange struct {
	Time     time.Time     `json:"time"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Status   int           `json:"status"`
	Latency  time.Duration `json:"latency"`
	BytesIn  int64         `json:"bytes_in"`
	BytesOut int64         `json:"bytes_out"`
	Err      string        `json:"err,omitempty"`
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
	opt   RelayOptions
	log   *slog.Logger
	ln    net.Listener
	srv   *http.Server
	tr    *http.Transport
	proxy *httputil.ReverseProxy
	url   string

	mu         sync.Mutex
	stats      RelayStats
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
	if opt.MaxRequests < 0 || opt.MaxBytes < 0 || opt.Latency < 0 || opt.RequestTimeout < 0 {
		return nil, fmt.Errorf("relay: budgets, latency and timeout must not be negative (got %+v)", opt)
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
	}
	r.tr = &http.Transport{
		// Every connection goes to the one model, whatever the URL says.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return up.Dial(ctx)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	target := &url.URL{Scheme: "http", Host: up.Host}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = up.Host
		},
		Transport:     r.tr,
		FlushInterval: -1, // stream tokens as the model produces them
		ErrorHandler:  r.proxyError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	r.srv = &http.Server{
		Handler:           http.HandlerFunc(r.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(r.serveDone)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("relay stopped serving", "err", err)
		}
	}()
	return r, nil
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
		err := r.srv.Close()
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

func (r *Relay) admit() (budget string, limit, used int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opt.MaxRequests > 0 && r.stats.Requests >= r.opt.MaxRequests {
		r.stats.Rejected++
		return "requests", r.opt.MaxRequests, r.stats.Requests, false
	}
	if used := r.stats.BytesIn + r.stats.BytesOut; r.opt.MaxBytes > 0 && used >= r.opt.MaxBytes {
		r.stats.Rejected++
		return "bytes", r.opt.MaxBytes, used, false
	}
	r.stats.Requests++
	return "", 0, 0, true
}

func (r *Relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	ex := Exchange{Time: start, Method: req.Method, Path: req.URL.Path}
	errored := false
	defer func() {
		ex.Latency = time.Since(start)
		r.book(ex, errored)
	}()

	if budget, limit, used, ok := r.admit(); !ok {
		ex.Status = http.StatusTooManyRequests
		ex.Err = budget + " budget exhausted"
		writeJSONError(w, http.StatusTooManyRequests, map[string]any{
			"type":    "budget_exceeded",
			"budget":  budget,
			"limit":   limit,
			"used":    used,
			"message": fmt.Sprintf("sandbox relay: %s budget of %d exhausted", budget, limit),
		})
		return
	}

	ctx, cancel := context.WithTimeout(req.Context(), r.opt.RequestTimeout)
	defer cancel()
	if r.opt.Latency > 0 {
		t := time.NewTimer(r.opt.Latency)
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
	var body *countingReader
	if req.Body != nil && req.Body != http.NoBody {
		body = &countingReader{r: req.Body}
		out.Body = body
	}
	cw := &countingWriter{ResponseWriter: w}
	r.proxy.ServeHTTP(cw, out)

	ex.Status = cw.status
	if ex.Status == 0 {
		ex.Status = http.StatusOK
	}
	ex.BytesOut = cw.n
	if body != nil {
		ex.BytesIn = body.n.Load()
	}
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

// countingReader's count is atomic because the transport may still be
// writing the body from its own goroutine after the response arrived.
type countingReader struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
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
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
