package sandbox

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
)

const testPort = 18080

// roleTestAlloc: sandgate-test-alloc <MiB> touches that much memory, says
// so, then idles.
const roleTestAlloc = "sandgate-test-alloc"

func init() { reexec.Register(roleTestAlloc, testAllocMain) }

// testAllocMain maps anonymous memory outside the Go heap, so the race
// detector's shadow memory does not inflate the footprint, and touches every
// page so it is resident and charged to the cgroup.
func testAllocMain() {
	mib, _ := strconv.Atoi(os.Args[1])
	mem, err := syscall.Mmap(-1, 0, mib<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmap:", err)
		os.Exit(1)
	}
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	fmt.Printf("allocated %d MiB\n", mib)
	// Idle until the test stops the sandbox.
	time.Sleep(time.Hour)
}

// newTestProvider returns a provider writing under the test's temp dir and
// its own cgroup parent, or skips when not root.
func newTestProvider(t *testing.T, relay RelayOptions) *ProcessProvider {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("process sandbox tests need root (namespaces, cgroup limits); run `sudo go test ./sandbox/`")
	}
	p, err := NewProcessProvider(ProcessOptions{
		ScratchRoot:  t.TempDir(),
		CgroupParent: testCgroupParent,
		Relay:        relay,
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("NewProcessProvider: %v", err)
	}
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startSandbox(t *testing.T, p *ProcessProvider, spec Spec) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := p.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func modelSpec(name string) Spec {
	return Spec{
		Name:    name,
		Command: []string{roleTestModel, strconv.Itoa(testPort)},
		Port:    testPort,
		Limits:  Limits{MemoryBytes: 512 << 20, Pids: 256, CPUs: 1, WallClock: 60 * time.Second},
	}
}

func waitReady(t *testing.T, s *Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: decode %q: %v", u, b, err)
		}
	}
	return resp.StatusCode
}

func waitDone(t *testing.T, s *Sandbox, within time.Duration) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(within):
		t.Fatalf("sandbox still running after %s; stderr: %s", within, s.StderrTail())
	}
}

// hostAddr is a non-loopback IPv4 address of this host, or "" if none.
func hostAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

func TestSandboxReachableOnlyThroughRelayAndSealed(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, modelSpec("reach"))
	waitReady(t, s)

	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want host loopback", s.Endpoint())
	}
	resp, err := http.Get(s.Endpoint() + "/")
	if err != nil {
		t.Fatalf("GET via relay: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET via relay = %d %q", resp.StatusCode, body)
	}

	// The model's port is not on the host: only the relay reaches it.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", testPort), time.Second); err == nil {
		c.Close()
		t.Errorf("model port %d reachable on host loopback", testPort)
	}

	// Recorded evidence.
	ev := s.Evidence()
	if err := ev.Check(); err != nil {
		t.Errorf("evidence check: %v", err)
	}
	if !slices.Equal(ev.Interfaces, []string{"lo"}) {
		t.Errorf("evidence interfaces = %v, want [lo]", ev.Interfaces)
	}
	for _, r := range ev.Routes {
		if strings.HasPrefix(r, "default") {
			t.Errorf("default route in sandbox: %s", r)
		}
	}
	if len(ev.EgressProbes) < 2 || len(ev.Controls) == 0 {
		t.Fatalf("evidence lacks probes/controls: %+v", ev)
	}
	for _, pr := range ev.EgressProbes {
		if !pr.Blocked {
			t.Errorf("egress probe %s was not blocked", pr.Target)
		}
	}
	for _, c := range ev.Controls {
		if c.Blocked {
			t.Errorf("control %s from host failed (%s): the probe proves nothing", c.Target, c.Err)
		}
	}
	if ev.Namespace == "" || ev.Namespace == ev.HostNamespace {
		t.Errorf("netns %q vs host %q", ev.Namespace, ev.HostNamespace)
	}
	t.Logf("evidence: %+v", ev)

	// The model's own view, asked through the relay.
	var self struct {
		Pid         int      `json:"pid"`
		Hostname    string   `json:"hostname"`
		Interfaces  []string `json:"interfaces"`
		Procs       int      `json:"procs"`
		NoNewPrivs  bool     `json:"no_new_privs"`
		Environment []string `json:"env"`
	}
	getJSON(t, s.Endpoint()+"/self", &self)
	if !slices.Equal(self.Interfaces, []string{"lo"}) {
		t.Errorf("model sees interfaces %v, want [lo]", self.Interfaces)
	}
	// Pids in the new namespace are small (the init's threads take a few)
	// and only init and the model are visible.
	if self.Pid > 64 || self.Procs != 2 {
		t.Errorf("model pid %d with %d processes visible: want its own pid namespace holding init and the model", self.Pid, self.Procs)
	}
	if !self.NoNewPrivs {
		t.Error("model runs without no_new_privs")
	}
	if self.Hostname != "sandbox-"+s.ID() {
		t.Errorf("hostname %q", self.Hostname)
	}
	for _, kv := range self.Environment {
		if strings.HasPrefix(kv, "SANDGATE_") || strings.HasPrefix(kv, "GOFLAGS=") {
			t.Errorf("host environment leaked into sandbox: %s", kv)
		}
	}

	// Egress to a listener the harness opens now, on loopback and on the
	// host's own address: the control from the host succeeds, the same
	// connect from inside fails.
	ln := testutil.AcceptingListener(t, ":0")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	targets := []string{net.JoinHostPort("127.0.0.1", port)}
	if h := hostAddr(t); h != "" {
		targets = append(targets, net.JoinHostPort(h, port))
	} else {
		t.Log("no non-loopback IPv4 address on this host; only loopback egress checked")
	}
	for _, target := range targets {
		c, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			t.Fatalf("control: host cannot reach its own listener %s: %v", target, err)
		}
		c.Close()
		var res struct {
			OK  bool   `json:"ok"`
			Err string `json:"err"`
		}
		getJSON(t, s.Endpoint()+"/dial?addr="+url.QueryEscape(target), &res)
		if res.OK {
			t.Errorf("sandbox reached host listener %s", target)
		} else {
			t.Logf("egress to %s blocked inside: %s", target, res.Err)
		}
	}

	st := s.Stats()
	if !st.Running || st.Relay.Requests < 3 || st.MemoryPeakBytes <= 0 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("memory peak %d MiB", st.MemoryPeakBytes>>20)
}

func TestRequestBudgetRefusesNPlusOne(t *testing.T) {
	const n = 3
	p := newTestProvider(t, RelayOptions{MaxRequests: n})
	s := startSandbox(t, p, modelSpec("budget"))
	waitReady(t, s) // readiness goes around the relay and costs no budget
	for i := 0; i < n; i++ {
		if code := getJSON(t, s.Endpoint()+"/dial?addr=127.0.0.1:1", nil); code != 200 {
			t.Fatalf("request %d: status %d", i+1, code)
		}
	}
	var body struct {
		Error struct {
			Type   string `json:"type"`
			Budget string `json:"budget"`
			Limit  int64  `json:"limit"`
		} `json:"error"`
	}
	if code := getJSON(t, s.Endpoint()+"/", &body); code != http.StatusTooManyRequests {
		t.Fatalf("request %d: status %d, want 429", n+1, code)
	}
	if body.Error.Type != "budget_exceeded" || body.Error.Budget != "requests" || body.Error.Limit != n {
		t.Fatalf("429 body = %+v", body)
	}
	st := s.Stats().Relay
	if st.Requests != n || st.Rejected != 1 {
		t.Fatalf("relay stats = %+v", st)
	}
	eventually(t, 5*time.Second, "the refusal to be booked", func() bool { return len(s.Relay().Transcript()) == n+1 })
	tr := s.Relay().Transcript()
	if len(tr) != n+1 || tr[n].Status != 429 || tr[0].Path != "/dial" {
		t.Fatalf("transcript = %+v", tr)
	}
}

func TestMemoryLimitKillsAllocator(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	const limitMiB = 128

	// Control: with room to spare the allocator finishes.
	ok := startSandbox(t, p, Spec{
		Name: "alloc-control", Command: []string{roleTestAlloc, strconv.Itoa(2 * limitMiB)}, Port: 1,
		Limits: Limits{MemoryBytes: 4 * limitMiB << 20},
	})
	eventually(t, 30*time.Second, "control allocator to finish", func() bool {
		select {
		case <-ok.Done():
			t.Fatalf("control allocator died: %+v; stderr %s", ok.Stats(), ok.StderrTail())
		default:
		}
		return strings.Contains(ok.StdoutTail(), "allocated")
	})
	if err := ok.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	s := startSandbox(t, p, Spec{
		Name: "alloc", Command: []string{roleTestAlloc, strconv.Itoa(2 * limitMiB)}, Port: 1,
		Limits: Limits{MemoryBytes: limitMiB << 20},
	})
	waitDone(t, s, 30*time.Second)
	st := s.Stats()
	if st.KilledBy != KilledByOOM || st.OOMKills == 0 || st.Signal != "SIGKILL" {
		t.Fatalf("stats = %+v, want killed by oom; stdout %q stderr %q", st, s.StdoutTail(), s.StderrTail())
	}
	if strings.Contains(s.StdoutTail(), "allocated") {
		t.Fatal("allocator finished despite the limit")
	}
	// The kernel may charge a page or two past the limit before the OOM kill.
	if st.MemoryPeakBytes > limitMiB<<20+1<<20 || st.MemoryPeakBytes < limitMiB<<19 {
		t.Errorf("memory peak %d, want close to the %d MiB limit", st.MemoryPeakBytes, limitMiB)
	}
	if err := s.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "oom") {
		t.Errorf("Wait = %v, want an oom error", err)
	}
}

func TestPidsLimitStopsForkLoop(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	loop := []string{"/bin/sh", "-c", `i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo spawned $i; kill $(jobs -p) 2>/dev/null; exit 0`}

	// Control: without a pids limit the loop spawns all its children.
	ok := startSandbox(t, p, Spec{Name: "fork-control", Command: loop, Port: 1})
	waitDone(t, ok, 30*time.Second)
	if !strings.Contains(ok.StdoutTail(), "spawned 60") || ok.Stats().PidsLimitHits != 0 {
		t.Fatalf("control fork loop: stdout %q stderr %q stats %+v", ok.StdoutTail(), ok.StderrTail(), ok.Stats())
	}

	const limit = 24
	s := startSandbox(t, p, Spec{Name: "fork", Command: loop, Port: 1, Limits: Limits{Pids: limit, WallClock: 30 * time.Second}})
	eventually(t, 30*time.Second, "the pids limit to refuse a fork", func() bool { return s.Stats().PidsLimitHits > 0 })
	for _, d := range s.cg.Dirs() {
		b, err := os.ReadFile(filepath.Join(d, "pids.current"))
		if err != nil {
			continue // not the pids controller's directory (v1)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > limit {
			t.Errorf("pids.current %d > limit %d", n, limit)
		}
	}
	waitDone(t, s, 30*time.Second)
	if strings.Contains(s.StdoutTail(), "spawned 60") {
		t.Fatalf("fork loop completed despite pids limit %d; stderr %q", limit, s.StderrTail())
	}
	t.Logf("fork loop stopped: hits=%d stderr=%q", s.Stats().PidsLimitHits, lastLine(s.StderrTail()))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

func TestWallClockKillsSleeper(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})

	// Control: a short sleeper within its deadline exits cleanly.
	ok := startSandbox(t, p, Spec{Name: "sleep-control", Command: []string{"sleep", "0.1"}, Port: 1, Limits: Limits{WallClock: 10 * time.Second}})
	waitDone(t, ok, 10*time.Second)
	if st := ok.Stats(); st.ExitCode != 0 || st.KilledBy != "" {
		t.Fatalf("control sleeper: %+v", st)
	}
	if err := ok.Wait(context.Background()); err != nil {
		t.Fatalf("control Wait: %v", err)
	}

	const limit = time.Second
	s := startSandbox(t, p, Spec{Name: "sleeper", Command: []string{"sleep", "60"}, Port: 1, Limits: Limits{WallClock: limit}})
	waitDone(t, s, 10*time.Second)
	st := s.Stats()
	if st.KilledBy != KilledByDeadline {
		t.Fatalf("stats = %+v, want killed by deadline", st)
	}
	if took := st.Exited.Sub(st.Started); took < limit || took > limit+3*time.Second {
		t.Errorf("killed after %s, want just after %s", took, limit)
	}
}

func TestStopWipesEverything(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, modelSpec("wipe"))
	waitReady(t, s)
	dirs := s.cg.Dirs()
	scratch := s.ScratchDir()
	shim := s.proc.Pid
	procs, err := s.cg.Procs()
	if err != nil || len(procs) < 2 {
		t.Fatalf("cgroup procs = %v, %v; want init and model", procs, err)
	}
	for _, d := range append(slices.Clone(dirs), scratch, s.socket) {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("before Stop: %v", err)
		}
	}
	// The limits of modelSpec are in the kernel's files.
	want := map[string]string{
		"memory.limit_in_bytes": strconv.Itoa(512 << 20), "memory.max": strconv.Itoa(512 << 20),
		"pids.max": "256", "cpu.cfs_quota_us": "100000", "cpu.max": "100000 100000",
	}
	found := 0
	for _, d := range dirs {
		for f, v := range want {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				found++
				if got := strings.TrimSpace(string(b)); got != v {
					t.Errorf("%s/%s = %q, want %q", d, f, got, v)
				}
			}
		}
	}
	if found != 3 {
		t.Errorf("found %d of the 3 limit files in %v", found, dirs)
	}
	if err := os.WriteFile(filepath.Join(scratch, "home", "junk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, d := range append(slices.Clone(dirs), scratch, s.socket) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Stop %s still exists (%v)", d, err)
		}
	}
	for _, pid := range procs {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d (init is %d) survived Stop: %v", pid, shim, err)
		}
	}
	if _, err := http.Get(s.Endpoint() + "/"); err == nil {
		t.Error("relay still answers after Stop")
	}
	if st := s.Stats(); st.Running || st.KilledBy != KilledBySignal {
		t.Errorf("stats after Stop = %+v", st)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestWaitReadyReportsModelStderr(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, Spec{Name: "crash", Command: []string{"/bin/sh", "-c", "echo weights not found >&2; exit 3"}, Port: 9})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "weights not found") || !strings.Contains(err.Error(), "code 3") {
		t.Fatalf("WaitReady = %v", err)
	}
	if st := s.Stats(); st.ExitCode != 3 || st.KilledBy != "" {
		t.Errorf("stats = %+v", st)
	}
}

// TestPreflight runs as any user: as root it must pass; otherwise it must
// either pass (rootless on delegated cgroup v2) or say what is missing.
func TestPreflight(t *testing.T) {
	_, err := NewProcessProvider(ProcessOptions{CgroupParent: testCgroupParent})
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("as root: %v", err)
		}
		return
	}
	if err != nil && (!errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "run as root")) {
		t.Fatalf("as uid %d: %v", os.Geteuid(), err)
	}
	t.Logf("as uid %d: %v", os.Geteuid(), err)
}

func TestStartRejectsBadSpec(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	_, err := p.Start(context.Background(), Spec{Name: "bad", Port: 0})
	if err == nil || !strings.Contains(err.Error(), "Command is empty") || !strings.Contains(err.Error(), "Port 0") {
		t.Fatalf("Start(bad) = %v", err)
	}
	_, err = p.Start(context.Background(), Spec{Name: "missing", Command: []string{"no-such-model-binary"}, Port: 80})
	if err == nil || !strings.Contains(err.Error(), "not found in PATH") {
		t.Fatalf("Start(missing binary) = %v", err)
	}
}
