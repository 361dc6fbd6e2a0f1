package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Messages the init shim sends its parent, one JSON object per line.
const (
	reportSealed  = "sealed"  // namespaces set up; carries the evidence
	reportStarted = "started" // the model runs; carries its pid
	reportError   = "error"   // init failed before the model ran
	reportExit    = "exit"    // the model ended; carries its status
)

type shimReport struct {
	Type      string             `json:"type"`
	Evidence  *NetEvidence       `json:"evidence,omitempty"`
	Isolation *IsolationEvidence `json:"isolation,omitempty"`
	// LockedTid is the shim thread (pid-namespace id) that forks the model;
	// the parent reads its status from outside.
	LockedTid int    `json:"locked_tid,omitempty"`
	ModelPid  int    `json:"model_pid,omitempty"`
	Error     string `json:"error,omitempty"`
	ExitCode  int    `json:"exit_code"`
	Signal    string `json:"signal,omitempty"`
	SignalNum int    `json:"signal_num,omitempty"`
}

// ProcessOptions configure the process provider. The zero value works.
type ProcessOptions struct {
	// ScratchRoot holds one scratch directory per sandbox (default
	// /run/sandgate as root, $TMPDIR/sandgate otherwise, /tmp/sandgate-<uid>
	// when $TMPDIR is too long). Keep it short: the relay's unix socket
	// lives there and socket paths are limited to 107 bytes.
	ScratchRoot string
	// CgroupParent is the cgroup, relative to the hierarchy root, under
	// which each sandbox gets its own group (default "sandgate").
	CgroupParent string
	// Relay sets budgets and simulated latency for every sandbox's relay.
	Relay RelayOptions
	// StartTimeout bounds namespace setup and evidence gathering (default
	// 30s); it does not include the model's own warm-up (see WaitReady).
	StartTimeout time.Duration
	// TmpfsBytes caps each of the model's writable areas (/tmp and its
	// home) inside the scratch root (default 64 MiB). The pages count
	// against the memory limit too.
	TmpfsBytes int64
	// HostFilesystem skips the scratch root: the model sees the host's
	// tree, and only Landlock (where the kernel has it) keeps its writes to
	// the scratch directory. For debugging a model's runtime needs; the
	// evidence records it.
	HostFilesystem bool
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL
	// (default 2s).
	StopGrace time.Duration
	// SkipModelDigest turns the poisoning guard off: no sha256 of the
	// model's files before start (about a second per GB of weights here).
	SkipModelDigest bool
	// Snapshot configures Sandbox.Snapshot and the failure snapshots.
	Snapshot SnapshotOptions
	// Stdout and Stderr, when set, also receive the model's output.
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

// maxIDLen bounds a sandbox ID: 24 name bytes, '-', 8 hex digits.
const maxIDLen = 24 + 1 + 8

// maxScratchRoot keeps <root>/<sandbox id>/model.sock within the 107 bytes a
// unix socket path may have.
const maxScratchRoot = 107 - 1 - maxIDLen - len("/model.sock")

func defaultScratchRoot() string {
	if os.Geteuid() == 0 {
		if st, err := os.Stat("/run"); err == nil && st.IsDir() {
			return "/run/sandgate"
		}
	}
	if r := os.TempDir() + "/sandgate"; len(r) <= maxScratchRoot {
		return r
	}
	return fmt.Sprintf("/tmp/sandgate-%d", os.Geteuid())
}

func (o ProcessOptions) withDefaults() ProcessOptions {
	if o.ScratchRoot == "" {
		o.ScratchRoot = defaultScratchRoot()
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "sandgate"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.TmpfsBytes <= 0 {
		o.TmpfsBytes = 64 << 20
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Snapshot = o.Snapshot.withDefaults(o.ScratchRoot)
	return o
}

// Sandbox is one running (or finished) model. Methods are safe for
// concurrent use.
type Sandbox struct {
	id        string
	spec      Spec
	log       *slog.Logger
	scratch   string
	socket    string
	relay     *Relay
	egress    *Egress
	evidence  NetEvidence
	isolation IsolationEvidence
	cg        sandboxCgroup
	proc      *os.Process // the init shim, PID 1 of the sandbox
	stdout    *tailBuffer
	stderr    *tailBuffer
	stopGrace time.Duration
	started   time.Time
	deadline  *time.Timer
	done      chan struct{}

	mu         sync.Mutex
	killReason KillReason
	exitCode   int
	exitStatus int
	signal     string
	exited     time.Time
	usage      cgroupUsage
	exitErr    error

	stopOnce sync.Once
	stopErr  error

	relayOpt   RelayOptions
	hostTmpfs  bool // the writable areas are host tmpfs under scratch
	snapOpt    SnapshotOptions
	snapMu     sync.Mutex // one snapshot at a time; Stop waits for it
	snapshots  []SnapshotInfo
	stopping   bool // Stop began: the kill that follows is not a failure
	stopped    bool // the cgroup and scratch dir are going or gone
	modelFiles ModelDigest
}

// ID is unique per sandbox on this host.
func (s *Sandbox) ID() string { return s.id }

// Endpoint is the relay's base URL on host loopback: the only way in. It is
// empty for a Spec.NoRelay sandbox.
func (s *Sandbox) Endpoint() string {
	if s.relay == nil {
		return ""
	}
	return s.relay.URL()
}

// Relay gives access to the relay's counters and transcript; nil for a
// Spec.NoRelay sandbox.
func (s *Sandbox) Relay() *Relay { return s.relay }

// Evidence is the network evidence recorded before the model started.
func (s *Sandbox) Evidence() NetEvidence { return s.evidence }

// Isolation is the privilege and filesystem evidence recorded before the
// model started.
func (s *Sandbox) Isolation() IsolationEvidence { return s.isolation }

// AllEvidence is both records, as they go into the audit trail.
func (s *Sandbox) AllEvidence() Evidence {
	return Evidence{Network: s.evidence, Isolation: s.isolation}
}

// ScratchDir is the sandbox's private directory, wiped by Stop.
func (s *Sandbox) ScratchDir() string { return s.scratch }

// Done is closed when the model (and with it the whole sandbox) has exited.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// StderrTail returns the last few KiB the model wrote to stderr.
func (s *Sandbox) StderrTail() string { return s.stderr.String() }

// StdoutTail returns the last few KiB the model wrote to stdout.
func (s *Sandbox) StdoutTail() string { return s.stdout.String() }

// Stats returns relay counters, cgroup usage and the exit status so far.
func (s *Sandbox) Stats() Stats {
	st := Stats{Started: s.started}
	if s.relay != nil {
		st.Relay = s.relay.Stats()
	}
	s.mu.Lock()
	st.Running = s.exited.IsZero()
	u := s.usage
	if st.Running {
		u = s.cg.Usage()
	}
	st.ExitCode, st.ExitStatus, st.Signal, st.KilledBy, st.Exited = s.exitCode, s.exitStatus, s.signal, s.killReason, s.exited
	s.mu.Unlock()
	st.MemoryPeakBytes, st.OOMKills, st.PidsLimitHits = u.PeakBytes, u.OOMKills, u.PidsHits
	if st.Running {
		st.KilledBy = ""
	}
	return st
}

// Wait blocks until the model exits or ctx ends. It returns nil for a clean
// exit and otherwise an error naming the exit code or what killed it, with
// the tail of the model's stderr.
func (s *Sandbox) Wait(ctx context.Context) error {
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("wait for sandbox %s: %w", s.id, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
}

// WaitReady polls the model's port through the sandbox socket (not the
// relay, so readiness costs no budget) until an HTTP response comes back.
// If the model exits first, the error carries its stderr tail.
func (s *Sandbox) WaitReady(ctx context.Context) error {
	if s.socket == "" {
		return fmt.Errorf("sandbox %s has no relay (Spec.NoRelay): nothing to wait for", s.id)
	}
	err := WaitUpstream(ctx, s.Upstream(), s.done)
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil:
		s.mu.Lock()
		exitErr := s.exitErr
		s.mu.Unlock()
		return fmt.Errorf("sandbox %s: model exited before listening on port %d: %v; stderr tail:\n%s", s.id, s.spec.Port, exitErr, s.stderr.String())
	default:
		return fmt.Errorf("sandbox %s: port %d: %w; stderr tail:\n%s", s.id, s.spec.Port, err, s.stderr.String())
	}
}

// kill ends the sandbox now, remembering why. The first reason wins.
func (s *Sandbox) kill(reason KillReason) {
	s.mu.Lock()
	if !s.exited.IsZero() {
		s.mu.Unlock()
		return // already over; a late deadline must not rewrite history
	}
	if s.killReason == "" {
		s.killReason = reason
	}
	s.mu.Unlock()
	// Killing PID 1 of the pid namespace makes the kernel kill every other
	// process in it.
	_ = s.proc.Signal(syscall.SIGKILL)
}

// Stop ends the model (SIGTERM, then SIGKILL after the grace period or when
// ctx ends), removes the cgroup, closes the relay and wipes the scratch
// directory. It is idempotent; later calls return the first result.
func (s *Sandbox) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Sandbox) stop(ctx context.Context) error {
	if s.deadline != nil {
		s.deadline.Stop()
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	// A snapshot in progress finishes before anything is torn down; one
	// asked for later is refused.
	s.snapMu.Lock()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.snapMu.Unlock()
	// A frozen tree cannot die (v1 holds even SIGKILL): thaw first.
	_ = s.cg.Thaw()
	var errs []error
	select {
	case <-s.done:
	default:
		s.mu.Lock()
		if s.killReason == "" {
			s.killReason = KilledBySignal
		}
		s.mu.Unlock()
		_ = s.proc.Signal(syscall.SIGTERM)
		grace := time.NewTimer(s.stopGrace)
		select {
		case <-s.done:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
		s.kill(KilledBySignal)
		// After SIGKILL the kernel tears the namespace down promptly; bound
		// the wait anyway so Stop cannot hang on a stuck D-state process.
		hard := time.NewTimer(10 * time.Second)
		select {
		case <-s.done:
		case <-hard.C:
			errs = append(errs, fmt.Errorf("sandbox %s: init did not exit 10s after SIGKILL", s.id))
		}
		hard.Stop()
	}
	if err := s.removeCgroup(); err != nil {
		errs = append(errs, err)
	}
	if s.relay != nil {
		if err := s.relay.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.egress != nil {
		if err := s.egress.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.hostTmpfs {
		if err := unmountScratch(s.scratch); err != nil {
			errs = append(errs, fmt.Errorf("sandbox %s: %w", s.id, err))
		}
	}
	if err := os.RemoveAll(s.scratch); err != nil {
		errs = append(errs, fmt.Errorf("sandbox %s: wipe scratch dir: %w", s.id, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop sandbox %s: %w", s.id, errors.Join(errs...))
	}
	s.log.Info("sandbox stopped", "id", s.id)
	return nil
}

// removeCgroup empties and deletes the sandbox's cgroup.
func (s *Sandbox) removeCgroup() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs, err := s.cg.Procs()
		if err == nil && len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox %s: cgroup still holds processes %v (err %v)", s.id, procs, err)
		}
		if err := s.cg.KillAll(); err != nil {
			s.log.Warn("sandbox cgroup kill", "id", s.id, "err", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.cg.Delete(); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.id, err)
	}
	return nil
}

// watch waits for the init shim to be reaped (waited closes), then records
// how the model ended from init's exit report, if it sent one.
func (s *Sandbox) watch(waited <-chan struct{}, cmd *exec.Cmd, reports <-chan shimReport) {
	<-waited
	if s.deadline != nil {
		s.deadline.Stop()
	}
	var rep *shimReport
	for r := range reports {
		if r.Type == reportExit {
			rep = &r
		}
	}
	u := s.cg.Usage()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exited = time.Now()
	s.usage = u
	switch {
	case rep != nil:
		s.exitCode, s.signal, s.exitStatus = rep.ExitCode, rep.Signal, rep.ExitCode
		if rep.Signal != "" {
			s.exitStatus = 128 + rep.SignalNum
		}
	case cmd.ProcessState != nil:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			s.exitCode, s.signal, s.exitStatus = -1, signalName(ws.Signal()), 128+int(ws.Signal())
		} else {
			s.exitCode = cmd.ProcessState.ExitCode()
			s.exitStatus = s.exitCode
		}
	default:
		s.exitCode, s.exitStatus = -1, 128+int(syscall.SIGKILL)
	}
	if s.killReason == "" && s.signal != "" {
		s.killReason = KilledBySignal
		if u.OOMKills > 0 {
			s.killReason = KilledByOOM
		}
	}
	switch {
	case s.killReason != "":
		s.exitErr = fmt.Errorf("sandbox %s: model killed (%s, %s, exit code %d)", s.id, s.killReason, s.signal, s.exitCode)
	case s.exitCode != 0:
		s.exitErr = fmt.Errorf("sandbox %s: model exited with code %d", s.id, s.exitCode)
	}
	s.log.Info("sandbox model exited", "id", s.id, "exit_code", s.exitCode, "signal", s.signal,
		"killed_by", s.killReason, "memory_peak", u.PeakBytes, "oom_kills", u.OOMKills)
	// The deadline snapshot was taken before its kill; Stop's kill is no
	// failure. Anything else that ended the model is.
	reason := ""
	switch {
	case s.stopping || s.killReason == KilledByDeadline:
	case s.killReason == KilledByOOM:
		reason = "oom"
	case s.killReason != "":
		reason = "killed " + s.signal
	case s.exitCode != 0:
		reason = fmt.Sprintf("exit code %d", s.exitCode)
	}
	s.mu.Unlock()
	if reason != "" {
		// Before Done closes, so whoever waits on it finds the snapshot.
		s.autoSnapshot(reason, false)
	}
	s.mu.Lock()
	close(s.done)
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "signal " + sig.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	tee io.Writer
}

func newTailBuffer(max int, tee io.Writer) *tailBuffer { return &tailBuffer{max: max, tee: tee} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.mu.Unlock()
	if t.tee != nil {
		_, _ = t.tee.Write(p)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
