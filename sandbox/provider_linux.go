package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
	"golang.org/x/sys/unix"
)

// ProcessProvider runs sandboxes as Linux processes in fresh namespaces
// under cgroup limits. It needs root, or unprivileged user namespaces plus a
// delegated cgroup v2 subtree.
type ProcessProvider struct {
	opt  ProcessOptions
	mode isolationMode
	cgv  cgroupVersion
}

var _ Provider = (*ProcessProvider)(nil)

// NewProcessProvider checks the host (see Preflight) and returns a provider,
// or an error wrapping ErrUnsupported saying what is missing.
func NewProcessProvider(opt ProcessOptions) (*ProcessProvider, error) {
	p := &ProcessProvider{opt: opt.withDefaults()}
	if err := p.Preflight(); err != nil {
		return nil, err
	}
	return p, nil
}

// Preflight re-checks that this host can isolate a sandbox and says plainly
// what is missing; the error wraps ErrUnsupported.
func (p *ProcessProvider) Preflight() error {
	f := gatherHostFacts(p.opt.CgroupParent)
	mode, err := checkHost(f)
	if err != nil {
		return err
	}
	p.mode, p.cgv = mode, f.Cgroup
	return nil
}

func gatherHostFacts(cgParent string) hostFacts {
	f := hostFacts{GOOS: runtime.GOOS, EUID: os.Geteuid(), MaxUserNS: -1, CgroupParent: cgParent}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil {
		f.UsernsClone = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			f.MaxUserNS = n
		}
	}
	f.Cgroup, f.CgroupErr = detectCgroupVersion()
	if f.CgroupErr == nil {
		f.CgroupWritable = cgroupWritable(f.Cgroup, cgParent)
	}
	return f
}

// cgroupWritable checks access on the deepest existing ancestor of the
// parent group, which is where our mkdir would happen.
func cgroupWritable(v cgroupVersion, parent string) bool {
	base := cgroupRoot
	if v == cgroupV1 {
		base = filepath.Join(cgroupRoot, "memory")
	}
	dir := filepath.Join(base, parent)
	for {
		if _, err := os.Stat(dir); err == nil {
			return unix.Access(dir, unix.W_OK) == nil
		}
		if dir == base || dir == "/" {
			return false
		}
		dir = filepath.Dir(dir)
	}
}

var nameClean = regexp.MustCompile(`[^a-z0-9-]+`)

func validateSpec(spec Spec) error {
	var bad []string
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		bad = append(bad, "Command is empty: give the model's argv, e.g. [\"/usr/bin/model-server\", \"--port\", \"8080\"]")
	}
	switch {
	case spec.NoRelay && spec.Port != 0:
		bad = append(bad, fmt.Sprintf("Port %d with NoRelay: nothing would reach it; set Port 0", spec.Port))
	case !spec.NoRelay && (spec.Port <= 0 || spec.Port > 65535):
		bad = append(bad, fmt.Sprintf("Port %d is not a TCP port: set the port the model listens on at 127.0.0.1 inside the sandbox (or NoRelay for a command nothing talks to)", spec.Port))
	}
	for _, p := range spec.ReadOnlyPaths {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			bad = append(bad, fmt.Sprintf("ReadOnlyPaths entry %q must be an absolute path below /", p))
		} else if _, err := os.Stat(p); err != nil {
			bad = append(bad, fmt.Sprintf("ReadOnlyPaths entry %q: %v", p, err))
		}
	}
	if spec.Limits.CPUs < 0 || spec.Limits.MemoryBytes < 0 || spec.Limits.Pids < 0 || spec.Limits.WallClock < 0 {
		bad = append(bad, fmt.Sprintf("Limits %+v has a negative value: use 0 for no limit", spec.Limits))
	}
	if spec.Limits.MemoryBytes > 0 && spec.Limits.MemoryBytes < 16<<20 {
		bad = append(bad, fmt.Sprintf("Limits.MemoryBytes %d is below 16 MiB, too small for the init process", spec.Limits.MemoryBytes))
	}
	if spec.Limits.Pids > 0 && spec.Limits.Pids < 8 {
		bad = append(bad, fmt.Sprintf("Limits.Pids %d is below 8, too small for the init process's threads", spec.Limits.Pids))
	}
	if spec.WorkDir != "" {
		if !filepath.IsAbs(spec.WorkDir) || filepath.Clean(spec.WorkDir) == "/" {
			bad = append(bad, fmt.Sprintf("WorkDir %q must be an absolute path below /", spec.WorkDir))
		} else if fi, err := os.Stat(spec.WorkDir); err != nil || !fi.IsDir() {
			bad = append(bad, fmt.Sprintf("WorkDir %q is not an existing directory", spec.WorkDir))
		}
	}
	for _, kv := range spec.Env {
		if !strings.Contains(kv, "=") {
			bad = append(bad, fmt.Sprintf("Env entry %q is not KEY=value", kv))
		}
	}
	bad = append(bad, validateEgressSpec(spec)...)
	if len(bad) > 0 {
		return fmt.Errorf("invalid sandbox spec %q: %s", spec.Name, strings.Join(bad, "; "))
	}
	return nil
}

func newID(name string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sandbox id: %w", err)
	}
	n := strings.Trim(nameClean.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(n) > maxIDLen-9 {
		n = n[:maxIDLen-9]
	}
	if n == "" {
		n = "model"
	}
	return n + "-" + hex.EncodeToString(b[:]), nil
}

// Start launches spec in a new sandbox and returns once its network evidence
// is recorded and the model process is running (not necessarily listening:
// use WaitReady). On error nothing is left behind.
func (p *ProcessProvider) Start(ctx context.Context, spec Spec) (_ *Sandbox, retErr error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	if p.mode == 0 {
		return nil, fmt.Errorf("process provider used without NewProcessProvider: %w", ErrUnsupported)
	}
	id, err := newID(spec.Name)
	if err != nil {
		return nil, err
	}
	log := p.opt.Logger.With("sandbox", id)
	var cleanups []func()
	defer func() {
		if retErr != nil {
			for _, c := range slices.Backward(cleanups) {
				c()
			}
		}
	}()

	// Scratch directory: private to root (or the invoking user).
	if err := os.MkdirAll(p.opt.ScratchRoot, 0o711); err != nil {
		return nil, fmt.Errorf("sandbox %s: create scratch root: %w", id, err)
	}
	scratch := filepath.Join(p.opt.ScratchRoot, id)
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox %s: create scratch dir: %w", id, err)
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(scratch) })
	for _, d := range []string{"home", "tmp", "root"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o700); err != nil {
			return nil, fmt.Errorf("sandbox %s: create scratch %s: %w", id, d, err)
		}
	}
	// The writable areas are size-capped tmpfs mounted here on the host
	// side, so they outlive the model: a snapshot after a crash can still
	// tar them. Rootless, the shim mounts them inside instead.
	hostTmpfs := p.mode == modeRoot
	if hostTmpfs {
		for _, a := range []struct{ dir, mode string }{{"tmp", "1777"}, {"home", "0700"}} {
			opts := fmt.Sprintf("size=%d,mode=%s", p.opt.TmpfsBytes, a.mode)
			if err := unix.Mount("sandgate-"+a.dir, filepath.Join(scratch, a.dir), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return nil, fmt.Errorf("sandbox %s: mount the writable %s tmpfs: %w", id, a.dir, err)
			}
		}
		cleanups = append(cleanups, func() { _ = unmountScratch(scratch) })
	}
	socket := filepath.Join(scratch, "model.sock")
	if spec.NoRelay {
		socket = ""
	}
	if len(socket) > 107 {
		return nil, fmt.Errorf("sandbox %s: socket path %q is longer than 107 bytes: set ProcessOptions.ScratchRoot to a shorter directory: %w", id, socket, ErrUnsupported)
	}

	cg, err := newSandboxCgroup(p.cgv, path.Join("/", p.opt.CgroupParent, id), spec.Limits, log)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	cleanups = append(cleanups, func() {
		_ = cg.KillAll()
		if err := cg.Delete(); err != nil {
			log.Warn("sandbox start cleanup: delete cgroup", "err", err)
		}
	})

	// The poisoning guard's "before": taken before the model can run.
	before := ModelDigest{Skipped: true}
	if !p.opt.SkipModelDigest {
		if before, err = DigestModelFiles(spec); err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}

	// Listeners the sandbox must not reach; the controls prove they are live.
	probeLn, targets, err := openProbeTargets()
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	defer probeLn.Close()

	relayOpt := p.opt.Relay
	if spec.Relay != nil {
		relayOpt = *spec.Relay
	}
	egress, shimEg, err := startEgress(spec, scratch, relayOpt, log)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	if egress != nil {
		cleanups = append(cleanups, func() { _ = egress.Close() })
	}

	cfg := shimConfig{
		ID:       id,
		Hostname: "sandbox-" + id,
		Argv:     spec.Command,
		Role:     !strings.Contains(spec.Command[0], "/") && reexec.Registered(spec.Command[0]),
		Dir:      spec.WorkDir,
		Port:     spec.Port,
		Socket:   socket,
		Probes:   append(slices.Clone(targets), "dns:example.com"),
		Egress:   shimEg,
	}
	home, tmp := filepath.Join(scratch, "home"), filepath.Join(scratch, "tmp")
	if p.opt.HostFilesystem {
		cfg.Writable = []string{home, tmp}
	} else {
		home, tmp = sandboxHome, sandboxTmp
		cfg.Root = &rootConfig{Dir: filepath.Join(scratch, "root"), ReadOnly: readOnlyPaths(spec), TmpfsBytes: p.opt.TmpfsBytes}
		if hostTmpfs {
			cfg.Root.TmpSrc, cfg.Root.HomeSrc = filepath.Join(scratch, "tmp"), filepath.Join(scratch, "home")
		}
	}
	cfg.Env = modelEnv(spec.Env, home, tmp)
	if cfg.Dir == "" {
		cfg.Dir = home
	}

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: config pipe: %w", id, err)
	}
	defer cfgW.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, fmt.Errorf("sandbox %s: report pipe: %w", id, err)
	}

	stdout := newTailBuffer(16<<10, p.opt.Stdout)
	stderr := newTailBuffer(16<<10, p.opt.Stderr)
	cmd := reexec.Command(InitRole)
	cmd.Dir = scratch
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{cfgR, repW}
	// Bound how long Wait lingers on output pipes after the shim exits.
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		// The sandbox dies with the harness. (Pdeathsig fires when the
		// forking OS thread exits; this package never ends a thread it
		// locked, so that is the process's lifetime.)
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if p.mode == modeRootless {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	err = cmd.Start()
	cfgR.Close()
	repW.Close()
	if err != nil {
		repR.Close()
		return nil, fmt.Errorf("sandbox %s: start init (%s): %w", id, InitRole, err)
	}
	waited := make(chan struct{})
	cleanups = append(cleanups, func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-waited
	})

	// At most three reports arrive (sealed, started, exit), so the buffer
	// never blocks the reader; it closes the channel when init exits.
	reports := make(chan shimReport, 8)
	go func() {
		defer close(reports)
		defer repR.Close()
		dec := json.NewDecoder(repR)
		for {
			var r shimReport
			if err := dec.Decode(&r); err != nil {
				return
			}
			reports <- r
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()

	// Only now, with init inside its cgroup, may it proceed: everything it
	// forks inherits the group.
	if err := cg.AddProc(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	toInit := json.NewEncoder(cfgW)
	if err := toInit.Encode(cfg); err != nil {
		return nil, fmt.Errorf("sandbox %s: send config to init: %w", id, err)
	}

	startCtx, cancel := context.WithTimeout(ctx, p.opt.StartTimeout)
	defer cancel()
	next := func(want string) (shimReport, error) {
		select {
		case r, ok := <-reports:
			if !ok {
				<-waited
				return r, fmt.Errorf("sandbox %s: init exited before %s (%v); stderr tail:\n%s", id, want, cmd.ProcessState, stderr.String())
			}
			if r.Type != want {
				return r, fmt.Errorf("sandbox %s: init failed: %s", id, r.Error)
			}
			return r, nil
		case <-startCtx.Done():
			return shimReport{}, fmt.Errorf("sandbox %s: init did not report %s within %s (does this binary's main call reexec.Init() first?); stderr tail:\n%s: %w", id, want, p.opt.StartTimeout, stderr.String(), startCtx.Err())
		}
	}
	sealed, err := next(reportSealed)
	if err != nil {
		return nil, err
	}
	if sealed.Evidence == nil {
		return nil, fmt.Errorf("sandbox %s: init sent no network evidence", id)
	}
	ev := *sealed.Evidence
	ev.HostNamespace, _ = os.Readlink("/proc/self/ns/net")
	for _, t := range targets {
		ev.Controls = append(ev.Controls, probe(t))
	}
	// Cross-check init's self-report against the kernel's view from
	// outside, then refuse to run the model unless the sandbox is sealed.
	if err := crossCheckEvidence(cmd.Process.Pid, ev); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	if (egress != nil) != (ev.Egress != nil) {
		return nil, fmt.Errorf("sandbox %s: init's egress evidence (%v) does not match the %d allowlisted services", id, ev.Egress != nil, len(spec.Egress))
	}
	if err := ev.Check(); err != nil {
		return nil, fmt.Errorf("sandbox %s refused to run the model: %w", id, err)
	}
	if sealed.Isolation == nil {
		return nil, fmt.Errorf("sandbox %s: init sent no isolation evidence", id)
	}
	iso := *sealed.Isolation
	if err := crossCheckIsolation(cmd.Process.Pid, sealed.LockedTid, &iso); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	if err := iso.Check(); err != nil {
		return nil, fmt.Errorf("sandbox %s refused to run the model: %w", id, err)
	}
	if err := toInit.Encode(shimGo{Start: true}); err != nil {
		return nil, fmt.Errorf("sandbox %s: tell init to start the model: %w", id, err)
	}
	cfgW.Close()
	started, err := next(reportStarted)
	if err != nil {
		return nil, err
	}
	startedAt := time.Now()

	var relay *Relay
	if !spec.NoRelay {
		relayOpt := p.opt.Relay
		if spec.Relay != nil {
			relayOpt = *spec.Relay
		}
		relay, err = NewRelay(relayOpt, Upstream{
			Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port)),
			Dial: func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		}, log)
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}

	s := &Sandbox{
		id:         id,
		spec:       spec,
		log:        log,
		scratch:    scratch,
		socket:     socket,
		relay:      relay,
		egress:     egress,
		evidence:   ev,
		isolation:  iso,
		cg:         cg,
		proc:       cmd.Process,
		stdout:     stdout,
		stderr:     stderr,
		stopGrace:  p.opt.StopGrace,
		started:    startedAt,
		done:       make(chan struct{}),
		hostTmpfs:  hostTmpfs,
		snapOpt:    p.opt.Snapshot,
		modelFiles: before,
	}
	if spec.Relay != nil {
		s.relayOpt = *spec.Relay
	} else {
		s.relayOpt = p.opt.Relay
	}
	if relay != nil {
		relay.setOnBreach(func(budget string) { s.autoSnapshot(budget+" budget exceeded", false) })
	}
	if spec.Limits.WallClock > 0 {
		s.deadline = time.AfterFunc(spec.Limits.WallClock, func() {
			log.Warn("sandbox wall clock exceeded, killing", "limit", spec.Limits.WallClock)
			if s.snapOpt.OnFailure {
				// Frozen for the snapshot and left frozen, so the model
				// does nothing past its deadline; kill, then thaw so the
				// kill lands.
				s.autoSnapshot("deadline", true)
				s.kill(KilledByDeadline)
				_ = s.cg.Thaw()
				return
			}
			s.kill(KilledByDeadline)
		})
	}
	go s.watch(waited, cmd, reports)
	log.Info("sandbox started", "endpoint", s.Endpoint(), "cgroup", p.cgv.String(), "model_pid", started.ModelPid,
		"netns", ev.Namespace, "interfaces", ev.Interfaces, "filesystem", iso.Filesystem,
		"landlock", iso.Landlock.Status, "seccomp_denied", len(iso.Seccomp.Denied))
	return s, nil
}

// readOnlyPaths are the caller's host paths to bind into the scratch root:
// WorkDir, Spec.ReadOnlyPaths, and an absolute Command[0] outside the
// system directories (a model binary that lives next to its weights).
func readOnlyPaths(spec Spec) []string {
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if spec.WorkDir != "" {
		add(spec.WorkDir)
	}
	for _, p := range spec.ReadOnlyPaths {
		add(p)
	}
	if c := spec.Command[0]; filepath.IsAbs(c) {
		inSystem := slices.ContainsFunc(systemDirs, func(d string) bool { return strings.HasPrefix(c, d+"/") })
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && !inSystem {
			add(c)
		}
	}
	return out
}

// modelEnv gives the model a minimal environment of its own.
func modelEnv(env []string, home, tmp string) []string {
	out := slices.Clone(env)
	has := func(k string) bool {
		return slices.ContainsFunc(out, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	}
	if !has("PATH") {
		out = append(out, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	if !has("TMPDIR") {
		out = append(out, "TMPDIR="+tmp)
	}
	return out
}

// openProbeTargets listens on every host address and returns the targets
// a sandbox must fail to reach: host loopback and each non-loopback address.
func openProbeTargets() (net.Listener, []string, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, nil, fmt.Errorf("open egress probe listener: %w", err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	targets := []string{"tcp:" + net.JoinHostPort("127.0.0.1", port)}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		n := 0
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() || ipn.IP.To4() == nil || n >= 4 {
				continue
			}
			targets = append(targets, "tcp:"+net.JoinHostPort(ipn.IP.String(), port))
			n++
		}
	}
	return ln, targets, nil
}

func crossCheckEvidence(pid int, ev NetEvidence) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return fmt.Errorf("read sandbox netns from host: %w", err)
	}
	if ns != ev.Namespace {
		return fmt.Errorf("init reported netns %s but the host sees %s", ev.Namespace, ns)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return fmt.Errorf("read sandbox devices from host: %w", err)
	}
	var devs []string
	for i, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && i >= 2 {
			devs = append(devs, strings.TrimSpace(name))
		}
	}
	got, want := slices.Sorted(slices.Values(devs)), slices.Sorted(slices.Values(ev.Interfaces))
	if !slices.Equal(got, want) {
		return errors.New("init reported interfaces " + strings.Join(want, ",") + " but the host sees " + strings.Join(got, ","))
	}
	return nil
}
