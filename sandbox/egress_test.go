package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/testutil"
)

func TestParseEgressAddress(t *testing.T) {
	good := map[string]string{
		"127.0.0.1:6333":        "127.0.0.1:6333",
		"Vectors.Internal.:443": "vectors.internal:443",
		"[::1]:8080":            "[::1]:8080",
		"[::ffff:10.0.0.1]:80":  "10.0.0.1:80",
		"mock_payments:9000":    "mock_payments:9000",
	}
	for in, want := range good {
		got, err := ParseEgressAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseEgressAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "host", "host:", ":80", "host:0", "host:65536", "host:08", "host:http",
		"0.0.0.0:80", "[ff02::1]:80", "[fe80::1%eth0]:80", "bad host:80", "-x.com:80", "a..b:80", "exa$mple.com:80"} {
		if got, err := ParseEgressAddress(in); err == nil {
			t.Errorf("ParseEgressAddress(%q) = %q, want an error", in, got)
		}
	}
}

func TestValidateEgress(t *testing.T) {
	if err := ValidateEgress([]EgressRule{{Name: "a", Address: "127.0.0.1:1"}, {Address: "db:5432"}}); err != nil {
		t.Fatal(err)
	}
	err := ValidateEgress([]EgressRule{
		{Name: "a", Address: "127.0.0.1:1"}, {Name: "a", Address: "127.0.0.1:2"},
		{Address: "DB:5432"}, {Address: "db.:5432"}, {Name: "x\n", Address: "h:1"}, {Address: "h"},
	})
	for _, want := range []string{`Egress[1]: name "a" is already used by Egress[0]`, "Egress[3]: address db:5432 is already allowed by Egress[2]", "Egress[4]: name", "Egress[5]: address \"h\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// startTestEgress serves rules on a unix socket and returns a dialer for it.
func startTestEgress(t *testing.T, opt egressOptions) (*Egress, func() net.Conn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "e.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEgress(opt, ln, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
}

// echoService accepts connections and echoes what it reads, upper-cased.
func echoService(t *testing.T) string {
	t.Helper()
	return testutil.ServeConns(t, "127.0.0.1:0", func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
	}).Addr().String()
}

func TestEgressRelayProtocols(t *testing.T) {
	svc := echoService(t)
	e, dial := startTestEgress(t, egressOptions{Rules: []EgressRule{{Address: svc}}})
	roundTrip := func(c net.Conn, br *bufio.Reader) string {
		c.Write([]byte("ping"))
		c.(*net.UnixConn).CloseWrite()
		b, _ := io.ReadAll(br)
		return string(b)
	}

	c := dial()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", svc, svc)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT allowed: %v %v", resp, err)
	}
	if got := roundTrip(c, br); got != "PING" {
		t.Errorf("CONNECT tunnel echoed %q", got)
	}

	c = dial()
	fmt.Fprintf(c, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT refused: %v %v", resp, err)
	}

	// SOCKS5 with the IPv4 address form.
	c = dial()
	ip := net.ParseIP("127.0.0.1").To4()
	_, port, _ := net.SplitHostPort(svc)
	var p int
	fmt.Sscan(port, &p)
	c.Write(append([]byte{5, 1, 0, 5, 1, 0, 1}, ip[0], ip[1], ip[2], ip[3], byte(p>>8), byte(p)))
	br = bufio.NewReader(c)
	reply := make([]byte, 12)
	if _, err := io.ReadFull(br, reply); err != nil || reply[3] != socksOK {
		t.Fatalf("socks5 reply %v %v", reply, err)
	}
	if got := roundTrip(c, br); got != "PING" {
		t.Errorf("SOCKS5 tunnel echoed %q", got)
	}

	// Not a proxy request at all.
	c = dial()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("origin-form request: %v %v", resp, err)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	tr := e.Transcript()
	if len(tr) != 4 {
		t.Fatalf("transcript has %d records: %+v", len(tr), tr)
	}
	bySeq := map[int64]EgressRecord{}
	for _, r := range tr {
		bySeq[r.Seq] = r
	}
	if r := bySeq[1]; !r.Allowed || r.Via != EgressViaConnect || r.BytesSent != 4 || r.BytesReceived != 4 || r.Rule != svc {
		t.Errorf("CONNECT record %+v", r)
	}
	if r := bySeq[2]; r.Allowed || r.Target != "127.0.0.1:1" || !strings.Contains(r.Reason, "allowlist") {
		t.Errorf("refused record %+v", r)
	}
	if r := bySeq[3]; !r.Allowed || r.Via != EgressViaSOCKS5 || r.BytesSent != 4 {
		t.Errorf("SOCKS5 record %+v", r)
	}
	if r := bySeq[4]; r.Allowed || !strings.Contains(r.Reason, "not a proxy request") {
		t.Errorf("bad request record %+v", r)
	}
}

func TestEgressRelayDialFailureRecorded(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close() // allowed, but nothing listens
	e, dial := startTestEgress(t, egressOptions{Rules: []EgressRule{{Name: "gone", Address: dead}}})
	c := dial()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dead, dead)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("CONNECT to a dead service: %v %v", resp, err)
	}
	e.Close()
	if tr := e.Transcript(); len(tr) != 1 || !tr[0].Allowed || tr[0].Rule != "gone" || !strings.Contains(tr[0].Err, "refused") {
		t.Fatalf("transcript %+v", tr)
	}
}

// FuzzReadProxyRequest: whatever the model sends, the parser returns
// without panicking, and an accepted target is what the relay checks.
func FuzzReadProxyRequest(f *testing.F) {
	f.Add([]byte("CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"))
	f.Add([]byte("GET http://db:5432/x HTTP/1.1\r\nHost: db:5432\r\n\r\n"))
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 2, 'd', 'b', 0, 80})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 187})
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		pr, err := readProxyRequest(bufio.NewReader(bytes.NewReader(b)), &out)
		if err != nil {
			return
		}
		if pr.via == "" {
			t.Fatalf("accepted request without a kind: %+v", pr)
		}
		if _, _, err := net.SplitHostPort(pr.target); err != nil && pr.via != EgressViaConnect {
			t.Fatalf("accepted target %q is not host:port: %v", pr.target, err)
		}
		if pr.via == EgressViaHTTP && pr.req == nil {
			t.Fatal("http proxy request without the request to forward")
		}
	})
}

// TestEgressRelayPacesBandwidth: the profile's byte rate holds on egress
// too. Only a lower bound is asserted, which a slow machine cannot break.
func TestEgressRelayPacesBandwidth(t *testing.T) {
	const bps, size = 32 << 10, 32 << 10
	svc := echoService(t)
	_, dial := startTestEgress(t, egressOptions{Rules: []EgressRule{{Address: svc}}, Network: NetProfile{Name: "slow", BytesPerSecond: bps}})
	c := dial()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", svc, svc)
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	start := time.Now()
	go func() {
		c.Write(bytes.Repeat([]byte("x"), size))
		c.(*net.UnixConn).CloseWrite()
	}()
	n, _ := io.Copy(io.Discard, br)
	took := time.Since(start)
	// Up and down are separate links, each starting with a 4 KiB burst;
	// the echo only replies after the whole upload. 95% of the exact
	// figure leaves room for the limiter's rounding; unpaced takes ~1ms.
	exact := 2 * float64(size-4096) / bps * float64(time.Second)
	floor := time.Duration(0.95 * exact)
	t.Logf("%d B each way at %d B/s took %s (floor %s)", n, bps, took, floor)
	if n != size || took < floor {
		t.Fatalf("echoed %d B in %s, want %d B in at least %s", n, took, size, floor)
	}
}
