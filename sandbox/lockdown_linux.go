package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ProbeRole is the reexec role that records, from inside, what the model
// will be able to do. The shim starts it exactly as it starts the model.
const ProbeRole = "sandgate-sandbox-probe"

// deniedSyscalls fail with EPERM for the model. Names the running
// architecture lacks are skipped (and so not listed in the evidence).
var deniedSyscalls = []string{
	// Escaping or re-shaping the sandbox.
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"open_by_handle_at",
	// Reaching into other processes.
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// Kernel attack surface a model server has no use for.
	"bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "lookup_dcookie",
	"iopl", "ioperm",
}

// nsCloneFlags are the clone(2) flags that create namespaces. (CLONE_NEWTIME
// shares its bit with the exit signal in clone(2) and exists only for
// unshare and clone3, both refused anyway.)
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// lockDown confines the calling OS thread, which must be locked and must be
// the one that forks the model: no_new_privs, Landlock (best effort), no
// capabilities in any set, and the seccomp filter. Children inherit all of
// it across fork and execve.
func lockDown(ro, rw, devs []string) (SeccompEvidence, LandlockEvidence, error) {
	var sc SeccompEvidence
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return sc, LandlockEvidence{}, fmt.Errorf("set no_new_privs: %w", err)
	}
	ll, err := applyLandlock(ro, rw, devs)
	if err != nil {
		return sc, ll, err
	}
	if err := dropCapabilities(); err != nil {
		return sc, ll, err
	}
	sc, err = installSeccomp()
	return sc, ll, err
}

// applyLandlock lets the thread read (and execute) ro, read and write rw
// and the device nodes devs, and list any directory; nothing else. Absent
// paths are skipped; without kernel support nothing is enforced and the
// evidence says so.
func applyLandlock(ro, rw, devs []string) (LandlockEvidence, error) {
	ev := LandlockEvidence{ReadOnly: ro, Writable: append(slices.Clone(rw), devs...)}
	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi <= 0 {
		ev.Status = fmt.Sprintf("landlock unavailable on this kernel (%v)", err)
		return ev, nil
	}
	ev.ABI = abi
	var roDirs, roFiles []string
	for _, p := range ro {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case fi.IsDir():
			roDirs = append(roDirs, p)
		default:
			roFiles = append(roFiles, p)
		}
	}
	rules := []landlock.Rule{
		// Listing is harmless: the mount namespace already decides what
		// exists; without it `ls /` and path walks in runtimes fail.
		landlock.PathAccess(llsys.AccessFSReadDir, "/"),
		landlock.RODirs(roDirs...),
		landlock.ROFiles(roFiles...),
		landlock.RWDirs(rw...).WithRefer().IgnoreIfMissing(),
		landlock.RWFiles(devs...).WithIoctlDev().IgnoreIfMissing(),
	}
	// Filesystem rights and IPC scopes only: the model must still listen on
	// its TCP port, and network isolation comes from the empty namespace.
	cfg := landlock.Config{HandledAccessFS: landlock.V11.HandledAccessFS, Scoped: landlock.V11.Scoped}.BestEffort()
	fd, flags, err := cfg.NewRulesetFD(rules...)
	if err != nil {
		return ev, fmt.Errorf("landlock ruleset: %w", err)
	}
	if fd < 0 {
		ev.Status = "nothing to enforce at ABI " + strconv.Itoa(abi)
		return ev, nil
	}
	defer unix.Close(fd)
	// Only this thread: it forks the model, and the shim's other threads
	// must still reach the relay socket.
	if err := llsys.LandlockRestrictSelf(fd, flags); err != nil {
		return ev, fmt.Errorf("landlock restrict_self: %w", err)
	}
	ev.Applied = true
	ev.Status = fmt.Sprintf("enforced, best effort at ABI %d: filesystem rights and IPC scopes", abi)
	return ev, nil
}

// Secure bits: root gets no capabilities from execve, setuid does not fix
// them up, they cannot be kept or raised as ambient, and all of it locked.
const secureBits = 1<<0 | 1<<1 | // SECBIT_NOROOT(_LOCKED)
	1<<2 | 1<<3 | // SECBIT_NO_SETUID_FIXUP(_LOCKED)
	1<<5 | // SECBIT_KEEP_CAPS_LOCKED (KEEP_CAPS off)
	1<<6 | 1<<7 // SECBIT_NO_CAP_AMBIENT_RAISE(_LOCKED)

// dropCapabilities empties every capability set of the calling thread. The
// bounding set matters most: uid 0 would otherwise regain the full set at
// the model's execve.
func dropCapabilities() error {
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secureBits, 0, 0, 0); err != nil {
		return fmt.Errorf("set securebits: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear capability sets: %w", err)
	}
	return nil
}

// installSeccomp loads two filters on the calling thread: the deny list
// (go-seccomp-bpf), and a guard that kills any syscall made through a
// foreign ABI (i386 int 0x80 on amd64 would bypass a per-number deny list)
// and answers clone3 with ENOSYS, whose namespace flags live in memory a
// filter cannot read; libcs then fall back to clone(2), which is checked.
func installSeccomp() (SeccompEvidence, error) {
	var ev SeccompEvidence
	info, err := arch.GetInfo("")
	if err != nil {
		return ev, fmt.Errorf("seccomp: %w", err)
	}
	for _, n := range deniedSyscalls {
		if _, ok := info.SyscallNames[n]; ok {
			ev.Denied = append(ev.Denied, n)
		}
	}
	policy := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{{
			Action: seccomp.ActionErrno,
			Names:  ev.Denied,
			NamesWithCondtions: []seccomp.NameWithConditions{{
				Name:       "clone",
				Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: nsCloneFlags}},
			}},
		}},
	}
	if err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: policy}); err != nil {
		return ev, fmt.Errorf("seccomp deny list: %w", err)
	}
	ev.Rules = append(ev.Rules, "clone with namespace flags: EPERM")

	guard := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
	}
	if nr, ok := info.SyscallNames["clone3"]; ok {
		guard = append(guard,
			bpf.LoadAbsolute{Off: 0, Size: 4}, // seccomp_data.nr
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		)
		ev.Rules = append(ev.Rules, "clone3: ENOSYS")
	}
	guard = append(guard, bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW})
	raw, err := bpf.Assemble(guard)
	if err != nil {
		return ev, fmt.Errorf("seccomp guard: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return ev, fmt.Errorf("seccomp guard: %w", errno)
	}
	ev.Rules = append(ev.Rules, "syscalls of another ABI than "+info.Name+": kill process")
	return ev, nil
}

// probeResult is what the probe role prints.
type probeResult struct {
	Uid          int          `json:"uid"`
	Capabilities Capabilities `json:"capabilities"`
	NoNewPrivs   bool         `json:"no_new_privs"`
	Seccomp      int          `json:"seccomp"`
	Filters      int          `json:"filters"`
	Mounts       []Mount      `json:"mounts"`
	Attempts     []Probe      `json:"attempts"`
	Controls     []Probe      `json:"controls"`
}

// probeMain is ProbeRole: sandgate-sandbox-probe <writable dir>...
func probeMain() {
	var out probeResult
	out.Uid = os.Getuid()
	st := procStatus("/proc/self/status")
	out.Capabilities = capsFromStatus(st)
	out.NoNewPrivs = st["NoNewPrivs"] == "1"
	out.Seccomp, _ = strconv.Atoi(st["Seccomp"])
	out.Filters, _ = strconv.Atoi(st["Seccomp_filters"])
	out.Mounts = readMountinfo("/proc/self/mountinfo")

	// Every attempt below is built to be harmless if it succeeds, and
	// still: run none of them unless already confined. Started by hand on
	// a host as root, this role must not mount or trace anything.
	if !out.NoNewPrivs || out.Seccomp != 2 || len(os.Args) < 2 {
		out.Attempts = []Probe{{Target: "probe", Err: "refused: not started by a sandbox's init (no seccomp filter)"}}
		_ = json.NewEncoder(os.Stdout).Encode(out)
		return
	}
	scratch := os.Args[1]
	attempt := func(name string, err error) {
		p := Probe{Target: name, Blocked: err != nil}
		if err != nil {
			p.Err = err.Error()
		}
		out.Attempts = append(out.Attempts, p)
	}
	attempt("unshare(CLONE_NEWNET)", unix.Unshare(unix.CLONE_NEWNET))
	mnt := filepath.Join(scratch, ".sandgate-probe-mnt")
	if err := os.Mkdir(mnt, 0o700); err == nil {
		err := unix.Mount("sandgate-probe", mnt, "tmpfs", 0, "size=4k")
		if err == nil {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
		attempt("mount(tmpfs)", err)
		_ = os.Remove(mnt)
	}
	if sleep, err := exec.LookPath("sleep"); err == nil {
		// Our own child: the only process an attach could disturb.
		c := exec.Command(sleep, "10")
		if err := c.Start(); err == nil {
			attempt("ptrace(PTRACE_ATTACH, child)", unix.PtraceAttach(c.Process.Pid))
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	if fd, err := unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		attempt("setns(net)", unix.Setns(fd, unix.CLONE_NEWNET))
		unix.Close(fd)
	}
	_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	attempt("keyctl", err)
	attempt("bpf", rawErr(unix.Syscall(unix.SYS_BPF, 0, 0, 0)))
	var params [120]byte // struct io_uring_params
	attempt("io_uring_setup", rawErr(unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)))
	if sh, err := exec.LookPath("true"); err == nil {
		// A raw clone(CLONE_NEWUSER): unprivileged user namespaces are on
		// here, so only seccomp stands in the way.
		c := exec.Command(sh)
		c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		attempt("clone(CLONE_NEWUSER)", c.Run())
	}
	for _, p := range []string{"/.sandgate-probe", "/usr/.sandgate-probe", "/etc/.sandgate-probe"} {
		attempt("write "+p, writeProbe(p))
	}
	for _, d := range os.Args[1:] {
		p := filepath.Join(d, ".sandgate-probe")
		c := Probe{Target: "write " + p}
		if err := writeProbe(p); err != nil {
			c.Blocked, c.Err = true, err.Error()
		}
		out.Controls = append(out.Controls, c)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func rawErr(_, _ uintptr, errno unix.Errno) error {
	if errno != 0 {
		return errno
	}
	return nil
}

// writeProbe creates and removes a file, so a probe that unexpectedly
// succeeds leaves nothing behind.
func writeProbe(p string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(p)
}

// procStatus parses a /proc/<pid>/status file into its fields.
func procStatus(path string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func capsFromStatus(st map[string]string) Capabilities {
	return Capabilities{
		Inheritable: st["CapInh"], Permitted: st["CapPrm"], Effective: st["CapEff"],
		Bounding: st["CapBnd"], Ambient: st["CapAmb"],
	}
}

// readMountinfo lists mounts with their per-mount read-only flag.
func readMountinfo(path string) []Mount {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 2 {
			continue
		}
		opts := a[5]
		out = append(out, Mount{
			Target: a[4], FSType: b[0], Source: b[1], Options: opts,
			ReadOnly: slices.Contains(strings.Split(opts, ","), "ro"),
		})
	}
	return out
}

// runProbe starts ProbeRole from the calling (locked, locked-down) thread
// and returns what it found.
func runProbe(ctx context.Context, exe string, env []string, writable []string) (probeResult, error) {
	var res probeResult
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, writable...)
	cmd.Args[0] = ProbeRole
	// A race-detector build sleeps 1s at exit by default; the probe is
	// on every sandbox's start path. Other builds ignore the variable.
	cmd.Env = append(slices.Clone(env), "GORACE=atexit_sleep_ms=0")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("isolation probe: %w; stderr: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("isolation probe output %q: %w", out, err)
	}
	return res, nil
}

// crossCheckIsolation reads, from outside, the status of the shim thread
// that forks the model (tid in the sandbox's pid namespace).
func crossCheckIsolation(pid, tid int, ev *IsolationEvidence) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("list sandbox init threads: %w", err)
	}
	for _, t := range tasks {
		st := procStatus(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		ids := strings.Fields(st["NSpid"])
		if len(ids) == 0 || ids[len(ids)-1] != strconv.Itoa(tid) {
			continue
		}
		c := capsFromStatus(st)
		ev.InitThread = &c
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
			return fmt.Errorf("init thread %d: seccomp %q, no_new_privs %q from outside", tid, st["Seccomp"], st["NoNewPrivs"])
		}
		return nil
	}
	return fmt.Errorf("init thread %d not found under /proc/%d/task", tid, pid)
}
