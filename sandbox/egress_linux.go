package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// egressSocketName is the egress relay's unix socket in the scratch dir.
const egressSocketName = "egress.sock"

// shimEgress is the egress part of shimConfig.
type shimEgress struct {
	// Dir is the host directory holding the relay's socket. The shim opens
	// it before pivot_root and dials through the open descriptor, so the
	// socket is never visible in the model's tree.
	Dir    string `json:"dir"`
	Socket string `json:"socket"`
	// Listen are loopback addresses served inside the sandbox, each
	// forwarding to the service of the same address.
	Listen []string `json:"listen,omitempty"`
	// Allow is the allowlist, for the evidence; the host enforces it.
	Allow []EgressRule `json:"allow"`
}

// startEgress opens the host side of spec's allowlist in scratch; nil, nil
// when the spec allows nothing.
func startEgress(spec Spec, scratch string, relay RelayOptions, log *slog.Logger) (*Egress, *shimEgress, error) {
	if len(spec.Egress) == 0 {
		return nil, nil, nil
	}
	sock := filepath.Join(scratch, egressSocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("egress: listen on %s: %w", sock, err)
	}
	eg, err := newEgress(egressOptions{
		Rules:   spec.Egress,
		Network: relay.Network,
		Latency: relay.Latency,
		// Its own stream of delays, reproducible from the same seed.
		Seed: relay.Seed ^ 0xe9e55,
	}, ln, log.With("component", "egress"))
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return eg, &shimEgress{Dir: scratch, Socket: egressSocketName, Listen: loopbackListenAddrs(spec.Egress), Allow: eg.Rules()}, nil
}

// egressShim is the sandbox side: listeners in the sandbox's netns whose
// connections are spliced to the host's egress relay.
type egressShim struct {
	cfg       shimEgress
	dirFD     int
	proxy     net.Listener
	listeners []net.Listener
	log       *slog.Logger
}

// openEgressShim runs in the shim before pivot_root (the socket's directory
// is not in the new root) and starts serving at once.
func openEgressShim(cfg shimEgress, log *slog.Logger) (_ *egressShim, retErr error) {
	fd, err := unix.Open(cfg.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("egress: open %s: %w", cfg.Dir, err)
	}
	e := &egressShim{cfg: cfg, dirFD: fd, log: log}
	defer func() {
		if retErr != nil {
			e.close()
		}
	}()
	// tcp4: the proxy URL the model gets says 127.0.0.1.
	if e.proxy, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("egress: open the proxy port inside the sandbox: %w", err)
	}
	go e.serve(e.proxy, "")
	for _, a := range cfg.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("egress: listen on %s inside the sandbox for the allowlisted service: %w", a, err)
		}
		e.listeners = append(e.listeners, ln)
		go e.serve(ln, a)
	}
	return e, nil
}

func (e *egressShim) close() {
	if e.proxy != nil {
		e.proxy.Close()
	}
	for _, l := range e.listeners {
		l.Close()
	}
	unix.Close(e.dirFD)
}

// ProxyAddr is the proxy's 127.0.0.1:port inside the sandbox.
func (e *egressShim) proxyAddr() string { return e.proxy.Addr().String() }

// env adds the proxy variables curl, Go, Python requests and most HTTP
// clients honour, unless the model's Env sets them. Loopback is exempt, so
// the model's own port and the per-service listeners are reached directly.
func (e *egressShim) env(env []string) []string {
	u := "http://" + e.proxyAddr()
	vars := [][2]string{
		{"HTTP_PROXY", u}, {"HTTPS_PROXY", u}, {"ALL_PROXY", "socks5h://" + e.proxyAddr()},
		{"NO_PROXY", "localhost,127.0.0.1,::1"},
	}
	out := slices.Clone(env)
	for _, v := range vars {
		for _, k := range []string{v[0], strings.ToLower(v[0])} {
			if !slices.ContainsFunc(out, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
				out = append(out, k+"="+v[1])
			}
		}
	}
	return out
}

func (e *egressShim) dialRelay(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", fmt.Sprintf("/proc/self/fd/%d/%s", e.dirFD, e.cfg.Socket))
}

// serve splices each connection to the host relay. A per-service listener
// (target set) first asks the relay for its target with a CONNECT.
func (e *egressShim) serve(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				e.log.Warn("egress accept", "err", err)
			}
			return
		}
		go func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			up, err := e.dialRelay(ctx)
			cancel()
			if err != nil {
				e.log.Warn("egress: reach the host relay", "err", err)
				return
			}
			defer up.Close()
			if target != "" {
				if up, err = connectVia(up, target, EgressViaListener); err != nil {
					return // refused or failed: recorded on the host
				}
			}
			splice(c, up)
		}()
	}
}

// connectVia asks the relay on c for target and returns the stream, which
// keeps whatever the relay's reader buffered past the reply.
func connectVia(c net.Conn, target, via string) (net.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n\r\n", target, target, viaHeader, via); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &egressRefused{status: resp.StatusCode, text: resp.Status}
	}
	_ = c.SetDeadline(time.Time{})
	return &bufferedConn{Conn: c, r: br}, nil
}

// egressRefused is the relay's answer when it did not connect.
type egressRefused struct {
	status int
	text   string
}

func (e *egressRefused) Error() string { return "egress relay: " + e.text }

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite passes splice's half-close on to the unix socket.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// evidence records the egress and proves, from inside, that the proxy
// refuses a target off the allowlist (target: a "tcp:host:port" probe).
func (e *egressShim) evidence(probeTarget string) *EgressEvidence {
	ev := &EgressEvidence{Allow: e.cfg.Allow, Proxy: e.proxyAddr(), Listeners: e.cfg.Listen}
	target := strings.TrimPrefix(probeTarget, "tcp:")
	ev.RefusalProbe = Probe{Target: "proxy:" + target}
	c, err := net.DialTimeout("tcp", e.proxyAddr(), 5*time.Second)
	if err == nil {
		var up net.Conn
		up, err = connectVia(c, target, EgressViaProbe)
		c.Close()
		if err == nil {
			up.Close()
		}
	}
	// Only the relay's own refusal counts: a broken path would "block"
	// too, and then the allowed services would be unreachable as well.
	var refused *egressRefused
	if err != nil {
		ev.RefusalProbe.Err = err.Error()
		ev.RefusalProbe.Blocked = errors.As(err, &refused) && refused.status == http.StatusForbidden
	}
	return ev
}

// validateEgressSpec checks the allowlist and that no per-service listener
// would take the model's own port.
func validateEgressSpec(spec Spec) []string {
	if len(spec.Egress) == 0 {
		return nil
	}
	if err := ValidateEgress(spec.Egress); err != nil {
		return []string{err.Error()}
	}
	var bad []string
	for _, a := range loopbackListenAddrs(spec.Egress) {
		if _, port, _ := net.SplitHostPort(a); spec.Port != 0 && port == strconv.Itoa(spec.Port) {
			bad = append(bad, fmt.Sprintf("Egress address %s: port %d is the model's own Port inside the sandbox, where the loopback service's listener would also go; serve the service on another port", a, spec.Port))
		}
	}
	return bad
}
