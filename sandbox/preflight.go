package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cgroupVersion is which hierarchy limits are written to.
type cgroupVersion int

const (
	cgroupV1 cgroupVersion = 1
	cgroupV2 cgroupVersion = 2
)

func (v cgroupVersion) String() string { return "v" + strconv.Itoa(int(v)) }

const cgroupRoot = "/sys/fs/cgroup"

// cgroupUsage is what the cgroup saw of the sandbox.
type cgroupUsage struct {
	PeakBytes int64
	OOMKills  uint64
	PidsHits  uint64
}

// sandboxCgroup hides v1 versus v2 from the rest of the provider.
type sandboxCgroup interface {
	// Freeze stops every task and returns once the cgroup itself reports
	// frozen (or ctx ends); Thaw undoes it.
	Freeze(ctx context.Context) error
	Thaw() error
	// FreezerState is the kernel's word: v1 freezer.state, v2 "FROZEN" or
	// "THAWED" from the frozen key of cgroup.events.
	FreezerState() (string, error)
	// CPUUsage is the CPU time every task of the group has used so far.
	CPUUsage() (time.Duration, error)
	// StatFiles are the raw accounting files, keyed by their path under
	// the cgroup root, for snapshots.
	StatFiles() map[string]string
	AddProc(pid int) error
	Procs() ([]int, error)
	// KillAll SIGKILLs every process left, which matters only if something
	// escaped the pid namespace's teardown (it should not).
	KillAll() error
	Usage() cgroupUsage
	Delete() error
	// Dirs are the directories the cgroup occupies, for tests and audits.
	Dirs() []string
}

// hostFacts are what the process provider needs to know about the host,
// gathered once so the decision in checkHost is a pure, testable function.
type hostFacts struct {
	GOOS string
	EUID int
	// UsernsClone is /proc/sys/kernel/unprivileged_userns_clone ("" when
	// the kernel has no such knob, i.e. it does not restrict user namespaces).
	UsernsClone string
	// MaxUserNS is /proc/sys/user/max_user_namespaces, -1 when unreadable.
	MaxUserNS int64
	// Cgroup is the hierarchy holding the controllers, 0 when none.
	Cgroup    cgroupVersion
	CgroupErr error
	// CgroupWritable says whether this user may create the sandbox's
	// parent cgroup.
	CgroupWritable bool
	CgroupParent   string
}

// isolationMode is how the provider gets the privilege to make namespaces.
type isolationMode int

const (
	modeRoot     isolationMode = iota + 1 // real root
	modeRootless                          // CLONE_NEWUSER with uid/gid maps
)

// checkHost returns how to isolate on this host, or an error wrapping
// ErrUnsupported that lists everything missing and how to fix it.
func checkHost(f hostFacts) (isolationMode, error) {
	if f.GOOS != "linux" {
		return 0, fmt.Errorf("the process sandbox provider needs Linux (namespaces and cgroups), this is %s; use the docker or kubernetes provider: %w", f.GOOS, ErrUnsupported)
	}
	var missing []string
	mode := modeRoot
	if f.EUID != 0 {
		mode = modeRootless
		if f.UsernsClone == "0" || f.MaxUserNS == 0 {
			missing = append(missing, fmt.Sprintf("not root and unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=%q, user.max_user_namespaces=%d): run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1); user.max_user_namespaces must also be above 0", f.UsernsClone, f.MaxUserNS))
		}
	}
	switch {
	case f.CgroupErr != nil:
		missing = append(missing, fmt.Sprintf("cgroups: %v", f.CgroupErr))
	case f.Cgroup == cgroupV1 && f.EUID != 0:
		missing = append(missing, "cgroup v1 limits can only be set by root: run as root, or on a cgroup v2 host with a delegated subtree")
	case !f.CgroupWritable:
		missing = append(missing, fmt.Sprintf("cannot create cgroup %q under %s (%s): run as root or delegate that subtree to uid %d", f.CgroupParent, cgroupRoot, f.Cgroup, f.EUID))
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("process sandbox preflight: %s: %w", strings.Join(missing, "; "), ErrUnsupported)
	}
	return mode, nil
}
