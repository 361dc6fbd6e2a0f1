package sandbox

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Filesystem modes recorded in IsolationEvidence.Filesystem.
const (
	// FilesystemScratchRoot: the model runs in a pivot_root'ed tree of
	// read-only binds plus size-capped tmpfs areas.
	FilesystemScratchRoot = "pivot_root"
	// FilesystemHost: the model sees the host's tree (ProcessOptions.
	// HostFilesystem); only Landlock keeps its writes to the scratch dir.
	FilesystemHost = "host"
)

// Paths inside a scratch root.
const (
	sandboxHome = "/home/sandbox"
	sandboxTmp  = "/tmp"
	// sandboxExe is where the sandgate binary itself is bound, so reexec
	// roles (and the isolation probe) run a path Landlock allows rather than
	// /proc/self/exe, which jumps to the host's file.
	sandboxExe = "/.sandgate/sandgate"
)

// Evidence is everything recorded about a sandbox before its model ran.
type Evidence struct {
	Network   NetEvidence       `json:"network"`
	Isolation IsolationEvidence `json:"isolation"`
}

// Capabilities are the five capability sets of a process, as the hex masks
// /proc/<pid>/status shows them.
type Capabilities struct {
	Inheritable string `json:"inheritable"`
	Permitted   string `json:"permitted"`
	Effective   string `json:"effective"`
	Bounding    string `json:"bounding"`
	Ambient     string `json:"ambient"`
}

// empty reports which sets are not all zero.
func (c Capabilities) nonEmpty() []string {
	var bad []string
	for _, s := range []struct{ name, v string }{
		{"CapInh", c.Inheritable}, {"CapPrm", c.Permitted}, {"CapEff", c.Effective},
		{"CapBnd", c.Bounding}, {"CapAmb", c.Ambient},
	} {
		n, err := strconv.ParseUint(s.v, 16, 64)
		if err != nil || n != 0 {
			bad = append(bad, fmt.Sprintf("%s=%q", s.name, s.v))
		}
	}
	return bad
}

// SeccompEvidence is the model's seccomp state.
type SeccompEvidence struct {
	// Mode is the "Seccomp:" field of /proc/self/status: 2 means filtered.
	Mode int `json:"mode"`
	// Filters is the "Seccomp_filters:" count.
	Filters int `json:"filters"`
	// Denied are the syscalls the filter fails with EPERM.
	Denied []string `json:"denied"`
	// Rules are the other rules the shim installed, in words.
	Rules []string `json:"rules"`
}

// LandlockEvidence is what Landlock could enforce on this kernel.
type LandlockEvidence struct {
	// ABI is the kernel's Landlock ABI version; 0 when absent.
	ABI int `json:"abi"`
	// Applied is true when a ruleset was enforced on the model.
	Applied bool `json:"applied"`
	// Status says why not, or which access rights were handled.
	Status   string   `json:"status"`
	ReadOnly []string `json:"read_only"`
	Writable []string `json:"writable"`
}

// Mount is one line of the model's /proc/self/mountinfo.
type Mount struct {
	Target   string `json:"target"`
	FSType   string `json:"fstype"`
	Source   string `json:"source"`
	Options  string `json:"options"`
	ReadOnly bool   `json:"read_only"`
}

// IsolationEvidence records the model's privileges and filesystem as a
// probe process, started exactly as the model is, found them from inside.
type IsolationEvidence struct {
	Filesystem   string           `json:"filesystem"`
	Uid          int              `json:"uid"`
	Capabilities Capabilities     `json:"capabilities"`
	NoNewPrivs   bool             `json:"no_new_privs"`
	Seccomp      SeccompEvidence  `json:"seccomp"`
	Landlock     LandlockEvidence `json:"landlock"`
	Mounts       []Mount          `json:"mounts"`
	// Writable are the mount points the model may write to.
	Writable []string `json:"writable"`
	// Attempts are privileged operations and writes outside the scratch
	// areas tried from inside; each must be Blocked.
	Attempts []Probe `json:"attempts"`
	// Controls are writes to the scratch areas from inside; they succeed,
	// showing the attempts failed because of the rules, not a broken probe.
	Controls []Probe `json:"controls"`
	// InitThread is the capability set of the shim thread that forks the
	// model, read by the harness from outside the sandbox.
	InitThread *Capabilities `json:"init_thread,omitempty"`
}

// Check returns an error naming every way the evidence falls short of
// "no privileges, no writes outside the scratch areas"; nil means sealed.
func (e IsolationEvidence) Check() error {
	var problems []string
	if bad := e.Capabilities.nonEmpty(); len(bad) > 0 {
		problems = append(problems, "capabilities left: "+strings.Join(bad, ", "))
	}
	if e.InitThread != nil {
		if bad := e.InitThread.nonEmpty(); len(bad) > 0 {
			problems = append(problems, "init thread capabilities left: "+strings.Join(bad, ", "))
		}
	}
	if !e.NoNewPrivs {
		problems = append(problems, "no_new_privs not set")
	}
	if e.Seccomp.Mode != 2 || e.Seccomp.Filters == 0 {
		problems = append(problems, fmt.Sprintf("seccomp mode %d with %d filters, want a filter", e.Seccomp.Mode, e.Seccomp.Filters))
	}
	if e.Landlock.ABI > 0 && !e.Landlock.Applied {
		problems = append(problems, fmt.Sprintf("landlock ABI %d available but not applied: %s", e.Landlock.ABI, e.Landlock.Status))
	}
	if len(e.Attempts) == 0 {
		problems = append(problems, "no privileged attempts recorded")
	}
	for _, a := range e.Attempts {
		if !a.Blocked {
			problems = append(problems, fmt.Sprintf("%s succeeded", a.Target))
		}
	}
	for _, c := range e.Controls {
		if c.Blocked {
			problems = append(problems, fmt.Sprintf("control %s failed (%s): the attempts prove nothing", c.Target, c.Err))
		}
	}
	switch e.Filesystem {
	case FilesystemScratchRoot:
		if len(e.Mounts) == 0 {
			problems = append(problems, "no mounts recorded")
		}
		for _, m := range e.Mounts {
			if !m.ReadOnly && !slices.Contains(e.Writable, m.Target) {
				problems = append(problems, fmt.Sprintf("mount %s (%s) is writable", m.Target, m.FSType))
			}
		}
	case FilesystemHost:
	default:
		problems = append(problems, fmt.Sprintf("unknown filesystem mode %q", e.Filesystem))
	}
	if len(problems) > 0 {
		return fmt.Errorf("sandbox isolation evidence: %s", strings.Join(problems, "; "))
	}
	return nil
}
