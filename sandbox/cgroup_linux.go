package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// detectCgroupVersion maps the host's mode onto the hierarchy that holds the
// memory controller: hybrid hosts keep their controllers on v1 mounts.
func detectCgroupVersion() (cgroupVersion, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return cgroupV2, nil
	case cgroups.Legacy, cgroups.Hybrid:
		return cgroupV1, nil
	default:
		return 0, fmt.Errorf("no cgroup filesystem mounted under %s: %w", cgroupRoot, ErrUnsupported)
	}
}

// newSandboxCgroup creates group (e.g. "/sandgate/<id>") with lim applied.
func newSandboxCgroup(v cgroupVersion, group string, lim Limits, log *slog.Logger) (sandboxCgroup, error) {
	switch v {
	case cgroupV1:
		return newCgroupV1(group, lim)
	case cgroupV2:
		return newCgroupV2(cgroupRoot, group, lim, log)
	}
	return nil, fmt.Errorf("cgroup version %d: %w", v, ErrUnsupported)
}

const cpuPeriodUS = 100000

func cpuQuota(cpus float64) int64 {
	q := int64(cpus * cpuPeriodUS)
	if q < 1000 { // the kernel refuses quotas under 1ms
		q = 1000
	}
	return q
}

// ---- v1 ----

type cgroupV1Handle struct {
	group string
	cg    cgroup1.Cgroup
	subs  []string
}

// v1Subsystems are the controllers a sandbox uses; cpuset, devices, blkio and
// the rest are left alone so creating a group never needs their setup.
func v1Subsystems() []cgroup1.Name {
	return []cgroup1.Name{cgroup1.Memory, cgroup1.Pids, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Freezer}
}

func newCgroupV1(group string, lim Limits) (sandboxCgroup, error) {
	var subs []cgroup1.Subsystem
	var names []string
	for _, n := range v1Subsystems() {
		if _, err := os.Stat(filepath.Join(cgroupRoot, string(n))); err != nil {
			if requiredV1(n, lim) {
				return nil, fmt.Errorf("cgroup v1 controller %q is not mounted at %s but the limits need it: %w", n, cgroupRoot, ErrUnsupported)
			}
			continue
		}
		var s cgroup1.Subsystem
		switch n {
		case cgroup1.Memory:
			s = cgroup1.NewMemory(cgroupRoot, cgroup1.OptionalSwap())
		case cgroup1.Pids:
			s = cgroup1.NewPids(cgroupRoot)
		case cgroup1.Cpu:
			s = cgroup1.NewCpu(cgroupRoot)
		case cgroup1.Cpuacct:
			s = cgroup1.NewCpuacct(cgroupRoot)
		case cgroup1.Freezer:
			s = cgroup1.NewFreezer(cgroupRoot)
		}
		subs = append(subs, s)
		names = append(names, string(n))
	}
	res := &specs.LinuxResources{}
	if lim.MemoryBytes > 0 {
		m := lim.MemoryBytes
		res.Memory = &specs.LinuxMemory{Limit: &m}
		if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes")); err == nil {
			// Without this the model could swap instead of hitting the limit.
			sw := m
			res.Memory.Swap = &sw
		} else {
			zero := uint64(0)
			res.Memory.Swappiness = &zero
		}
	}
	if lim.Pids > 0 {
		p := lim.Pids
		res.Pids = &specs.LinuxPids{Limit: &p}
	}
	if lim.CPUs > 0 {
		q, per := cpuQuota(lim.CPUs), uint64(cpuPeriodUS)
		res.CPU = &specs.LinuxCPU{Quota: &q, Period: &per}
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(group), res,
		cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return subs, nil }))
	if err != nil {
		h := &cgroupV1Handle{group: group, subs: names}
		h.removeDirs()
		return nil, fmt.Errorf("create cgroup v1 %s: %w", group, err)
	}
	return &cgroupV1Handle{group: group, cg: cg, subs: names}, nil
}

func requiredV1(n cgroup1.Name, lim Limits) bool {
	switch n {
	case cgroup1.Memory:
		return lim.MemoryBytes > 0
	case cgroup1.Pids:
		return lim.Pids > 0
	case cgroup1.Cpu:
		return lim.CPUs > 0
	}
	return false
}

func (h *cgroupV1Handle) dir(sub string) string { return filepath.Join(cgroupRoot, sub, h.group) }

func (h *cgroupV1Handle) Dirs() []string {
	out := make([]string, 0, len(h.subs))
	for _, s := range h.subs {
		out = append(out, h.dir(s))
	}
	return out
}

func (h *cgroupV1Handle) AddProc(pid int) error {
	if err := h.cg.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, h.group, err)
	}
	return nil
}

func (h *cgroupV1Handle) Procs() ([]int, error) {
	return readProcs(h.Dirs())
}

func (h *cgroupV1Handle) KillAll() error {
	// Freezing first stops a fork loop from outrunning the kill.
	frozen := h.cg.Freeze() == nil
	pids, err := h.Procs()
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	if frozen {
		if terr := h.cg.Thaw(); terr != nil {
			err = errors.Join(err, fmt.Errorf("thaw cgroup %s: %w", h.group, terr))
		}
	}
	return err
}

func (h *cgroupV1Handle) Usage() cgroupUsage {
	var u cgroupUsage
	mem := h.dir("memory")
	if v, err := readUintFile(filepath.Join(mem, "memory.max_usage_in_bytes")); err == nil {
		u.PeakBytes = int64(v)
	}
	if kv, err := readKV(filepath.Join(mem, "memory.oom_control")); err == nil {
		u.OOMKills = kv["oom_kill"]
	}
	if kv, err := readKV(filepath.Join(h.dir("pids"), "pids.events")); err == nil {
		u.PidsHits = kv["max"]
	}
	return u
}

func (h *cgroupV1Handle) Delete() error {
	err := h.cg.Delete()
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		err = nil
	}
	// The library skips controllers it thinks are absent; make sure every
	// directory we may have created is gone.
	return errors.Join(err, h.removeDirs())
}

func (h *cgroupV1Handle) removeDirs() error {
	var errs []error
	for _, s := range h.subs {
		if err := rmdirRetry(h.dir(s)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ---- v2 ----

type cgroupV2Handle struct {
	root  string // the unified mount; a fake directory in unit tests
	group string
	m     *cgroup2.Manager
}

func newCgroupV2(root, group string, lim Limits, log *slog.Logger) (*cgroupV2Handle, error) {
	res := &cgroup2.Resources{}
	if lim.MemoryBytes > 0 {
		m := lim.MemoryBytes
		res.Memory = &cgroup2.Memory{Max: &m}
	}
	if lim.Pids > 0 {
		res.Pids = &cgroup2.Pids{Max: lim.Pids}
	}
	if lim.CPUs > 0 {
		q, per := cpuQuota(lim.CPUs), uint64(cpuPeriodUS)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &per)}
	}
	m, err := cgroup2.NewManager(root, group, res)
	if err != nil {
		return nil, fmt.Errorf("create cgroup v2 %s: %w", group, err)
	}
	h := &cgroupV2Handle{root: root, group: group, m: m}
	if lim.MemoryBytes > 0 {
		// Best effort: the file exists only when the kernel accounts swap.
		if err := os.WriteFile(filepath.Join(h.dir(), "memory.swap.max"), []byte("0"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("sandbox cgroup: could not disable swap", "group", group, "err", err)
		}
	}
	return h, nil
}

func (h *cgroupV2Handle) dir() string    { return filepath.Join(h.root, h.group) }
func (h *cgroupV2Handle) Dirs() []string { return []string{h.dir()} }

func (h *cgroupV2Handle) AddProc(pid int) error {
	if err := h.m.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, h.group, err)
	}
	return nil
}

func (h *cgroupV2Handle) Procs() ([]int, error) { return readProcs(h.Dirs()) }

func (h *cgroupV2Handle) KillAll() error {
	if err := h.m.Kill(); err != nil {
		return fmt.Errorf("kill cgroup %s: %w", h.group, err)
	}
	return nil
}

func (h *cgroupV2Handle) Usage() cgroupUsage {
	var u cgroupUsage
	if v, err := readUintFile(filepath.Join(h.dir(), "memory.peak")); err == nil {
		u.PeakBytes = int64(v)
	}
	if kv, err := readKV(filepath.Join(h.dir(), "memory.events")); err == nil {
		u.OOMKills = kv["oom_kill"]
	}
	if kv, err := readKV(filepath.Join(h.dir(), "pids.events")); err == nil {
		u.PidsHits = kv["max"]
	}
	return u
}

func (h *cgroupV2Handle) Delete() error {
	if err := h.m.Delete(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(fmt.Errorf("delete cgroup %s: %w", h.group, err), rmdirRetry(h.dir()))
	}
	return nil
}

func (h *cgroupV2Handle) Freeze(ctx context.Context) error {
	// cgroup.freeze is only the request; cgroup.events says when every
	// task has actually stopped.
	if err := os.WriteFile(filepath.Join(h.dir(), "cgroup.freeze"), []byte("1"), 0); err != nil {
		return fmt.Errorf("freeze cgroup %s: %w", h.group, err)
	}
	return pollState(ctx, h, "FROZEN")
}

func (h *cgroupV2Handle) Thaw() error {
	if err := os.WriteFile(filepath.Join(h.dir(), "cgroup.freeze"), []byte("0"), 0); err != nil {
		return fmt.Errorf("thaw cgroup %s: %w", h.group, err)
	}
	return nil
}

func (h *cgroupV2Handle) FreezerState() (string, error) {
	kv, err := readKV(filepath.Join(h.dir(), "cgroup.events"))
	if err != nil {
		return "", fmt.Errorf("cgroup %s freezer state: %w", h.group, err)
	}
	if v, ok := kv["frozen"]; !ok {
		return "", fmt.Errorf("cgroup %s: cgroup.events has no frozen key (kernel before 5.2)", h.group)
	} else if v == 1 {
		return "FROZEN", nil
	}
	return "THAWED", nil
}

func (h *cgroupV2Handle) CPUUsage() (time.Duration, error) {
	kv, err := readKV(filepath.Join(h.dir(), "cpu.stat"))
	if err != nil {
		return 0, fmt.Errorf("cgroup %s cpu usage: %w", h.group, err)
	}
	us, ok := kv["usage_usec"]
	if !ok {
		return 0, fmt.Errorf("cgroup %s: cpu.stat has no usage_usec", h.group)
	}
	return time.Duration(us) * time.Microsecond, nil
}

var v2StatFiles = []string{
	"memory.current", "memory.peak", "memory.max", "memory.events", "memory.stat", "memory.swap.current",
	"pids.current", "pids.max", "pids.events", "cpu.stat", "cpu.max", "cgroup.events", "cgroup.freeze", "cgroup.procs",
}

func (h *cgroupV2Handle) StatFiles() map[string]string {
	return readStatFiles(h.root, []string{h.dir()}, v2StatFiles)
}

// ---- v1 freezer and accounting ----

func (h *cgroupV1Handle) Freeze(ctx context.Context) error {
	if !slices.Contains(h.subs, string(cgroup1.Freezer)) {
		return fmt.Errorf("cgroup %s: the v1 freezer controller is not mounted: %w", h.group, ErrUnsupported)
	}
	// Written by hand rather than cg.Freeze(), which polls without end.
	if err := os.WriteFile(filepath.Join(h.dir("freezer"), "freezer.state"), []byte("FROZEN"), 0); err != nil {
		return fmt.Errorf("freeze cgroup %s: %w", h.group, err)
	}
	return pollState(ctx, h, "FROZEN")
}

func (h *cgroupV1Handle) Thaw() error {
	if err := os.WriteFile(filepath.Join(h.dir("freezer"), "freezer.state"), []byte("THAWED"), 0); err != nil {
		return fmt.Errorf("thaw cgroup %s: %w", h.group, err)
	}
	return nil
}

func (h *cgroupV1Handle) FreezerState() (string, error) {
	b, err := os.ReadFile(filepath.Join(h.dir("freezer"), "freezer.state"))
	if err != nil {
		return "", fmt.Errorf("cgroup %s freezer state: %w", h.group, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *cgroupV1Handle) CPUUsage() (time.Duration, error) {
	ns, err := readUintFile(filepath.Join(h.dir("cpuacct"), "cpuacct.usage"))
	if err != nil {
		return 0, fmt.Errorf("cgroup %s cpu usage: %w", h.group, err)
	}
	return time.Duration(ns), nil
}

var v1StatFiles = []string{
	"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.failcnt",
	"memory.oom_control", "memory.stat", "pids.current", "pids.max", "pids.events",
	"cpuacct.usage", "cpuacct.stat", "cpu.stat", "cpu.cfs_quota_us", "cpu.cfs_period_us", "freezer.state", "cgroup.procs",
}

func (h *cgroupV1Handle) StatFiles() map[string]string {
	return readStatFiles(cgroupRoot, h.Dirs(), v1StatFiles)
}

// pollState waits for the freezer to reach want. A task in an
// uninterruptible sleep can hold FREEZING for a while; ctx bounds that.
func pollState(ctx context.Context, cg sandboxCgroup, want string) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := cg.FreezerState()
		if err != nil {
			return err
		}
		if st == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup freezer still %s, want %s: %w", st, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// readStatFiles reads each named file that exists in dirs, keyed by its
// path relative to root.
func readStatFiles(root string, dirs, names []string) map[string]string {
	out := map[string]string{}
	for _, d := range dirs {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(d, n))
			if err != nil {
				continue
			}
			rel, err := filepath.Rel(root, filepath.Join(d, n))
			if err != nil {
				rel = filepath.Join(d, n)
			}
			out[rel] = string(b)
		}
	}
	return out
}

// ---- helpers ----

func readProcs(dirs []string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	var errs []error
	for _, d := range dirs {
		f, err := os.Open(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			p, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
			if err == nil && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		f.Close()
	}
	return out, errors.Join(errs...)
}

// rmdirRetry removes an empty cgroup directory. The kernel answers EBUSY for
// a moment after the last task exits, so retry briefly.
func rmdirRetry(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup dir %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readUintFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
