// Package sandbox runs a model under test where it can reach nothing but the
// harness, and gives the harness exactly one way in: a relay on host loopback
// that enforces budgets and keeps a transcript.
//
// The process provider (Linux) starts the model inside fresh network, pid,
// mount, uts and ipc namespaces under an init shim (the reexec role
// "sandgate-sandbox-init"), confines it with cgroup limits (v1 or v2) and a
// wall-clock deadline, and reaches the model's TCP port through a unix socket
// in the sandbox's scratch directory. Any binary that uses the process
// provider must call reexec.Init() first thing in main (or TestMain), because
// the shim is this same binary re-executed in that role.
//
// The package knows nothing of Temporal; activities adapt it.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnsupported reports that this host cannot isolate a sandbox with the
// chosen provider. The wrapping error says what is missing and how to fix it.
var ErrUnsupported = errors.New("sandbox provider unsupported on this host")

// Spec describes one model to run in a sandbox.
type Spec struct {
	// Name is a human label; it becomes part of the sandbox ID.
	Name string
	// Command is the model's argv. A first element naming a reexec role
	// ("sandgate-...") runs that role from the current binary.
	Command []string
	// Port is the TCP port the model listens on at 127.0.0.1 inside the
	// sandbox; the relay forwards to it. It must be set unless NoRelay.
	Port int
	// NoRelay runs the command with no way in at all: no unix socket, no
	// relay, Port must be 0. For one-shot commands (`starter sandbox exec`)
	// that only produce output.
	NoRelay bool
	// Env is the model's whole environment ("KEY=value"); nothing is
	// inherited from the host. PATH, HOME and TMPDIR get defaults when absent.
	Env []string
	// Limits confine the whole process tree.
	Limits Limits
	// WorkDir, when set, is an existing absolute host directory the model
	// starts in (its files, e.g. weights). It belongs to the caller and is not
	// wiped. When empty the model starts in its scratch directory.
	WorkDir string
	// ReadOnlyPaths are further host paths (directories or files) the model
	// needs, e.g. a runtime under /opt; each is bound read-only at the same
	// path inside the sandbox. The system directories, WorkDir and an
	// absolute Command[0] are bound without being listed here.
	ReadOnlyPaths []string
	// Relay, when set, replaces the provider's relay options for this
	// sandbox: budgets belong to a release, not to the worker.
	Relay *RelayOptions
	// Egress are the services (host:port) the model may reach, through the
	// sandbox's egress proxy and, for loopback addresses, a listener at the
	// same address inside. Everything else stays unreachable. Every attempt
	// is recorded (Sandbox.EgressTranscript); the relay's network profile
	// applies. Empty means no egress at all.
	Egress []EgressRule `json:",omitempty"`
}

// Limits confine a sandbox. Zero means "no limit" for each field.
type Limits struct {
	CPUs        float64
	MemoryBytes int64
	Pids        int64
	WallClock   time.Duration
}

// Provider starts sandboxes. Implementations: ProcessProvider (Linux);
// docker and kubernetes come later behind the same interface.
type Provider interface {
	Start(ctx context.Context, spec Spec) (*Sandbox, error)
}

// Probe is one attempted connection from inside the sandbox (or, for a
// control, the same attempt from the host).
type Probe struct {
	Target  string `json:"target"`
	Err     string `json:"err,omitempty"`
	Blocked bool   `json:"blocked"`
}

// NetEvidence is what the sandbox's network looked like when it started,
// before the model ran: the record that the model had no way out.
type NetEvidence struct {
	// Interfaces are the link names visible inside the sandbox ("lo" only).
	Interfaces []string `json:"interfaces"`
	// Routes are every IPv4 and IPv6 route inside the sandbox, one per line
	// in "dst via gw dev link" form; none is a default route.
	Routes []string `json:"routes"`
	// EgressProbes are connects made from inside the sandbox to listeners
	// the harness opened on the host; each must be Blocked.
	EgressProbes []Probe `json:"egress_probes"`
	// Controls are the same connects made from the host, which succeed:
	// they show the probes failed because of the sandbox, not the target.
	Controls []Probe `json:"controls"`
	// Namespace identifies the network namespace ("net:[4026532...]").
	Namespace string `json:"namespace"`
	// HostNamespace is the harness's own network namespace, for contrast.
	HostNamespace string `json:"host_namespace"`
	// Egress is the allowlist the model was given; nil when none.
	Egress *EgressEvidence `json:"egress,omitempty"`
}

// Check returns an error describing every way the evidence falls short of
// "no egress"; nil means the sandbox was sealed.
func (e NetEvidence) Check() error {
	var problems []string
	for _, i := range e.Interfaces {
		if i != "lo" {
			problems = append(problems, fmt.Sprintf("interface %q besides lo", i))
		}
	}
	if len(e.Interfaces) == 0 {
		problems = append(problems, "no interfaces recorded")
	}
	for _, r := range e.Routes {
		if strings.HasPrefix(r, "default") {
			problems = append(problems, fmt.Sprintf("default route %q", r))
		}
	}
	if len(e.EgressProbes) == 0 {
		problems = append(problems, "no egress probes recorded")
	}
	for _, p := range e.EgressProbes {
		if !p.Blocked {
			problems = append(problems, fmt.Sprintf("egress to %s succeeded", p.Target))
		}
	}
	if e.Egress != nil && !e.Egress.RefusalProbe.Blocked {
		problems = append(problems, fmt.Sprintf("egress proxy did not refuse %s, which is not on the allowlist (%s)", e.Egress.RefusalProbe.Target, e.Egress.RefusalProbe.Err))
	}
	if e.Namespace == "" || e.Namespace == e.HostNamespace {
		problems = append(problems, fmt.Sprintf("network namespace %q is not separate from the host's %q", e.Namespace, e.HostNamespace))
	}
	if len(problems) > 0 {
		return fmt.Errorf("sandbox egress evidence: %s", strings.Join(problems, "; "))
	}
	return nil
}

// KillReason says why a sandbox's model died when it did not exit by itself.
type KillReason string

const (
	KilledByNone     KillReason = ""
	KilledByOOM      KillReason = "oom"      // cgroup memory limit
	KilledByDeadline KillReason = "deadline" // Limits.WallClock
	KilledBySignal   KillReason = "signal"   // any other signal, including Stop
)

// Stats is a point-in-time summary of a sandbox.
type Stats struct {
	Relay RelayStats `json:"relay"`
	// MemoryPeakBytes is the cgroup's high-water mark (v1
	// memory.max_usage_in_bytes, v2 memory.peak); 0 when unknown.
	MemoryPeakBytes int64 `json:"memory_peak_bytes"`
	// OOMKills counts processes the kernel killed for the memory limit.
	OOMKills uint64 `json:"oom_kills"`
	// PidsLimitHits counts forks refused by the pids limit.
	PidsLimitHits uint64 `json:"pids_limit_hits"`
	Running       bool   `json:"running"`
	// ExitCode is the model's exit status, -1 when a signal killed it.
	ExitCode int `json:"exit_code"`
	// ExitStatus is the shell's view of the same: the exit code, or 128+N
	// when signal N killed the model.
	ExitStatus int        `json:"exit_status"`
	Signal     string     `json:"signal,omitempty"`
	KilledBy   KillReason `json:"killed_by,omitempty"`
	Started    time.Time  `json:"started"`
	Exited     time.Time  `json:"exited,omitzero"`
}
