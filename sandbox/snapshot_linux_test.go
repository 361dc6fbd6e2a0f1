package sandbox

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const spinner = "while :; do :; done"

func snapshotProvider(t *testing.T, relay RelayOptions) *ProcessProvider {
	p := newTestProvider(t, relay)
	p.opt.Snapshot = SnapshotOptions{Root: t.TempDir(), OnFailure: true}.withDefaults(p.opt.ScratchRoot)
	return p
}

// cpuOver measures the cgroup's CPU time over a wall-clock window.
func cpuOver(t *testing.T, s *Sandbox, window time.Duration) (time.Duration, time.Duration) {
	t.Helper()
	u0, err := s.cg.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, window+5*time.Second, "the measurement window to pass", func() bool { return time.Since(start) >= window })
	u1, err := s.cg.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	return u1 - u0, time.Since(start)
}

// hostCPU is utime+stime of a host process, from /proc (clock ticks).
func hostCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func TestCPUQuotaHolds(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	const quota = 0.25
	const window = time.Second

	// Control: the same spinner outside any cgroup limit gets more than
	// the quota over the same window.
	host := exec.Command("/bin/sh", "-c", spinner)
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Process.Kill(); host.Wait() })
	c0, start := hostCPU(t, host.Process.Pid), time.Now()
	eventually(t, window+5*time.Second, "the control window", func() bool { return time.Since(start) >= window })
	ctl := hostCPU(t, host.Process.Pid) - c0
	wall := time.Since(start)
	host.Process.Kill()
	t.Logf("control spinner on the host: %s CPU in %s", ctl, wall)
	if float64(ctl) < 1.5*quota*float64(wall) {
		t.Fatalf("control: the host spinner got only %s CPU in %s; the machine is too loaded to test a %.2f-core quota", ctl, wall, quota)
	}

	// Two spinners: without the quota they could take both cores.
	s := startSandbox(t, p, Spec{Name: "spin", Command: []string{"/bin/sh", "-c", spinner + " & " + spinner}, NoRelay: true,
		Limits: Limits{CPUs: quota, WallClock: 30 * time.Second}})
	// Let the quota's first period settle before measuring.
	eventually(t, 5*time.Second, "the spinners to use CPU", func() bool { u, _ := s.cg.CPUUsage(); return u > 50*time.Millisecond })
	used, wall := cpuOver(t, s, window)
	share := used.Seconds() / wall.Seconds()
	t.Logf("sandboxed spinners: %s CPU in %s = %.3f cores (quota %.2f)", used, wall, share, quota)
	if share > quota*1.10 {
		t.Fatalf("spinners got %.3f cores, quota %.2f + 10%%", share, quota)
	}
	if share < quota/3 {
		t.Fatalf("spinners got only %.3f cores: they did not spin", share)
	}
}

func TestFreezeStopsCPUAndThawResumes(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, Spec{Name: "freeze", Command: []string{"/bin/sh", "-c", spinner}, NoRelay: true,
		Limits: Limits{CPUs: 0.5, WallClock: 30 * time.Second}})
	// Control: running, its CPU time advances.
	if used, _ := cpuOver(t, s, 200*time.Millisecond); used <= 0 {
		t.Fatalf("spinner used %s before the freeze", used)
	}
	if st, _ := s.cg.FreezerState(); st != "THAWED" {
		t.Fatalf("freezer state before = %q", st)
	}
	ev, err := s.Freeze(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("freeze evidence: %+v", ev)
	if !ev.Frozen || ev.State != "FROZEN" || ev.CPUAfter != ev.CPUBefore || ev.Window <= 0 {
		t.Fatalf("freeze evidence = %+v", ev)
	}
	// Still frozen a while later, from the cgroup's own files.
	if used, _ := cpuOver(t, s, 200*time.Millisecond); used != 0 {
		t.Fatalf("CPU advanced by %s while frozen", used)
	}
	if err := s.Thaw(); err != nil {
		t.Fatal(err)
	}
	u0, _ := s.cg.CPUUsage()
	eventually(t, 5*time.Second, "CPU to advance after thaw", func() bool { u, _ := s.cg.CPUUsage(); return u > u0 })
	if st, _ := s.cg.FreezerState(); st != "THAWED" {
		t.Fatalf("freezer state after thaw = %q", st)
	}
}

func readTar(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func onlySnapshot(t *testing.T, s *Sandbox) SnapshotInfo {
	t.Helper()
	snaps := s.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots, want 1: %+v", len(snaps), snaps)
	}
	return snaps[0]
}

func TestSnapshotOnCrash(t *testing.T) {
	p := snapshotProvider(t, RelayOptions{})
	s := startSandbox(t, p, Spec{Name: "crash", Port: 1, Env: []string{"API_KEY=hunter2", "MODE=x"},
		Command: []string{"/bin/sh", "-c", "echo half-written > /tmp/crumb; echo cfg > $HOME/state; echo dying >&2; exit 3"}})
	waitDone(t, s, 20*time.Second)
	info := onlySnapshot(t, s) // taken before Done closed
	m := info.Manifest
	if m.Reason != "exit code 3" || m.Running || m.Freeze != nil || m.Stats.ExitCode != 3 || len(m.Errors) > 0 {
		t.Fatalf("manifest = %+v", m)
	}
	if _, err := exec.LookPath("criu"); err != nil && m.CRIU.Status != "skipped" {
		t.Errorf("criu absent but status %+v", m.CRIU)
	}
	files := readTar(t, filepath.Join(info.Dir, snapshotWritableFile))
	if files["tmp/crumb"] != "half-written\n" || files["home/state"] != "cfg\n" || m.Writable.Files != 2 {
		t.Fatalf("writable tar = %v, layer %+v", files, m.Writable)
	}
	if b, _ := os.ReadFile(filepath.Join(info.Dir, snapshotStderrFile)); !strings.Contains(string(b), "dying") {
		t.Errorf("stderr.txt = %q", b)
	}
	d, err := LoadSnapshot(info.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Config.Spec.Env, ",") != "API_KEY=REDACTED,MODE=x" || d.Config.Spec.Command[0] != "/bin/sh" {
		t.Errorf("config spec = %+v", d.Config.Spec)
	}
	// Tampering is caught by the manifest's digests.
	if err := os.WriteFile(filepath.Join(info.Dir, snapshotStderrFile), []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSnapshot(info.Dir); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("LoadSnapshot after tampering = %v", err)
	}
	// Snapshots survive Stop; a new one after Stop is refused.
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(info.Dir, SnapshotManifestFile)); err != nil {
		t.Fatalf("snapshot gone after Stop: %v", err)
	}
	if _, err := s.Snapshot(context.Background(), "late"); err == nil || !strings.Contains(err.Error(), "before Stop") {
		t.Fatalf("Snapshot after Stop = %v", err)
	}
}

func TestSnapshotOnMemoryBomb(t *testing.T) {
	p := snapshotProvider(t, RelayOptions{})
	s := startSandbox(t, p, Spec{Name: "bomb", Command: []string{roleTestAlloc, "256"}, Port: 1, Limits: Limits{MemoryBytes: 96 << 20}})
	waitDone(t, s, 30*time.Second)
	info := onlySnapshot(t, s)
	m := info.Manifest
	if m.Reason != "oom" || m.Stats.KilledBy != KilledByOOM || m.Stats.OOMKills == 0 {
		t.Fatalf("manifest = %+v", m)
	}
	var cg map[string]string
	b, _ := os.ReadFile(filepath.Join(info.Dir, snapshotCgroupFile))
	if err := json.Unmarshal(b, &cg); err != nil {
		t.Fatal(err)
	}
	oom := cg[filepath.Join("memory", testCgroupParent, s.ID(), "memory.oom_control")] + cg[filepath.Join(testCgroupParent, s.ID(), "memory.events")]
	if !strings.Contains(oom, "oom_kill 1") && !strings.Contains(oom, "oom_kill 2") {
		t.Fatalf("cgroup.json has no oom kill: %q (keys %d)", oom, len(cg))
	}
}

func TestSnapshotOnRequestFreezesAndThaws(t *testing.T) {
	p := snapshotProvider(t, RelayOptions{})
	s := startSandbox(t, p, modelSpec("snap"))
	waitReady(t, s)
	for i := 0; i < 2; i++ {
		if code := getJSON(t, s.Endpoint()+"/self", nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	eventually(t, 5*time.Second, "exchanges booked", func() bool { return len(s.Relay().Transcript()) == 2 })
	info, err := s.Snapshot(context.Background(), "operator asked")
	if err != nil {
		t.Fatal(err)
	}
	m := info.Manifest
	if !m.Running || m.Freeze == nil || !m.Freeze.Frozen || m.Exchanges != 2 || !strings.HasSuffix(info.Dir, "-01-operator-asked") {
		t.Fatalf("manifest = %+v in %s", m, info.Dir)
	}
	var procs []ProcessInfo
	b, _ := os.ReadFile(filepath.Join(info.Dir, snapshotProcsFile))
	if err := json.Unmarshal(b, &procs); err != nil || len(procs) < 2 {
		t.Fatalf("processes.json = %s (%v)", b, err)
	}
	// CRIU is best effort: with criu installed (CI installs it) the dump of
	// a running model is attempted and its outcome recorded either way; the
	// rest of the snapshot (asserted above) does not depend on it. Debian
	// 12's criu 3.17 cannot start on kernel 6.18 ("Unexpected rt vDSO area
	// bounds"), so here the recorded outcome is a failure with that reason.
	if _, err := exec.LookPath("criu"); err == nil {
		if (m.CRIU.Status != "ok" && m.CRIU.Status != "failed") || m.CRIU.Detail == "" {
			t.Fatalf("criu installed and the model running, but the dump outcome is %+v", m.CRIU)
		}
		t.Logf("criu dump: %s: %s", m.CRIU.Status, m.CRIU.Detail)
	}
	// Thawed again: the model answers.
	if code := getJSON(t, s.Endpoint()+"/", nil); code != 200 {
		t.Fatalf("after snapshot: %d", code)
	}
	if st, _ := s.cg.FreezerState(); st != "THAWED" {
		t.Fatalf("freezer after snapshot = %s", st)
	}
	var buf strings.Builder
	if err := TarSnapshot(info.Dir, &buf); err != nil || buf.Len() < 100 {
		t.Fatalf("TarSnapshot: %v (%d bytes)", err, buf.Len())
	}
	if len(s.Snapshots()) != 1 {
		t.Fatalf("a requested snapshot is not a failure: %d snapshots", len(s.Snapshots()))
	}
}

func TestSnapshotOnDeadline(t *testing.T) {
	p := snapshotProvider(t, RelayOptions{})
	s := startSandbox(t, p, Spec{Name: "late", Command: []string{"/bin/sh", "-c", spinner}, Port: 1, Limits: Limits{CPUs: 0.5, WallClock: 500 * time.Millisecond}})
	waitDone(t, s, 20*time.Second)
	m := onlySnapshot(t, s).Manifest
	if m.Reason != "deadline" || !m.Running || m.Freeze == nil || !m.Freeze.Frozen {
		t.Fatalf("manifest = %+v", m)
	}
	if st := s.Stats(); st.KilledBy != KilledByDeadline {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSnapshotOnBudgetBreach(t *testing.T) {
	p := snapshotProvider(t, RelayOptions{MaxRequests: 1})
	s := startSandbox(t, p, modelSpec("breach"))
	waitReady(t, s)
	getJSON(t, s.Endpoint()+"/", nil)
	if code := getJSON(t, s.Endpoint()+"/", nil); code != http.StatusTooManyRequests {
		t.Fatalf("request 2 = %d", code)
	}
	eventually(t, 20*time.Second, "the breach snapshot", func() bool { return len(s.Snapshots()) == 1 })
	m := s.Snapshots()[0].Manifest
	if m.Reason != "requests budget exceeded" || !m.Running || m.Freeze == nil || !m.Freeze.Frozen {
		t.Fatalf("manifest = %+v", m)
	}
}

func TestPoisoningGuard(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	mk := func() string {
		dir := filepath.Join(t.TempDir(), "model")
		if err := os.MkdirAll(filepath.Join(dir, "shards"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"weights.bin": "w0", "shards/a": "a", "config.json": "{}"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	run := func(dir string, tamper func()) TeardownReport {
		s := startSandbox(t, p, Spec{Name: "guard", Command: []string{"sleep", "30"}, NoRelay: true, WorkDir: dir})
		if n := len(s.ModelFiles().Files); n < 6 && !p.opt.SkipModelDigest { // sleep, dir, shards/, 3 files
			t.Fatalf("digest before start has %d files: %+v", n, s.ModelFiles())
		}
		tamper()
		rep, err := s.Teardown(context.Background())
		t.Logf("teardown: %v", err)
		return rep
	}
	// Control: nothing touched, nothing flagged.
	if rep := run(mk(), func() {}); rep.ModelFiles.Changed || !rep.Wipe.Clean {
		t.Fatalf("untouched model: %+v", rep)
	}
	dir := mk()
	rep := run(dir, func() {
		os.WriteFile(filepath.Join(dir, "weights.bin"), []byte("poisoned"), 0o644)
		os.Remove(filepath.Join(dir, "shards/a"))
		os.WriteFile(filepath.Join(dir, "extra"), nil, 0o644)
		os.Chmod(filepath.Join(dir, "config.json"), 0o600)
	})
	got := map[string]string{}
	for _, c := range rep.ModelFiles.Changes {
		got[strings.TrimPrefix(c.Path, dir+"/")] = c.Change
	}
	want := map[string]string{"weights.bin": "modified", "shards/a": "removed", "extra": "added", "config.json": "mode"}
	if !rep.ModelFiles.Changed || len(got) != len(want) {
		t.Fatalf("changes = %+v", rep.ModelFiles.Changes)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// Turned off, the guard says so rather than reporting "unchanged".
	p.opt.SkipModelDigest = true
	if rep := run(mk(), func() {}); !rep.ModelFiles.Skipped || rep.ModelFiles.Changed {
		t.Fatalf("skipped guard: %+v", rep.ModelFiles)
	}
}

func TestWipeVerification(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, modelSpec("wipe-verify"))
	waitReady(t, s)
	// Control: while it runs, every check finds something.
	live := s.VerifyWipe()
	if live.Clean || len(live.Processes) < 2 || len(live.CgroupDirs) == 0 || len(live.Mounts) != 2 || len(live.Paths) != 2 || !live.InitAlive {
		t.Fatalf("running sandbox looks wiped: %+v", live)
	}
	init := s.proc.Pid
	rep, err := s.Teardown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Wipe.Clean || len(rep.Wipe.Checked) < 4 {
		t.Fatalf("wipe = %+v", rep.Wipe)
	}
	if err := syscall.Kill(init, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("init %d still there: %v", init, err)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b\011c\134d\9`); got != "/a b\tc\\d\\9" {
		t.Fatalf("got %q", got)
	}
}
