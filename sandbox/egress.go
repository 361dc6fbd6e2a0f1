package sandbox

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Egress design. The sandbox's network namespace holds only lo, so nothing
// inside can open a connection out. An allowlisted service is reached in
// two hops: the init shim listens inside the sandbox (a proxy port, plus one
// listener per loopback service) and splices each connection to a unix
// socket in the scratch directory; on the host side the egress relay
// (Egress) reads the proxy request, checks the target against the allowlist,
// dials it, and records the attempt. The policy lives on the host because
// nothing inside the sandbox, the shim included, is trusted to enforce it;
// the shim only moves bytes.

// EgressRule allows the model to reach one service.
type EgressRule struct {
	// Name labels the service in the transcript ("vector-store").
	Name string `json:"name"`
	// Address is host:port as the harness's host reaches it. The model
	// names it the same way (exactly: "localhost:80" does not allow
	// "127.0.0.1:80"). A host name is resolved on the host.
	Address string `json:"address"`
}

// Ways a connection reached the egress relay, recorded in EgressRecord.Via.
const (
	EgressViaConnect  = "http-connect" // HTTP CONNECT on the proxy port
	EgressViaHTTP     = "http-proxy"   // absolute-URI HTTP request on the proxy port
	EgressViaSOCKS5   = "socks5"       // SOCKS5 on the proxy port
	EgressViaListener = "listener"     // the per-service listener at the service's own loopback address
	EgressViaProbe    = "evidence-probe"
)

// viaHeader carries the shim's label for connections it opens itself (a
// per-service listener, the evidence probe). The model could send it too;
// it only changes a label, never the decision.
const viaHeader = "X-Sandgate-Via"

// EgressRecord is one connection the model attempted to a service outside
// the sandbox, allowed or refused. Byte counts are from the model's side.
type EgressRecord struct {
	// Seq numbers attempts from 1 in arrival order; the transcript lists
	// them in the order they ended.
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Via    string    `json:"via"`
	Target string    `json:"target"`
	// Rule is the name of the allowlist entry that matched; empty when
	// refused.
	Rule    string `json:"rule,omitempty"`
	Allowed bool   `json:"allowed"`
	// Reason says why a refused attempt was refused.
	Reason        string        `json:"reason,omitempty"`
	BytesSent     int64         `json:"bytes_sent"`
	BytesReceived int64         `json:"bytes_received"`
	Duration      time.Duration `json:"duration"`
	InjectedDelay time.Duration `json:"injected_delay,omitempty"`
	// Err is a failure after the allowlist said yes (dial, I/O).
	Err string `json:"err,omitempty"`
}

// EgressEvidence is the egress a sandbox was given, recorded with its
// network evidence.
type EgressEvidence struct {
	Allow []EgressRule `json:"allow"`
	// Proxy is the HTTP CONNECT / SOCKS5 proxy inside the sandbox
	// (127.0.0.1:port), exported to the model as HTTP_PROXY, HTTPS_PROXY
	// and ALL_PROXY.
	Proxy string `json:"proxy"`
	// Listeners are loopback addresses inside the sandbox that forward to
	// the service of the same address on the host.
	Listeners []string `json:"listeners,omitempty"`
	// RefusalProbe is a CONNECT through the proxy, from inside, to a host
	// listener not on the allowlist; it must be Blocked.
	RefusalProbe Probe `json:"refusal_probe"`
}

// maxEgressNameLen bounds a rule name; it is a label, not a document.
const maxEgressNameLen = 63

// ParseEgressAddress checks a rule's host:port and returns it normalised
// (lowercase host, no trailing dot, IPv6 bracketed) as the relay compares it.
func ParseEgressAddress(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q is not host:port (e.g. 127.0.0.1:6333 or vectors.internal:443): %v", addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return "", fmt.Errorf("address %q: port %q is not a TCP port (1-65535)", addr, port)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("address %q: zoned IPv6 addresses are not supported", addr)
		}
		if ip.IsUnspecified() || ip.IsMulticast() {
			return "", fmt.Errorf("address %q: %s is not a service's address", addr, ip)
		}
		return net.JoinHostPort(ip.Unmap().String(), port), nil
	}
	if !validHostName(host) {
		return "", fmt.Errorf("address %q: host %q is neither an IP address nor a DNS name (letters, digits, '-', '_', dots; at most 253 bytes)", addr, host)
	}
	return net.JoinHostPort(host, port), nil
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ValidateEgress checks an allowlist: every address parses, no address or
// name is listed twice. Errors name the entry by index.
func ValidateEgress(rules []EgressRule) error {
	var bad []string
	seenAddr, seenName := map[string]int{}, map[string]int{}
	for i, r := range rules {
		a, err := ParseEgressAddress(r.Address)
		if err != nil {
			bad = append(bad, fmt.Sprintf("Egress[%d]: %v", i, err))
			continue
		}
		if j, dup := seenAddr[a]; dup {
			bad = append(bad, fmt.Sprintf("Egress[%d]: address %s is already allowed by Egress[%d]", i, a, j))
		}
		seenAddr[a] = i
		if len(r.Name) > maxEgressNameLen || strings.ContainsFunc(r.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			bad = append(bad, fmt.Sprintf("Egress[%d]: name %q must be at most %d printable bytes", i, r.Name, maxEgressNameLen))
		}
		if r.Name != "" {
			if j, dup := seenName[r.Name]; dup {
				bad = append(bad, fmt.Sprintf("Egress[%d]: name %q is already used by Egress[%d]", i, r.Name, j))
			}
			seenName[r.Name] = i
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// loopbackListenAddrs are the rules the shim can serve at the same address
// inside the sandbox: its own lo carries 127.0.0.0/8 and ::1, so a client
// that is not proxy-aware reaches "127.0.0.1:6333" unchanged.
func loopbackListenAddrs(rules []EgressRule) []string {
	var out []string
	for _, r := range rules {
		a, err := ParseEgressAddress(r.Address)
		if err != nil {
			continue
		}
		host, _, _ := net.SplitHostPort(a)
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// egressOptions configure an Egress relay.
type egressOptions struct {
	Rules []EgressRule
	// Network, Latency and Seed are the sandbox's relay profile: each
	// allowed connection waits one drawn delay before it is dialled, and
	// each direction is paced at Network.BytesPerSecond.
	Network NetProfile
	Latency time.Duration
	Seed    uint64
	// TranscriptSize is how many recent records are kept (default 1024).
	TranscriptSize int
	// MaxConns bounds connections open at once (default 256); more are
	// refused and recorded.
	MaxConns int
	// DialTimeout bounds one dial of an allowed service (default 10s).
	DialTimeout time.Duration
	// HandshakeTimeout bounds reading the proxy request (default 10s).
	HandshakeTimeout time.Duration
}

// Egress is the host side of a sandbox's allowlist: a proxy on a unix
// socket that the sandbox's shim forwards to. It allows exactly the listed
// host:port targets, refuses everything else with a reason, and records
// every attempt. Safe for concurrent use.
type Egress struct {
	opt      egressOptions
	log      *slog.Logger
	ln       net.Listener
	allow    map[string]EgressRule // normalised address -> rule
	delay    *delaySampler
	upLink   *rate.Limiter // model -> service; nil when unlimited
	downLink *rate.Limiter // service -> model
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	active   atomic.Int64

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	seq     int64
	records []EgressRecord // ring buffer
	next    int
	full    bool
	closed  bool

	closeOnce sync.Once
}

// newEgress serves the allowlist on ln, which it owns from now on.
func newEgress(opt egressOptions, ln net.Listener, log *slog.Logger) (*Egress, error) {
	if err := ValidateEgress(opt.Rules); err != nil {
		return nil, fmt.Errorf("egress allowlist: %w", err)
	}
	if err := opt.Network.Validate(); err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	if opt.TranscriptSize <= 0 {
		opt.TranscriptSize = 1024
	}
	if opt.MaxConns <= 0 {
		opt.MaxConns = 256
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 10 * time.Second
	}
	if opt.HandshakeTimeout <= 0 {
		opt.HandshakeTimeout = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	e := &Egress{
		opt:     opt,
		log:     log,
		ln:      ln,
		allow:   map[string]EgressRule{},
		delay:   newDelaySampler(opt.Network, opt.Latency, opt.Seed),
		conns:   map[net.Conn]struct{}{},
		records: make([]EgressRecord, opt.TranscriptSize),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for _, r := range opt.Rules {
		a, _ := ParseEgressAddress(r.Address)
		if r.Name == "" {
			r.Name = a
		}
		e.allow[a] = r
	}
	if bps := opt.Network.BytesPerSecond; bps > 0 {
		e.upLink, e.downLink = newLink(bps), newLink(bps)
	}
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

// Rules are the allowlist, names defaulted to the address.
func (e *Egress) Rules() []EgressRule {
	out := make([]EgressRule, 0, len(e.opt.Rules))
	for _, r := range e.opt.Rules {
		a, _ := ParseEgressAddress(r.Address)
		out = append(out, e.allow[a])
	}
	return out
}

// Transcript returns the most recent attempts in the order they ended (a
// connection still open is recorded when it closes).
func (e *Egress) Transcript() []EgressRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.full {
		return append([]EgressRecord(nil), e.records[:e.next]...)
	}
	out := make([]EgressRecord, 0, len(e.records))
	out = append(out, e.records[e.next:]...)
	return append(out, e.records[:e.next]...)
}

// Close stops accepting, cuts open connections and waits until each is
// recorded. It is idempotent.
func (e *Egress) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.cancel()
		err = e.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		e.mu.Lock()
		e.closed = true
		for c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("egress: close: %w", err)
	}
	return nil
}

func (e *Egress) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				e.log.Warn("egress accept", "err", err)
			}
			return
		}
		if !e.track(c, true) {
			_ = c.Close()
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer e.track(c, false)
			defer c.Close()
			e.handle(c)
		}()
	}
}

// track adds or removes an open connection; false once Close began.
func (e *Egress) track(c net.Conn, add bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !add {
		delete(e.conns, c)
		return true
	}
	if e.closed {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Egress) book(rec EgressRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records[e.next] = rec
	e.next++
	if e.next == len(e.records) {
		e.next, e.full = 0, true
	}
}

// proxyRequest is what the model asked the proxy for.
type proxyRequest struct {
	via    string
	target string        // host:port as asked, before normalisation
	req    *http.Request // the request to forward, for EgressViaHTTP
}

// maxProxyRequest bounds a proxy request's header (and SOCKS5 handshake).
const maxProxyRequest = 64 << 10

// errNotProxy is a request the proxy cannot serve: its reply is 400.
var errNotProxy = errors.New("not a proxy request")

// readProxyRequest reads a SOCKS5 greeting and CONNECT, or one HTTP request
// (CONNECT or absolute-URI), from br. For SOCKS5 it answers the greeting on
// w; the final reply is left to the caller.
func readProxyRequest(br *bufio.Reader, w io.Writer) (proxyRequest, error) {
	first, err := br.Peek(1)
	if err != nil {
		return proxyRequest{}, fmt.Errorf("read proxy request: %w", err)
	}
	if first[0] == 5 {
		return readSOCKS5(br, w)
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return proxyRequest{}, fmt.Errorf("%w: %v", errNotProxy, err)
	}
	via := EgressViaHTTP
	if v := req.Header.Get(viaHeader); v == EgressViaListener || v == EgressViaProbe {
		via = v
	}
	req.Header.Del(viaHeader)
	if req.Method == http.MethodConnect {
		if via == EgressViaHTTP {
			via = EgressViaConnect
		}
		if req.Body != nil {
			_ = req.Body.Close() // a CONNECT has no body; the stream follows
		}
		return proxyRequest{via: via, target: req.Host}, nil
	}
	if !req.URL.IsAbs() || req.URL.Scheme != "http" || req.URL.Host == "" {
		return proxyRequest{via: via, target: req.Host}, fmt.Errorf("%w: %s %q is not an absolute http:// URL or CONNECT (https goes through CONNECT)", errNotProxy, req.Method, req.RequestURI)
	}
	target := req.URL.Host
	if req.URL.Port() == "" {
		target = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	return proxyRequest{via: via, target: target, req: req}, nil
}

// SOCKS5 (RFC 1928) constants used here.
const (
	socksVersion     = 5
	socksNoAuth      = 0
	socksNoMethod    = 0xff
	socksCmdConnect  = 1
	socksAtypIPv4    = 1
	socksAtypDomain  = 3
	socksAtypIPv6    = 4
	socksOK          = 0
	socksFailure     = 1
	socksNotAllowed  = 2
	socksRefused     = 5
	socksCmdNotSupp  = 7
	socksAtypNotSupp = 8
)

func readSOCKS5(br *bufio.Reader, w io.Writer) (proxyRequest, error) {
	pr := proxyRequest{via: EgressViaSOCKS5}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return pr, fmt.Errorf("%w: socks5 greeting: %v", errNotProxy, err)
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return pr, fmt.Errorf("%w: socks5 methods: %v", errNotProxy, err)
	}
	if !strings.ContainsRune(string(methods), socksNoAuth) {
		_, _ = w.Write([]byte{socksVersion, socksNoMethod})
		return pr, fmt.Errorf("%w: socks5 client offers no \"no authentication\" method", errNotProxy)
	}
	if _, err := w.Write([]byte{socksVersion, socksNoAuth}); err != nil {
		return pr, fmt.Errorf("socks5 greeting reply: %w", err)
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return pr, fmt.Errorf("%w: socks5 request: %v", errNotProxy, err)
	}
	if req[0] != socksVersion {
		return pr, fmt.Errorf("%w: socks5 request version %d", errNotProxy, req[0])
	}
	var host string
	switch req[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := 4
		if req[3] == socksAtypIPv6 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return pr, fmt.Errorf("%w: socks5 address: %v", errNotProxy, err)
		}
		ip, _ := netip.AddrFromSlice(b)
		host = ip.String()
	case socksAtypDomain:
		l, err := br.ReadByte()
		if err != nil {
			return pr, fmt.Errorf("%w: socks5 name length: %v", errNotProxy, err)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return pr, fmt.Errorf("%w: socks5 name: %v", errNotProxy, err)
		}
		host = string(b)
	default:
		writeSOCKSReply(w, socksAtypNotSupp)
		return pr, fmt.Errorf("%w: socks5 address type %d", errNotProxy, req[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(br, port[:]); err != nil {
		return pr, fmt.Errorf("%w: socks5 port: %v", errNotProxy, err)
	}
	pr.target = net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	if req[1] != socksCmdConnect {
		writeSOCKSReply(w, socksCmdNotSupp)
		return pr, fmt.Errorf("%w: socks5 command %d (only CONNECT is served)", errNotProxy, req[1])
	}
	return pr, nil
}

func writeSOCKSReply(w io.Writer, code byte) {
	_, _ = w.Write([]byte{socksVersion, code, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0})
}

// refuse answers a refused request in its own protocol.
func refuse(w io.Writer, pr proxyRequest, status int, socksCode byte, reason string) {
	if pr.via == EgressViaSOCKS5 {
		writeSOCKSReply(w, socksCode)
		return
	}
	body := "sandbox egress: " + reason + "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nX-Sandgate-Egress: refused\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

func (e *Egress) handle(c net.Conn) {
	start := time.Now()
	e.mu.Lock()
	e.seq++
	rec := EgressRecord{Seq: e.seq, Time: start}
	e.mu.Unlock()
	defer func() {
		rec.Duration = time.Since(start)
		e.book(rec)
	}()
	_ = c.SetReadDeadline(start.Add(e.opt.HandshakeTimeout))
	// A model must not grow the relay's memory with an endless header.
	lr := &io.LimitedReader{R: c, N: maxProxyRequest}
	br := bufio.NewReader(lr)
	pr, err := readProxyRequest(br, c)
	rec.Via, rec.Target = pr.via, pr.target
	if err != nil {
		rec.Reason = err.Error()
		if errors.Is(err, errNotProxy) && pr.via != EgressViaSOCKS5 {
			refuse(c, pr, http.StatusBadRequest, socksFailure, rec.Reason)
		}
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	lr.N = math.MaxInt64
	if n := e.active.Add(1); n > int64(e.opt.MaxConns) {
		e.active.Add(-1)
		rec.Reason = fmt.Sprintf("more than %d egress connections open at once", e.opt.MaxConns)
		refuse(c, pr, http.StatusServiceUnavailable, socksFailure, rec.Reason)
		return
	}
	defer e.active.Add(-1)
	addr, perr := ParseEgressAddress(pr.target)
	rule, ok := e.allow[addr]
	if perr != nil || !ok {
		rec.Reason = fmt.Sprintf("%s is not on the sandbox's egress allowlist (model.sandbox.egress.allow)", pr.target)
		refuse(c, pr, http.StatusForbidden, socksNotAllowed, rec.Reason)
		return
	}
	rec.Allowed, rec.Rule = true, rule.Name
	if d := e.delay.next(); d > 0 {
		rec.InjectedDelay = d
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			rec.Err = "egress closed during injected latency"
			return
		}
	}
	dctx, cancel := context.WithTimeout(e.ctx, e.opt.DialTimeout)
	var d net.Dialer
	up, err := d.DialContext(dctx, "tcp", rule.Address)
	cancel()
	if err != nil {
		rec.Err = fmt.Sprintf("dial %s: %v", rule.Address, err)
		refuse(c, pr, http.StatusBadGateway, socksRefused, rec.Err)
		return
	}
	if !e.track(up, true) {
		_ = up.Close()
		rec.Err = "egress closed"
		return
	}
	defer e.track(up, false)
	defer up.Close()

	toService := &pacedWriter{w: up, link: e.upLink, ctx: e.ctx}
	toModel := &pacedWriter{w: c, link: e.downLink, ctx: e.ctx}
	switch pr.via {
	case EgressViaSOCKS5:
		writeSOCKSReply(c, socksOK)
	case EgressViaHTTP:
		// One request per connection: with Connection: close the service
		// ends the stream after its reply, so the next request (maybe for
		// another host) comes through the allowlist again.
		out := pr.req
		out.RequestURI = ""
		out.Header.Del("Proxy-Connection")
		out.Header.Del("Proxy-Authorization")
		out.Close = true
		if err := out.Write(toService); err != nil {
			rec.Err = fmt.Sprintf("forward request to %s: %v", rule.Address, err)
			rec.BytesSent = toService.n
			return
		}
	default:
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			rec.Err = err.Error()
			return
		}
	}
	err = pipe(br, c, toService, toModel, up)
	rec.BytesSent, rec.BytesReceived = toService.n, toModel.n
	if err != nil && !errors.Is(err, net.ErrClosed) {
		rec.Err = err.Error()
	}
}

// pipe copies model->service (from modelR, which holds what the handshake
// read ahead) and service->model until both directions end, passing
// half-closes through. The writers count what went each way.
func pipe(modelR io.Reader, model net.Conn, toService, toModel *pacedWriter, service net.Conn) error {
	var wg sync.WaitGroup
	var errUp, errDown error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, errUp = io.Copy(toService, modelR)
		closeWrite(service)
	}()
	_, errDown = io.Copy(toModel, service)
	closeWrite(model)
	wg.Wait()
	return errors.Join(errUp, errDown)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Close()
	}
}

// pacedWriter counts bytes and, with a link, releases them at its rate.
// One goroutine writes; the count is read after it is done.
type pacedWriter struct {
	w    io.Writer
	link *rate.Limiter
	ctx  context.Context
	n    int64
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		k := len(b)
		if p.link != nil {
			k = min(k, p.link.Burst())
			if err := pace(p.ctx, p.link, k); err != nil {
				return written, err
			}
		}
		n, err := p.w.Write(b[:k])
		written += n
		p.n += int64(n)
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}

// Egress is the host side of the sandbox's allowlist; nil when Spec.Egress
// is empty.
func (s *Sandbox) Egress() *Egress { return s.egress }

// EgressTranscript is every connection the model attempted out of the
// sandbox (allowed or refused), oldest first; nil without an allowlist.
func (s *Sandbox) EgressTranscript() []EgressRecord {
	if s.egress == nil {
		return nil
	}
	return s.egress.Transcript()
}
