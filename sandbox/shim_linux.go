package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// InitRole is the reexec role of the sandbox's PID 1.
const InitRole = "sandgate-sandbox-init"

func init() {
	reexec.Register(InitRole, func() { os.Exit(runShim()) })
	reexec.Register(ProbeRole, probeMain)
}

// File descriptors the parent hands the shim (ExtraFiles start at 3).
const (
	shimConfigFD = 3 // parent -> shim: shimConfig (after cgroup placement), then shimGo
	shimReportFD = 4 // shim -> parent: newline-delimited JSON shimReport
)

// shimConfig is everything the shim needs; it arrives on a pipe rather than
// argv/env so the model never sees it.
type shimConfig struct {
	ID       string   `json:"id"`
	Hostname string   `json:"hostname"`
	Argv     []string `json:"argv"`
	Role     bool     `json:"role"` // Argv[0] is a reexec role of this binary
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
	Port     int      `json:"port"`
	// Socket is the relay's unix socket; empty for Spec.NoRelay.
	Socket string `json:"socket,omitempty"`
	// Root, when set, is how to build the scratch root; nil shares the
	// host's tree (ProcessOptions.HostFilesystem).
	Root *rootConfig `json:"root,omitempty"`
	// Writable are the host scratch dirs the model may write to when Root
	// is nil (Landlock is then the only fence).
	Writable []string `json:"writable,omitempty"`
	// Probes are "tcp:host:port" or "dns:name" egress attempts made before
	// the model starts.
	Probes []string `json:"probes"`
	// Egress, when set, opens the way to the allowlisted services.
	Egress *shimEgress `json:"egress,omitempty"`
}

// shimGo is the parent's second message: start the model (or not).
type shimGo struct {
	Start bool `json:"start"`
}

// Exit status of the shim when it fails before the model runs; distinct
// from anything a model returns in practice.
const shimFailedStatus = 125

// runShim is PID 1 of a sandbox. It finishes the isolation the clone flags
// began, records the network evidence, starts the model, forwards the unix
// socket to the model's port, forwards signals and reaps orphans. When the
// model exits the shim exits, and the kernel kills whatever else is left in
// the pid namespace.
func runShim() int {
	// no_new_privs (and, later, seccomp) are per thread: pin this goroutine
	// so the thread that sets them is the one that forks the model. The
	// shim exits from here, so the thread is never handed back.
	runtime.LockOSThread()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", InitRole)
	// The inherited pipe ends are not close-on-exec; without this the model
	// would hold them and could forge reports.
	for _, fd := range []int{shimConfigFD, shimReportFD} {
		unix.CloseOnExec(fd)
	}
	report := json.NewEncoder(os.NewFile(shimReportFD, "report"))
	fail := func(err error) int {
		log.Error("sandbox init failed", "err", err)
		_ = report.Encode(shimReport{Type: reportError, Error: err.Error()})
		return shimFailedStatus
	}

	cfgFile := os.NewFile(shimConfigFD, "config")
	defer cfgFile.Close()
	fromParent := json.NewDecoder(cfgFile)
	var cfg shimConfig
	if err := fromParent.Decode(&cfg); err != nil {
		return fail(fmt.Errorf("read config from parent: %w", err))
	}
	if err := shimSetup(cfg); err != nil {
		return fail(err)
	}
	// Non-dumpable: the model (same uid) cannot open /proc/1/fd, /proc/1/mem
	// or /proc/1/root of the shim, whose other threads keep capabilities.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("make init non-dumpable: %w", err))
	}
	// The relay socket lives in the host scratch dir, which the scratch root
	// does not contain: listen before pivot_root and keep the fd.
	var ln net.Listener
	if cfg.Socket != "" {
		_ = os.Remove(cfg.Socket)
		l, err := net.Listen("unix", cfg.Socket)
		if err != nil {
			return fail(fmt.Errorf("listen on relay socket %s: %w", cfg.Socket, err))
		}
		ln = l
		defer ln.Close()
	}
	// Also before pivot_root: the egress socket's directory is not in the
	// new root either.
	var egress *egressShim
	if cfg.Egress != nil {
		e, err := openEgressShim(*cfg.Egress, log)
		if err != nil {
			return fail(err)
		}
		defer e.close()
		egress = e
		cfg.Env = e.env(cfg.Env)
	}
	if cfg.Root != nil {
		if err := enterScratchRoot(*cfg.Root); err != nil {
			return fail(err)
		}
	}
	cmd, err := modelCommand(cfg)
	if err != nil {
		return fail(err)
	}
	ev, err := gatherEvidence(cfg.Probes)
	if err != nil {
		return fail(err)
	}
	if egress != nil && len(cfg.Probes) > 0 {
		ev.Egress = egress.evidence(cfg.Probes[0])
	}
	iso, err := lockDownAndProbe(cfg)
	if err != nil {
		return fail(err)
	}

	// The parent checks the evidence from outside before the model may run.
	if err := report.Encode(shimReport{Type: reportSealed, Evidence: &ev, Isolation: &iso, LockedTid: unix.Gettid()}); err != nil {
		return shimFailedStatus
	}
	var goAhead shimGo
	if err := fromParent.Decode(&goAhead); err != nil || !goAhead.Start {
		return shimFailedStatus // the parent refused or went away
	}

	// Signals must be caught before the model starts so none is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start model %q: %w", cfg.Argv[0], err))
	}
	pid := cmd.Process.Pid
	// We reap with wait4(-1) below, so the os.Process handle is not used.
	_ = cmd.Process.Release()
	if err := report.Encode(shimReport{Type: reportStarted, ModelPid: pid}); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return shimFailedStatus
	}

	if ln != nil {
		go forwardConns(ln, cfg.Port, log)
	}
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()

	ws := reapUntil(pid)
	out := shimReport{Type: reportExit}
	status := 0
	switch {
	case ws.Signaled():
		out.ExitCode, out.Signal, out.SignalNum = -1, unix.SignalName(ws.Signal()), int(ws.Signal())
		status = 128 + int(ws.Signal())
	default:
		out.ExitCode = ws.ExitStatus()
		status = ws.ExitStatus()
	}
	_ = report.Encode(out)
	return status
}

// shimSetup finishes isolation inside the new namespaces.
func shimSetup(cfg shimConfig) error {
	// Keep our mounts from propagating back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// A fresh /proc shows only this pid namespace to the model (the
	// scratch root mounts its own).
	if cfg.Root == nil {
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount /proc for the new pid namespace: %w", err)
		}
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find loopback in sandbox netns: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring loopback up: %w", err)
	}
	return nil
}

func modelCommand(cfg shimConfig) (*exec.Cmd, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("empty model command")
	}
	var cmd *exec.Cmd
	if cfg.Role {
		cmd = reexec.Command(cfg.Argv[0], cfg.Argv[1:]...)
		if cfg.Root != nil {
			// /proc/self/exe would jump to the host's file, outside what
			// Landlock lets the model execute.
			cmd.Path = sandboxExe
		}
	} else {
		path, err := lookPath(cfg.Argv[0], cfg.Env)
		if err != nil {
			return nil, err
		}
		cmd = &exec.Cmd{Path: path, Args: cfg.Argv}
	}
	// The pid namespace, not a death signal, bounds the model's life: it
	// dies when this process does. Drop reexec's default.
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	cmd.Env = cfg.Env
	cmd.Dir = cfg.Dir
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// lookPath resolves name against the model's PATH, not the shim's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("model command %q not found in PATH %q inside the sandbox (bind its directory with Spec.ReadOnlyPaths)", name, path)
}

// reapUntil reaps every child (orphans reparent to us as PID 1) until the
// model itself exits, and returns its status.
func reapUntil(model int) syscall.WaitStatus {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// ECHILD: nothing left to wait for, so the model is gone.
			return ws
		}
		if pid == model {
			return ws
		}
	}
}

// forwardConns joins each connection on the relay socket to the model's
// TCP port on the sandbox's own loopback.
func forwardConns(ln net.Listener, port int, log *slog.Logger) {
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("relay socket accept", "err", err)
			}
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return // the harness sees EOF: the model is not listening yet
			}
			defer up.Close()
			splice(c, up)
		}()
	}
}

// splice copies both ways, passing half-closes through so request/response
// protocols that close their write side still work.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// gatherEvidence records the sandbox's network as the model will find it.
func gatherEvidence(probes []string) (NetEvidence, error) {
	var ev NetEvidence
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ev, fmt.Errorf("read own netns: %w", err)
	}
	ev.Namespace = ns
	ifs, err := net.Interfaces()
	if err != nil {
		return ev, fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		ev.Interfaces = append(ev.Interfaces, i.Name)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return ev, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		ev.Routes = append(ev.Routes, formatRoute(r))
	}
	slices.Sort(ev.Routes)
	for _, target := range probes {
		ev.EgressProbes = append(ev.EgressProbes, probe(target))
	}
	return ev, nil
}

func formatRoute(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		if ones, _ := r.Dst.Mask.Size(); ones > 0 || !r.Dst.IP.IsUnspecified() {
			dst = r.Dst.String()
		}
	}
	var b strings.Builder
	b.WriteString(dst)
	if r.Gw != nil {
		b.WriteString(" via " + r.Gw.String())
	}
	if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
		b.WriteString(" dev " + l.Attrs().Name)
	}
	fmt.Fprintf(&b, " table %d type %d", r.Table, r.Type)
	return b.String()
}

// probe attempts one egress; Blocked means it could not get out.
func probe(target string) Probe {
	p := Probe{Target: target}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	switch {
	case strings.HasPrefix(target, "tcp:"):
		var c net.Conn
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", strings.TrimPrefix(target, "tcp:"))
		if err == nil {
			c.Close()
		}
	case strings.HasPrefix(target, "dns:"):
		r := &net.Resolver{PreferGo: true}
		_, err = r.LookupHost(ctx, strings.TrimPrefix(target, "dns:"))
	default:
		err = fmt.Errorf("unknown probe kind %q", target)
	}
	if err != nil {
		p.Err, p.Blocked = err.Error(), true
	}
	return p
}

// lockDownAndProbe confines this (locked) thread, from which the model will
// be forked, then runs the isolation probe under the same confinement and
// turns what it saw into evidence.
func lockDownAndProbe(cfg shimConfig) (IsolationEvidence, error) {
	iso := IsolationEvidence{Filesystem: FilesystemHost}
	exe := reexec.Self()
	var ro, rw []string
	devs := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
	if cfg.Root != nil {
		iso.Filesystem = FilesystemScratchRoot
		iso.Writable = writableMounts()
		exe = sandboxExe
		ro = append(slices.Clone(systemDirs), "/etc", filepath.Dir(sandboxExe), "/proc")
		ro = append(ro, cfg.Root.ReadOnly...)
		rw = []string{sandboxTmp, sandboxHome}
	} else {
		ro = []string{"/"}
		rw = cfg.Writable
	}
	sc, ll, err := lockDown(ro, rw, devs)
	if err != nil {
		return iso, err
	}
	iso.Seccomp, iso.Landlock = sc, ll
	res, err := runProbe(context.Background(), exe, cfg.Env, rw)
	if err != nil {
		return iso, err
	}
	iso.Uid, iso.Capabilities, iso.NoNewPrivs = res.Uid, res.Capabilities, res.NoNewPrivs
	iso.Seccomp.Mode, iso.Seccomp.Filters = res.Seccomp, res.Filters
	iso.Mounts, iso.Attempts, iso.Controls = res.Mounts, res.Attempts, res.Controls
	return iso, nil
}
