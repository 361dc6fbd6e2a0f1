package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sandgate/sandgate/sandbox"
)

// Evidence is the record of the restrictions a container ran under, for
// the audit trail: what was asked for and what the engine reports it applied.
type Evidence struct {
	Provider    string `json:"provider"`
	ContainerID string `json:"container_id"`
	// Requested is the create request as sent.
	Requested CreateRequest `json:"requested"`
	// Applied is the engine's HostConfig from inspecting the created
	// container, before it started.
	Applied *container.HostConfig `json:"applied"`
	// User is the user the engine will run the model as.
	User     string   `json:"user"`
	Warnings []string `json:"warnings,omitempty"`
	// Reach says how the harness gets in.
	Reach string `json:"reach"`
}

// Check returns an error naming every restriction the engine did not
// apply; nil means the container is sealed as asked. It checks the
// engine's answer, not the request, because an engine may drop or rewrite
// options it does not support.
func (e Evidence) Check(want sandbox.Limits) error {
	hc := e.Applied
	if hc == nil {
		return errors.New("docker evidence: no applied HostConfig recorded")
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if hc.NetworkMode != "none" {
		add("NetworkMode is %q, want \"none\"", hc.NetworkMode)
	}
	if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
		add("ports are published")
	}
	if !hc.ReadonlyRootfs {
		add("root filesystem is writable")
	}
	if !slices.ContainsFunc(hc.CapDrop, func(c string) bool { return strings.EqualFold(c, "ALL") }) {
		add("CapDrop is %v, want ALL", hc.CapDrop)
	}
	if len(hc.CapAdd) > 0 {
		add("CapAdd is %v, want none", hc.CapAdd)
	}
	if hc.Privileged {
		add("container is privileged")
	}
	nnp := false
	for _, o := range hc.SecurityOpt {
		switch strings.ReplaceAll(strings.ToLower(o), "=", ":") {
		case "no-new-privileges", "no-new-privileges:true":
			nnp = true
		case "seccomp:unconfined", "apparmor:unconfined", "label:disable", "systempaths:unconfined":
			add("SecurityOpt %q lifts a default restriction", o)
		}
	}
	if !nnp {
		add("no-new-privileges is not set (SecurityOpt %v)", hc.SecurityOpt)
	}
	for _, m := range []struct{ name, mode string }{
		{"PidMode", string(hc.PidMode)}, {"IpcMode", string(hc.IpcMode)},
		{"UTSMode", string(hc.UTSMode)}, {"UsernsMode", string(hc.UsernsMode)},
		{"CgroupnsMode", string(hc.CgroupnsMode)},
	} {
		if m.mode == "host" {
			add("%s is host", m.name)
		}
	}
	if want.MemoryBytes > 0 && hc.Memory != want.MemoryBytes {
		add("Memory is %d, want %d", hc.Memory, want.MemoryBytes)
	}
	if want.CPUs > 0 && hc.NanoCPUs != int64(want.CPUs*1e9) {
		add("NanoCpus is %d, want %d", hc.NanoCPUs, int64(want.CPUs*1e9))
	}
	if want.Pids > 0 && (hc.PidsLimit == nil || *hc.PidsLimit != want.Pids) {
		add("PidsLimit is %v, want %d", hc.PidsLimit, want.Pids)
	}
	for _, m := range hc.Mounts {
		if m.Target != RunDir && !m.ReadOnly {
			add("mount %s is writable", m.Target)
		}
	}
	if len(hc.Binds) > 0 {
		add("unexpected binds %v", hc.Binds)
	}
	if e.User == "" || e.User == "0" || strings.HasPrefix(e.User, "0:") || strings.HasPrefix(e.User, "root") {
		add("model runs as %q, want a non-root user", e.User)
	}
	if len(problems) > 0 {
		return fmt.Errorf("docker evidence: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Sandbox is one model in one container. Methods are safe for concurrent
// use.
type Sandbox struct {
	id          string
	containerID string
	spec        sandbox.Spec
	api         API
	log         *slog.Logger
	hostDir     string
	socket      string
	up          sandbox.Upstream
	relay       *sandbox.Relay
	stopGrace   time.Duration
	deadline    *time.Timer
	cancelWait  context.CancelFunc
	done        chan struct{}
	evidence    Evidence

	mu         sync.Mutex
	started    time.Time
	exited     time.Time
	exitCode   int
	oomKilled  bool
	killReason sandbox.KillReason
	waitErr    error

	stopOnce sync.Once
	teardown Teardown
	stopErr  error
}

// ID is the sandbox's name (also the container's name).
func (s *Sandbox) ID() string { return s.id }

// ContainerID is the engine's ID for the container.
func (s *Sandbox) ContainerID() string { return s.containerID }

// Endpoint is the relay's base URL on host loopback: the only way in.
func (s *Sandbox) Endpoint() string {
	if s.relay == nil {
		return ""
	}
	return s.relay.URL()
}

// Relay gives access to budgets, counters and the transcript.
func (s *Sandbox) Relay() *sandbox.Relay { return s.relay }

// Evidence is the restrictions asked for and applied.
func (s *Sandbox) Evidence() Evidence {
	e := s.evidence
	e.Provider = "docker"
	e.Reach = fmt.Sprintf("unix socket %s (host dir bound at %s), joined by %s to 127.0.0.1:%d inside the container", s.socket, RunDir, SpliceBin, s.spec.Port)
	return e
}

// Done is closed when the container has stopped.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// WaitReady polls the model through its socket (no relay budget spent)
// until it answers HTTP.
func (s *Sandbox) WaitReady(ctx context.Context) error {
	if err := sandbox.WaitUpstream(ctx, s.up, s.done); err != nil {
		return fmt.Errorf("docker sandbox %s: %w", s.id, err)
	}
	return nil
}

// Stats is a point-in-time summary; memory and pids counters are not read
// from the engine (zero).
func (s *Sandbox) Stats() sandbox.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sandbox.Stats{
		Started:  s.started,
		Exited:   s.exited,
		KilledBy: s.killReason,
		ExitCode: s.exitCode, ExitStatus: s.exitCode,
	}
	select {
	case <-s.done:
	default:
		st.Running = !s.started.IsZero()
	}
	if s.oomKilled {
		st.OOMKills = 1
	}
	if s.relay != nil {
		st.Relay = s.relay.Stats()
	}
	return st
}

func (s *Sandbox) watch(ctx context.Context, w client.ContainerWaitResult) {
	defer close(s.done)
	var code int
	var err error
	select {
	case r := <-w.Result:
		code = int(r.StatusCode)
		if r.Error != nil && r.Error.Message != "" {
			err = errors.New(r.Error.Message)
		}
	case err = <-w.Error:
	case <-ctx.Done():
		err = ctx.Err()
	}
	oom := false
	if ins, ierr := s.api.ContainerInspect(context.WithoutCancel(ctx), s.containerID, client.ContainerInspectOptions{}); ierr == nil && ins.Container.State != nil {
		oom = ins.Container.State.OOMKilled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exited = time.Now()
	s.exitCode = code
	s.waitErr = err
	s.oomKilled = oom
	if oom && s.killReason == sandbox.KilledByNone {
		s.killReason = sandbox.KilledByOOM
	}
}

func (s *Sandbox) kill(reason sandbox.KillReason) {
	s.mu.Lock()
	if s.killReason == sandbox.KilledByNone {
		s.killReason = reason
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.api.ContainerKill(ctx, s.containerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !cerrdefs.IsNotFound(err) {
		s.log.Warn("docker sandbox: kill", "reason", reason, "err", err)
	}
}

// FreezeEvidence records a pause.
type FreezeEvidence struct {
	At     time.Time `json:"at"`
	Paused bool      `json:"paused"` // the engine's State.Paused after the call
}

// Freeze pauses the container (the cgroup freezer) for a forensic look;
// Thaw resumes it. The relay keeps accepting, so requests wait.
func (s *Sandbox) Freeze(ctx context.Context) (FreezeEvidence, error) {
	if _, err := s.api.ContainerPause(ctx, s.containerID, client.ContainerPauseOptions{}); err != nil {
		return FreezeEvidence{}, fmt.Errorf("docker sandbox %s: pause: %w", s.id, err)
	}
	ins, err := s.api.ContainerInspect(ctx, s.containerID, client.ContainerInspectOptions{})
	if err != nil {
		return FreezeEvidence{}, fmt.Errorf("docker sandbox %s: inspect after pause: %w", s.id, err)
	}
	ev := FreezeEvidence{At: time.Now(), Paused: ins.Container.State != nil && ins.Container.State.Paused}
	if !ev.Paused {
		return ev, fmt.Errorf("docker sandbox %s: engine reports the container is not paused after pause", s.id)
	}
	return ev, nil
}

// Thaw resumes a paused container.
func (s *Sandbox) Thaw(ctx context.Context) error {
	if _, err := s.api.ContainerUnpause(ctx, s.containerID, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("docker sandbox %s: unpause: %w", s.id, err)
	}
	return nil
}

// Teardown is the record that nothing of the sandbox is left.
type Teardown struct {
	ContainerID string `json:"container_id"`
	// ContainerGone is true when inspecting the container after removal
	// answered "no such container".
	ContainerGone bool   `json:"container_gone"`
	SocketDir     string `json:"socket_dir"`
	// SocketDirGone is true when the host directory no longer exists.
	SocketDirGone bool     `json:"socket_dir_gone"`
	Errors        []string `json:"errors,omitempty"`
}

// Stop closes the relay, stops and removes the container, removes the
// socket directory, and verifies both are gone. It is idempotent; the error
// names whatever is left.
func (s *Sandbox) Stop(ctx context.Context) (Teardown, error) {
	s.stopOnce.Do(func() { s.teardown, s.stopErr = s.stop(ctx) })
	return s.teardown, s.stopErr
}

func (s *Sandbox) stop(ctx context.Context) (Teardown, error) {
	t := Teardown{ContainerID: s.containerID, SocketDir: s.hostDir}
	var errs []error
	if s.deadline != nil {
		s.deadline.Stop()
	}
	if s.relay != nil {
		if err := s.relay.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.containerID != "" {
		s.mu.Lock()
		if s.killReason == sandbox.KilledByNone && !s.started.IsZero() {
			select {
			case <-s.done:
			default:
				s.killReason = sandbox.KilledBySignal
			}
		}
		s.mu.Unlock()
		grace := int(s.stopGrace.Round(time.Second) / time.Second)
		if _, err := s.api.ContainerStop(ctx, s.containerID, client.ContainerStopOptions{Timeout: &grace}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop container: %w", err))
		}
		if _, err := s.api.ContainerRemove(ctx, s.containerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container: %w", err))
		}
		_, err := s.api.ContainerInspect(ctx, s.containerID, client.ContainerInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			t.ContainerGone = true
		case err == nil:
			errs = append(errs, fmt.Errorf("container %s still present after remove", s.containerID))
		default:
			errs = append(errs, fmt.Errorf("verify container removed: %w", err))
		}
	} else {
		t.ContainerGone = true
	}
	if s.cancelWait != nil {
		if t.ContainerGone {
			select {
			case <-s.done:
			case <-ctx.Done():
			}
		}
		s.cancelWait()
	}
	if err := os.RemoveAll(s.hostDir); err != nil {
		errs = append(errs, fmt.Errorf("remove socket dir: %w", err))
	}
	if _, err := os.Lstat(s.hostDir); errors.Is(err, os.ErrNotExist) {
		t.SocketDirGone = true
	} else {
		errs = append(errs, fmt.Errorf("socket dir %s still present", s.hostDir))
	}
	for _, e := range errs {
		t.Errors = append(t.Errors, e.Error())
	}
	if err := errors.Join(errs...); err != nil {
		return t, fmt.Errorf("docker sandbox %s teardown: %w", s.id, err)
	}
	s.log.Info("docker sandbox removed", "container", s.containerID)
	return t, nil
}
