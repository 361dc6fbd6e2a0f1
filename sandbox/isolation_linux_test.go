package sandbox

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
	"golang.org/x/sys/unix"
)

// Roles for the isolation tests. Each prints one JSON object on stdout and
// runs the same way inside a sandbox and, as the control, on the host.
const (
	// roleTestFS: sandgate-test-fs read:<path>|write:<path>...
	roleTestFS = "sandgate-test-fs"
	// roleTestPriv tries privileged operations; see testPrivMain.
	roleTestPriv = "sandgate-test-priv"
)

func init() {
	reexec.Register(roleTestFS, testFSMain)
	reexec.Register(roleTestPriv, testPrivMain)
}

// testFSMain reports, per operation, "" for success or the error.
func testFSMain() {
	res := map[string]string{}
	for _, op := range os.Args[1:] {
		kind, p, _ := strings.Cut(op, ":")
		var err error
		switch kind {
		case "read":
			_, err = os.ReadFile(p)
		case "write":
			err = os.WriteFile(p, []byte("written from "+roleTestFS), 0o600)
		default:
			err = fmt.Errorf("unknown op %q", kind)
		}
		res[op] = errString(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// testPrivMain: sandgate-test-priv <scratch dir>. Every attempt is harmless
// on the host: unshare changes only this thread of this short-lived
// process, the mount lands on a fresh directory and is undone, and the
// ptrace target is our own child.
func testPrivMain() {
	runtime.LockOSThread() // never unlocked: the thread may be in a new netns
	res := map[string]string{}
	res["unshare_net"] = errString(unix.Unshare(unix.CLONE_NEWNET))

	dir := filepath.Join(os.Args[1], "mnt")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		res["mount"] = "mkdir: " + err.Error()
	} else {
		err := unix.Mount("sandgate-test", dir, "tmpfs", 0, "size=1m")
		if err == nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
		res["mount"] = errString(err)
	}

	child := exec.Command("sleep", "10")
	if err := child.Start(); err != nil {
		res["ptrace"] = "start child: " + err.Error()
	} else {
		err := unix.PtraceAttach(child.Process.Pid)
		res["ptrace"] = errString(err)
		_ = child.Process.Kill()
		_ = child.Wait()
	}
	st := procStatus("/proc/self/status")
	res["cap_eff"], res["cap_bnd"] = st["CapEff"], st["CapBnd"]
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

// runInSandbox runs argv with no relay and returns its stdout once it has
// exited, failing the test unless it exited 0.
func runInSandbox(t *testing.T, p *ProcessProvider, spec Spec) (*Sandbox, string) {
	t.Helper()
	spec.NoRelay, spec.Port = true, 0
	if spec.Limits.WallClock == 0 {
		spec.Limits.WallClock = 30 * time.Second
	}
	s := startSandbox(t, p, spec)
	waitDone(t, s, 40*time.Second)
	return s, s.StdoutTail()
}

// runOnHost runs a role of this test binary outside any sandbox.
func runOnHost(t *testing.T, role string, args ...string) string {
	t.Helper()
	cmd := reexec.Command(role, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("control %s on the host: %v", role, err)
	}
	return string(out)
}

func decodeResult(t *testing.T, what, out string) map[string]string {
	t.Helper()
	var res map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("%s: decode %q: %v", what, out, err)
	}
	return res
}

func TestIsolationEvidenceRecorded(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s := startSandbox(t, p, modelSpec("evidence"))
	iso := s.Isolation()
	b, _ := json.MarshalIndent(iso, "", "  ")
	t.Logf("isolation evidence:\n%s", b)
	if err := iso.Check(); err != nil {
		t.Fatal(err)
	}
	if iso.Filesystem != FilesystemScratchRoot {
		t.Errorf("filesystem = %q", iso.Filesystem)
	}
	for name, v := range map[string]string{
		"CapEff": iso.Capabilities.Effective, "CapPrm": iso.Capabilities.Permitted,
		"CapInh": iso.Capabilities.Inheritable, "CapBnd": iso.Capabilities.Bounding, "CapAmb": iso.Capabilities.Ambient,
	} {
		if v != "0000000000000000" {
			t.Errorf("%s = %q inside, want 0", name, v)
		}
	}
	if iso.InitThread == nil || iso.InitThread.Bounding != "0000000000000000" {
		t.Errorf("init thread seen from outside: %+v", iso.InitThread)
	}
	if iso.Seccomp.Mode != 2 || iso.Seccomp.Filters < 2 || !strings.Contains(strings.Join(iso.Seccomp.Denied, ","), "io_uring_setup") {
		t.Errorf("seccomp = %+v", iso.Seccomp)
	}
	if abi, _ := landlockABI(); abi > 0 && (!iso.Landlock.Applied || iso.Landlock.ABI != abi) {
		t.Errorf("landlock ABI %d on this kernel but evidence %+v", abi, iso.Landlock)
	}
	for _, a := range iso.Attempts {
		if !a.Blocked {
			t.Errorf("%s not blocked", a.Target)
		}
		if strings.Contains(a.Target, "(") && !strings.Contains(a.Err, "operation not permitted") {
			t.Errorf("%s: %s, want EPERM", a.Target, a.Err)
		}
	}
	ro := map[string]bool{}
	for _, m := range iso.Mounts {
		ro[m.Target] = m.ReadOnly
	}
	for target, want := range map[string]bool{"/": true, "/usr": true, sandboxExe: true, "/etc/passwd": true, "/proc/sys": true, "/tmp": false, sandboxHome: false} {
		if got, ok := ro[target]; !ok || got != want {
			t.Errorf("mount %s: present %v read-only %v, want read-only %v", target, ok, got, want)
		}
	}
	// The Sandbox's JSON record carries both halves.
	all, err := json.Marshal(s.AllEvidence())
	if err != nil || !strings.Contains(string(all), `"cap_eff"`) && !strings.Contains(string(all), `"effective"`) {
		t.Errorf("evidence JSON %s (%v)", all, err)
	}
}

func landlockABI() (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// hostSecret creates a file outside anything a sandbox binds.
func hostSecret(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "sandgate-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilesystemReadsAndWritesConfined(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	secret := hostSecret(t)
	work := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "weights"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostOut := filepath.Join(filepath.Dir(secret), "written")
	ops := []string{
		"read:" + secret,                         // host file outside the bound tree
		"read:" + filepath.Join(work, "weights"), // the model's own files
		"read:/etc/shadow",                       // root-owned secret, not bound
		"write:" + hostOut,                       // host dir outside the tree
		"write:" + filepath.Join(work, "out"),    // model files are read-only
		"write:/usr/sandgate-test",
		"write:/etc/sandgate-test",
		"write:/sandgate-test",
		"write:/tmp/ok",                // tmpfs
		"write:" + sandboxHome + "/ok", // tmpfs
	}

	// Control: on the host, the outside reads and writes work.
	host := decodeResult(t, "host control", runOnHost(t, roleTestFS, "read:"+secret, "write:"+hostOut, "write:"+filepath.Join(work, "out")))
	for op, err := range host {
		if err != "" {
			t.Fatalf("control %s on the host failed: %s", op, err)
		}
	}
	_ = os.Remove(hostOut)
	_ = os.Remove(filepath.Join(work, "out"))

	_, out := runInSandbox(t, p, Spec{Name: "fs", Command: append([]string{roleTestFS}, ops...), WorkDir: work})
	in := decodeResult(t, "inside", out)
	t.Logf("inside: %v", in)
	for _, op := range ops {
		err, ok := in[op]
		allowed := strings.Contains(op, "weights") || strings.HasSuffix(op, "/ok")
		switch {
		case !ok:
			t.Errorf("%s: no result", op)
		case allowed && err != "":
			t.Errorf("%s failed inside: %s", op, err)
		case !allowed && err == "":
			t.Errorf("%s succeeded inside the sandbox", op)
		}
	}
	for _, f := range []string{hostOut, filepath.Join(work, "out")} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists on the host after the sandboxed write (%v)", f, err)
		}
	}
}

// TestLandlockConfinesWritesOnHostFilesystem shows Landlock on its own: with
// the host's tree visible, writes still land only in the scratch dir.
func TestLandlockConfinesWritesOnHostFilesystem(t *testing.T) {
	if abi, _ := landlockABI(); abi <= 0 {
		t.Skip("no Landlock on this kernel")
	}
	p := newTestProvider(t, RelayOptions{})
	p.opt.HostFilesystem = true
	secret := hostSecret(t)
	hostOut := filepath.Join(filepath.Dir(secret), "written")
	s, out := runInSandbox(t, p, Spec{Name: "landlock", Command: []string{roleTestFS, "read:" + secret, "write:" + hostOut, "write:/tmp/sandgate-landlock-test"}})
	in := decodeResult(t, "inside", out)
	if in["read:"+secret] != "" {
		t.Errorf("read with the host tree visible failed: %s", in["read:"+secret])
	}
	for _, op := range []string{"write:" + hostOut, "write:/tmp/sandgate-landlock-test"} {
		if !strings.Contains(in[op], "permission denied") {
			t.Errorf("%s inside = %q, want Landlock's EACCES", op, in[op])
		}
	}
	if iso := s.Isolation(); iso.Filesystem != FilesystemHost || !iso.Landlock.Applied {
		t.Errorf("evidence = %+v", iso)
	}
}

func TestPrivilegedOperationsFail(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})

	// Control: root on the host can do all of it.
	host := decodeResult(t, "host control", runOnHost(t, roleTestPriv, t.TempDir()))
	for _, k := range []string{"unshare_net", "mount", "ptrace"} {
		if host[k] != "" {
			t.Fatalf("control %s on the host failed: %s", k, host[k])
		}
	}
	if host["cap_eff"] == "0000000000000000" {
		t.Fatal("control: the test runs without capabilities")
	}

	_, out := runInSandbox(t, p, Spec{Name: "priv", Command: []string{roleTestPriv, "/tmp"}})
	in := decodeResult(t, "inside", out)
	t.Logf("inside: %v", in)
	for _, k := range []string{"unshare_net", "mount", "ptrace"} {
		if in[k] != syscall.EPERM.Error() {
			t.Errorf("%s inside = %q, want %q", k, in[k], syscall.EPERM.Error())
		}
	}
	if in["cap_eff"] != "0000000000000000" || in["cap_bnd"] != "0000000000000000" {
		t.Errorf("inside CapEff %s CapBnd %s, want 0", in["cap_eff"], in["cap_bnd"])
	}

	// The unshare(1) binary, as a user would try it.
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare binary")
	}
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Fatalf("control: unshare -n true on the host: %v %s", err, out)
	}
	s, _ := func() (*Sandbox, string) {
		spec := Spec{Name: "unshare", Command: []string{"/bin/sh", "-c", "unshare -n true; echo status=$?"}, NoRelay: true, Limits: Limits{WallClock: 20 * time.Second}}
		s := startSandbox(t, p, spec)
		waitDone(t, s, 30*time.Second)
		return s, ""
	}()
	if !strings.Contains(s.StdoutTail(), "status=1") || !strings.Contains(s.StderrTail(), "Operation not permitted") {
		t.Errorf("unshare -n true inside: stdout %q stderr %q", s.StdoutTail(), s.StderrTail())
	}
}

// TestBashDevTCPEgressBlocked is issue 4's acceptance check.
func TestBashDevTCPEgressBlocked(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	p := newTestProvider(t, RelayOptions{})
	ln := testutil.AcceptingListener(t, "127.0.0.1:0")
	script := "exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bash, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("control: bash -c %q on the host: %v %s", script, err, out)
	}

	s := startSandbox(t, p, Spec{Name: "devtcp", Command: []string{bash, "-c", script}, NoRelay: true, Limits: Limits{WallClock: 20 * time.Second}})
	waitDone(t, s, 30*time.Second)
	st := s.Stats()
	if st.ExitCode == 0 {
		t.Fatalf("bash reached the host listener from inside: %+v", st)
	}
	if st.ExitStatus != st.ExitCode {
		t.Errorf("exit status %d, code %d", st.ExitStatus, st.ExitCode)
	}
	t.Logf("inside: exit %d, stderr %q", st.ExitCode, strings.TrimSpace(s.StderrTail()))
}

func TestNoRelaySpec(t *testing.T) {
	p := newTestProvider(t, RelayOptions{})
	s, out := runInSandbox(t, p, Spec{Name: "norelay", Command: []string{"/bin/sh", "-c", "echo hi; exit 7"}})
	if strings.TrimSpace(out) != "hi" || s.Endpoint() != "" || s.Relay() != nil {
		t.Errorf("stdout %q endpoint %q", out, s.Endpoint())
	}
	if st := s.Stats(); st.ExitCode != 7 || st.ExitStatus != 7 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(s.ScratchDir(), "model.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket exists without a relay: %v", err)
	}
	_, err := p.Start(context.Background(), Spec{Name: "bad", Command: []string{"true"}, NoRelay: true, Port: 80})
	if err == nil || !strings.Contains(err.Error(), "NoRelay") {
		t.Errorf("NoRelay with a port: %v", err)
	}
}
