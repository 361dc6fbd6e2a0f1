// Package shadowbench measures what mirroring costs the primary path:
// sandgate's shadow proxy against a direct connection, and nginx's mirror
// directive against the same, at the same open-loop load, with a slow
// mirror target. Each proxy runs in its own process; requests leave at
// precise instants (internal/openloop) and are timed from them; the
// targets take turns in one-second blocks; a second direct series is an
// A/A test of the machine's noise; the median of three comparisons is
// reported. Run:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/shadow/
//
// Figures depend on the machine: each line also prints the load average.
package shadowbench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/cli"
	"github.com/sandgate/sandgate/internal/hrsleep"
	"github.com/sandgate/sandgate/internal/openloop"
	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/shadow"
)

// rate is requests per second, open loop: 1,000 as the issue asks;
// SHADOW_BENCH_RATE overrides it to find where a busy machine saturates.
var rate = func() int {
	if v, err := strconv.Atoi(os.Getenv("SHADOW_BENCH_RATE")); err == nil && v > 0 {
		return v
	}
	return 1000
}()

const (
	dur      = 8 * time.Second        // per target of a comparison
	reps     = 3                      // comparisons; the median is reported
	incDelay = 2 * time.Millisecond   // incumbent inference time
	slow     = 100 * time.Millisecond // the slow mirror target (50× the incumbent)
	body     = `{"model":"m","messages":[{"role":"user","content":"hello"}]}`
)

// model answers a chat completion d after the request arrived. It waits
// on timerfds (internal/hrsleep): time.Sleep's ~0.5–1 ms overshoot here
// made the 2 ms incumbent's own p99 swing by more than a millisecond from
// run to run, more than the difference being measured.
func model(b *testing.B, d time.Duration, text string) string {
	sl := hrsleep.New(256)
	b.Cleanup(sl.Close)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		if d > 0 {
			if err := sl.Until(start.Add(d)); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":%q}}]}`, text)
	}))
	b.Cleanup(s.Close)
	return s.URL
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// compare sends the open-loop load to direct, mirrored and direct again,
// taking turns in one-second blocks for dur each, so all three see the same
// machine; a block is ten times the slow mirror's latency, so little of one
// target's mirroring spills into the next block. The two direct series are
// an A/A test: their difference is the noise this machine puts on a p99
// over this many requests, printed beside the added latency.
//
// It does this reps times and reports the run with the median added p99:
// one p99 over 8,000 requests still moves by about a millisecond from run
// to run on this VM, as much as the target itself.
func compare(b *testing.B, name, direct, mirrored string) {
	type run struct{ d, m, d2 openloop.Result }
	var runs []run
	for range reps {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096}}
		urls := []string{direct + "/v1/chat/completions", mirrored + "/v1/chat/completions", direct + "/v1/chat/completions"}
		res := openloop.Interleaved(context.Background(), c, urls, body, rate, 3*dur, time.Second)
		c.CloseIdleConnections()
		r := run{res[0], res[1], res[2]}
		runs = append(runs, r)
		fmt.Printf("  %-30s run %d: added p50 %+6.2f p99 %+6.2f ms, A/A p99 %+6.2f ms\n", name, len(runs),
			ms(r.m.Quantile(0.5)-r.d.Quantile(0.5)), ms(r.m.Quantile(0.99)-r.d.Quantile(0.99)), ms(r.d2.Quantile(0.99)-r.d.Quantile(0.99)))
	}
	added99 := func(r run) time.Duration { return r.m.Quantile(0.99) - r.d.Quantile(0.99) }
	slices.SortFunc(runs, func(x, y run) int { return cmp.Compare(added99(x), added99(y)) })
	med := runs[len(runs)/2]
	d, m, d2 := med.d, med.m, med.d2
	add50, add99 := m.Quantile(0.5)-d.Quantile(0.5), m.Quantile(0.99)-d.Quantile(0.99)
	noise99 := d2.Quantile(0.99) - d.Quantile(0.99)
	fmt.Printf("%d req/s %-30s median of %d: direct p50 %6.2f p99 %7.2f ms | mirrored p50 %6.2f p99 %7.2f ms | added p50 %+7.2f p99 %+8.2f ms (p99 %.2fx) | A/A direct p99 difference %+.2f ms | errors %d/%d | load %s\n",
		rate, name, len(runs), ms(d.Quantile(0.5)), ms(d.Quantile(0.99)), ms(m.Quantile(0.5)), ms(m.Quantile(0.99)), ms(add50), ms(add99), float64(m.Quantile(0.99))/float64(d.Quantile(0.99)), ms(noise99), d.Errors+d2.Errors, m.Errors, testutil.LoadAvg())
	b.ReportMetric(ms(add50), "added_p50_ms")
	b.ReportMetric(ms(add99), "added_p99_ms")
	b.ReportMetric(ms(noise99), "aa_p99_ms")
	b.ReportMetric(float64(m.Quantile(0.99))/float64(d.Quantile(0.99)), "p99_ratio")
	for _, r := range runs {
		if r.m.Errors > 0 {
			b.Errorf("%s: %d client errors through the mirroring path", name, r.m.Errors)
		}
	}
}

// BenchmarkMirrorAddedLatency: 1,000 req/s on loopback, incumbent 2 ms,
// mirror target 100 ms. sandgate mirrors after the reply through a
// bounded queue; nginx's mirror subrequests hold the main request open.
func BenchmarkMirrorAddedLatency(b *testing.B) {
	inc := model(b, incDelay, "incumbent")
	slowCand := model(b, slow, "CANDIDATE")
	b.Run("sandgate", func(b *testing.B) {
		// Its own process, as deployed (`starter shadow proxy`) and as
		// nginx runs below: the load generator's and the models' garbage
		// collections are not the proxy's.
		addr, admin := startSandgateProxy(b, inc, slowCand)
		for b.Loop() {
			compare(b, "sandgate proxy, mirror 100ms", inc, addr)
		}
		resp, err := http.Get(admin + "/debug/shadow")
		if err != nil {
			b.Fatal(err)
		}
		var st shadow.StatsSnapshot
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("  sandgate counters: mirrored %d, dropped (queue full) %d, candidate errors %d\n", st.Mirrored, st.DroppedQueueFull, st.CandidateErrors)
	})
	b.Run("nginx", func(b *testing.B) {
		bin, err := exec.LookPath("nginx")
		if err != nil {
			b.Skip("nginx is not installed (apt-get install -y nginx-light); skipping the nginx mirror comparison")
		}
		ng := startNginx(b, bin, inc, slowCand)
		for b.Loop() {
			compare(b, "nginx mirror, mirror 100ms", inc, ng)
		}
	})
}

// roleProxy is this test binary re-run as `starter shadow proxy`.
const roleProxy = "sandgate-bench-shadow-proxy"

func TestMain(m *testing.M) {
	reexec.Register(roleProxy, func() {
		os.Exit(cli.Run(context.Background(), cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:]))
	})
	if reexec.Init() {
		return
	}
	// This process is the load generator and the test-double models, not
	// what is measured (the proxy runs in its own process, nginx too): it
	// collects garbage only near 1 GiB, so its own collections — several
	// a second with Go's default — do not blur the latencies of both paths.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(1 << 30)
	os.Exit(m.Run())
}

// startSandgateProxy runs the proxy with the CLI's defaults in a child
// process mirroring every request, and returns its URL and admin URL.
func startSandgateProxy(b *testing.B, inc, cand string) (string, string) {
	admin := freePort(b)
	cmd := reexec.Command(roleProxy, "shadow", "proxy", "--listen", "127.0.0.1:0", "--admin", admin,
		"--incumbent", inc, "--candidate", cand, "--sample", "1", "--mirror-timeout", "2s")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("proxy did not start: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	var addr string
	if _, err := fmt.Sscanf(line, "shadow proxy on %s", &addr); err != nil {
		b.Fatalf("proxy said %q: %v", line, err)
	}
	return addr, "http://" + admin
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func freePort(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNginx runs nginx in the foreground (daemon off) with a generated
// config in a temp dir, mirroring every request to mirrorURL, and stops it
// at cleanup.
func startNginx(b *testing.B, bin, incURL, mirrorURL string) string {
	dir := b.TempDir()
	addr := freePort(b)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream incumbent { server %[3]s; keepalive 512; }
  upstream mirror { server %[4]s; keepalive 512; }
  server {
    listen %[2]s;
    location / {
      mirror /_mirror;
      mirror_request_body on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://incumbent;
    }
    location = /_mirror {
      internal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 2s;
      proxy_pass http://mirror$request_uri;
    }
  }
}
`, dir, addr, strings.TrimPrefix(incURL, "http://"), strings.TrimPrefix(mirrorURL, "http://"))
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start nginx: %v", err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not listen on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
