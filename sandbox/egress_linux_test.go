package sandbox

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
)

// roleTestEgress: sandgate-test-egress <allowed host:port> <other host:port>
// tries every way out from inside the sandbox and prints, per attempt, what
// came back ("ok <body>") or the error ("err ...").
const roleTestEgress = "sandgate-test-egress"

func init() { reexec.Register(roleTestEgress, testEgressMain) }

func testEgressMain() {
	allowed, other := os.Args[1], os.Args[2]
	proxy := strings.TrimPrefix(os.Getenv("HTTP_PROXY"), "http://")
	res := map[string]string{"env_all_proxy": os.Getenv("ALL_PROXY")}
	record := func(name string, f func() (string, error)) {
		start := time.Now()
		body, err := f()
		res[name+"_ms"] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
		if err != nil {
			res[name] = "err " + err.Error()
		} else {
			res[name] = "ok " + strings.TrimSpace(body)
		}
	}
	viaProxy := func(target string) func() (string, error) {
		return func() (string, error) {
			u, _ := url.Parse("http://" + proxy)
			c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 10 * time.Second}
			return get(c, "http://"+target+"/")
		}
	}
	record("http_proxy_allowed", viaProxy(allowed))
	record("http_proxy_other", viaProxy(other))
	record("connect_allowed", func() (string, error) { return connectGet(proxy, allowed) })
	record("connect_other", func() (string, error) { return connectGet(proxy, other) })
	record("socks5_allowed", func() (string, error) { return socksGet(proxy, allowed) })
	record("socks5_other", func() (string, error) { return socksGet(proxy, other) })
	direct := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	record("listener_allowed", func() (string, error) { return get(direct, "http://"+allowed+"/") })
	record("direct_other", func() (string, error) { return get(direct, "http://"+other+"/") })
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// tunnelGet sends a plain GET over an established tunnel.
func tunnelGet(c net.Conn, br *bufio.Reader, target string) (string, error) {
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func connectGet(proxy, target string) (string, error) {
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("CONNECT %s: %s: %s", target, resp.Status, strings.TrimSpace(string(b)))
	}
	return tunnelGet(c, br, target)
}

func socksGet(proxy, target string) (string, error) {
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	host, port, _ := net.SplitHostPort(target)
	p, _ := strconv.Atoi(port)
	msg := []byte{5, 1, 0, 5, 1, 0, 3, byte(len(host))}
	msg = append(msg, host...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(p))
	if _, err := c.Write(msg); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	var reply [2 + 10]byte
	if _, err := io.ReadFull(br, reply[:]); err != nil {
		return "", fmt.Errorf("socks5 reply: %w", err)
	}
	if reply[3] != 0 {
		return "", fmt.Errorf("socks5 reply code %d", reply[3])
	}
	return tunnelGet(c, br, target)
}

// hostService is an HTTP server on host loopback saying who it is.
func hostService(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from "+name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestEgressAllowlist(t *testing.T) {
	const latency = 120 * time.Millisecond
	p := newTestProvider(t, RelayOptions{})
	allowed, other := hostService(t, "allowed"), hostService(t, "other")
	// Controls: both services answer on the host.
	for _, a := range []string{allowed, other} {
		if _, err := get(http.DefaultClient, "http://"+a+"/"); err != nil {
			t.Fatalf("control: host cannot reach %s: %v", a, err)
		}
	}
	spec := Spec{
		Name:    "egress",
		Command: []string{roleTestEgress, allowed, other},
		Egress:  []EgressRule{{Name: "vector-store", Address: allowed}},
		Relay:   &RelayOptions{Latency: latency},
	}
	spec.NoRelay, spec.Limits.WallClock = true, 30*time.Second
	s := startSandbox(t, p, spec)
	waitDone(t, s, 40*time.Second)
	res := decodeResult(t, "egress role", s.StdoutTail())
	t.Logf("from inside: %v", res)

	for _, k := range []string{"http_proxy_allowed", "connect_allowed", "socks5_allowed", "listener_allowed"} {
		if res[k] != "ok hello from allowed" {
			t.Errorf("%s = %q, want the allowed service's reply", k, res[k])
		}
		if ms, _ := strconv.Atoi(res[k+"_ms"]); time.Duration(ms)*time.Millisecond < latency {
			t.Errorf("%s took %sms inside, want at least the injected %s", k, res[k+"_ms"], latency)
		}
	}
	for _, k := range []string{"http_proxy_other", "connect_other"} {
		if !strings.Contains(res[k], "403") || !strings.Contains(res[k], "not on the sandbox's egress allowlist") {
			t.Errorf("%s = %q, want 403 naming the allowlist", k, res[k])
		}
	}
	if res["socks5_other"] != fmt.Sprintf("err socks5 reply code %d", socksNotAllowed) {
		t.Errorf("socks5_other = %q, want refused by ruleset", res["socks5_other"])
	}
	if !strings.HasPrefix(res["direct_other"], "err ") || strings.Contains(res["direct_other"], "hello") {
		t.Errorf("direct connect to %s from inside = %q, want a failure (empty netns)", other, res["direct_other"])
	}
	if !strings.HasPrefix(res["env_all_proxy"], "socks5h://127.0.0.1:") {
		t.Errorf("ALL_PROXY = %q", res["env_all_proxy"])
	}

	// Evidence: still sealed, and it records the allowlist and a refusal
	// made from inside.
	ev := s.Evidence()
	if err := ev.Check(); err != nil {
		t.Error(err)
	}
	if ev.Egress == nil || len(ev.Egress.Allow) != 1 || ev.Egress.Allow[0].Address != allowed ||
		!ev.Egress.RefusalProbe.Blocked || len(ev.Egress.Listeners) != 1 {
		t.Errorf("egress evidence = %+v", ev.Egress)
	}

	// A snapshot carries the egress records too. A record is booked when
	// the relay's side of the connection ends, just after the model's.
	eventually(t, 10*time.Second, "the probe's and the role's 7 attempts recorded", func() bool { return len(s.EgressTranscript()) >= 8 })
	snap, err := s.Snapshot(context.Background(), "egress test")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var snapEgress []EgressRecord
	if b, err := os.ReadFile(filepath.Join(snap.Dir, SnapshotEgressFile)); err != nil || json.Unmarshal(b, &snapEgress) != nil || len(snapEgress) < 8 {
		t.Errorf("snapshot %s: %d egress records (%v)", SnapshotEgressFile, len(snapEgress), err)
	}

	rep, err := s.Teardown(context.Background())
	if err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if !rep.Wipe.Clean {
		t.Errorf("wipe: %+v", rep.Wipe)
	}
	if _, err := os.Stat(s.ScratchDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir (with egress.sock) left: %v", err)
	}
	// Every attempt through the relay is in the transcript: the evidence
	// probe, four allowed and three refused from the role. The direct
	// connect never left the sandbox, so the relay never saw it.
	var allowedN, refusedN int
	vias := map[string]bool{}
	for _, r := range rep.Egress {
		b, _ := json.Marshal(r)
		t.Logf("egress: %s", b)
		switch {
		case r.Allowed && r.Target == allowed:
			allowedN++
			vias[r.Via] = true
			if r.Rule != "vector-store" || r.BytesSent == 0 || r.BytesReceived == 0 || r.Err != "" {
				t.Errorf("allowed record %+v", r)
			}
			if r.InjectedDelay != latency {
				t.Errorf("allowed record injected %s, want %s", r.InjectedDelay, latency)
			}
		case !r.Allowed && r.Target == other:
			refusedN++
			if r.Reason == "" || r.BytesSent != 0 {
				t.Errorf("refused record %+v", r)
			}
		case !r.Allowed && r.Via == EgressViaProbe:
		default:
			t.Errorf("unexpected record %+v", r)
		}
	}
	if allowedN != 4 || refusedN != 3 {
		t.Errorf("transcript has %d allowed and %d refused attempts, want 4 and 3", allowedN, refusedN)
	}
	for _, v := range []string{EgressViaHTTP, EgressViaConnect, EgressViaSOCKS5, EgressViaListener} {
		if !vias[v] {
			t.Errorf("no allowed record via %s", v)
		}
	}
}

func TestEgressSpecRejected(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	for _, c := range []struct {
		rules []EgressRule
		want  string
	}{
		{[]EgressRule{{Address: "nohost"}}, "Egress[0]"},
		{[]EgressRule{{Address: "127.0.0.1:99999"}}, "not a TCP port"},
		{[]EgressRule{{Address: "127.0.0.1:" + strconv.Itoa(testPort)}}, "model's own Port"},
	} {
		spec := modelSpec("bad-egress")
		spec.Egress = c.rules
		_, err := p.Start(context.Background(), spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.rules, err, c.want)
		}
	}
}
