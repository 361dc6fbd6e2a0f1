package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/sandgate/sandgate/internal/reexec"
)

// FileDigest is one file of the model as it was on the host.
type FileDigest struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256,omitempty"`
	// Link is a symlink's target (symlinks are recorded, not followed).
	Link string `json:"link,omitempty"`
}

// ModelDigest is every file the model was given: its executable and the
// trees of WorkDir and ReadOnlyPaths, sorted by path.
type ModelDigest struct {
	Roots []string     `json:"roots"`
	Files []FileDigest `json:"files"`
	// Skipped is set when ProcessOptions.SkipModelDigest turned the guard
	// off; there is then nothing to compare.
	Skipped bool `json:"skipped,omitempty"`
}

// FileChange is one difference between two digests.
type FileChange struct {
	Path string `json:"path"`
	// Change is "added", "removed", "modified" (content), "mode" or "link".
	Change string `json:"change"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// PoisonReport is the poisoning guard's verdict: whether the model's files
// changed between before its start and after its stop. The model sees
// them read-only, so a change means something on the host (or a hole in
// the sandbox) altered what was tested.
type PoisonReport struct {
	// Skipped: the guard was off (ProcessOptions.SkipModelDigest).
	Skipped bool         `json:"skipped,omitempty"`
	Changed bool         `json:"changed"`
	Changes []FileChange `json:"changes,omitempty"`
	Files   int          `json:"files"`
}

// modelRoots are the host paths DigestModelFiles covers.
func modelRoots(spec Spec) []string {
	var roots []string
	add := func(p string) {
		if p != "" && !slices.Contains(roots, p) {
			roots = append(roots, filepath.Clean(p))
		}
	}
	if len(spec.Command) > 0 {
		add(resolveExecutable(spec))
	}
	add(spec.WorkDir)
	for _, p := range spec.ReadOnlyPaths {
		add(p)
	}
	return roots
}

// resolveExecutable is the host file the model's Command[0] runs: this
// binary for a reexec role, else the path itself or its PATH lookup.
func resolveExecutable(spec Spec) string {
	c := spec.Command[0]
	if !strings.Contains(c, "/") && reexec.Registered(c) {
		exe, err := os.Executable()
		if err != nil {
			return ""
		}
		return exe
	}
	if strings.Contains(c, "/") {
		return c
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, c)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// DigestModelFiles hashes (sha256) the model's executable and every file
// under its WorkDir and ReadOnlyPaths. Large weights take a while: about a
// second per GB here.
func DigestModelFiles(spec Spec) (ModelDigest, error) {
	d := ModelDigest{Roots: modelRoots(spec)}
	for _, root := range d.Roots {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("digest model files: %w", err)
			}
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("digest model files: %w", err)
			}
			fd := FileDigest{Path: p, Size: info.Size(), Mode: info.Mode().String()}
			switch {
			case info.IsDir():
				fd.Size = 0
			case info.Mode()&fs.ModeSymlink != 0:
				fd.Link, _ = os.Readlink(p)
			case info.Mode().IsRegular():
				sum, n, err := sha256File(p)
				if err != nil {
					return fmt.Errorf("digest model files: %w", err)
				}
				fd.SHA256, fd.Size = sum, n
			}
			d.Files = append(d.Files, fd)
			return nil
		})
		if err != nil {
			return d, err
		}
	}
	slices.SortFunc(d.Files, func(a, b FileDigest) int { return strings.Compare(a.Path, b.Path) })
	return d, nil
}

// Diff lists what changed from d to after.
func (d ModelDigest) Diff(after ModelDigest) []FileChange {
	before := map[string]FileDigest{}
	for _, f := range d.Files {
		before[f.Path] = f
	}
	var out []FileChange
	seen := map[string]bool{}
	for _, a := range after.Files {
		seen[a.Path] = true
		b, ok := before[a.Path]
		switch {
		case !ok:
			out = append(out, FileChange{Path: a.Path, Change: "added", After: a.SHA256})
		case b.SHA256 != a.SHA256 || b.Size != a.Size:
			out = append(out, FileChange{Path: a.Path, Change: "modified", Before: b.SHA256, After: a.SHA256})
		case b.Mode != a.Mode:
			out = append(out, FileChange{Path: a.Path, Change: "mode", Before: b.Mode, After: a.Mode})
		case b.Link != a.Link:
			out = append(out, FileChange{Path: a.Path, Change: "link", Before: b.Link, After: a.Link})
		}
	}
	for _, b := range d.Files {
		if !seen[b.Path] {
			out = append(out, FileChange{Path: b.Path, Change: "removed", Before: b.SHA256})
		}
	}
	slices.SortFunc(out, func(x, y FileChange) int { return strings.Compare(x.Path, y.Path) })
	return out
}

// ModelFiles is the digest taken before the model started.
func (s *Sandbox) ModelFiles() ModelDigest { return s.modelFiles }

// CheckModelFiles digests the model's files again and diffs them against
// the digest taken before it started. Call it after Stop (Teardown does).
func (s *Sandbox) CheckModelFiles() (PoisonReport, error) {
	if s.modelFiles.Skipped {
		return PoisonReport{Skipped: true}, nil
	}
	now, err := DigestModelFiles(s.spec)
	changes := s.modelFiles.Diff(now)
	rep := PoisonReport{Changed: len(changes) > 0, Changes: changes, Files: len(now.Files)}
	if err != nil {
		// A root that vanished is itself a change worth flagging.
		rep.Changed = true
		return rep, fmt.Errorf("sandbox %s: poisoning guard: %w", s.id, err)
	}
	return rep, nil
}

// WipeReport is the proof that a stopped sandbox left nothing behind.
type WipeReport struct {
	Clean bool `json:"clean"`
	// Each list names what is still there; all empty when Clean.
	Processes  []int    `json:"processes,omitempty"`
	CgroupDirs []string `json:"cgroup_dirs,omitempty"`
	Mounts     []string `json:"mounts,omitempty"`
	Paths      []string `json:"paths,omitempty"` // scratch dir, relay socket
	// InitAlive is true when the sandbox's PID 1 still exists.
	InitAlive bool `json:"init_alive,omitempty"`
	// Checked lists what was looked at, for the audit record.
	Checked []string `json:"checked"`
}

// VerifyWipe checks, after Stop, that no process is left in the cgroup,
// the cgroup directories are gone, nothing is mounted under the scratch
// dir, the scratch dir is gone and init is gone.
func (s *Sandbox) VerifyWipe() WipeReport {
	var r WipeReport
	dirs := s.cg.Dirs()
	r.Checked = append(r.Checked, "cgroup.procs and existence of "+strings.Join(dirs, ", "))
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			r.CgroupDirs = append(r.CgroupDirs, d)
		}
	}
	if pids, _ := s.cg.Procs(); len(pids) > 0 {
		r.Processes = pids
	}
	r.Checked = append(r.Checked, "/proc/self/mountinfo under "+s.scratch)
	r.Mounts = mountsUnder(s.scratch)
	for _, p := range []string{s.scratch, s.socket} {
		if p == "" {
			continue
		}
		r.Checked = append(r.Checked, "path "+p)
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			r.Paths = append(r.Paths, p)
		}
	}
	r.Checked = append(r.Checked, "init pid "+strconv.Itoa(s.proc.Pid))
	r.InitAlive = pidAlive(s.proc.Pid)
	r.Clean = len(r.Processes) == 0 && len(r.CgroupDirs) == 0 && len(r.Mounts) == 0 && len(r.Paths) == 0 && !r.InitAlive
	return r
}

// pidAlive: a zombie counts as gone (it holds no resources and is only
// waiting for a reaper that is not us).
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// mountsUnder lists mount points at or below dir in this mount namespace.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TeardownReport is what Teardown found; the caller records it.
type TeardownReport struct {
	Wipe       WipeReport   `json:"wipe"`
	ModelFiles PoisonReport `json:"model_files"`
	// Egress is every connection the model attempted to an outside
	// service; empty without an allowlist.
	Egress []EgressRecord `json:"egress,omitempty"`
}

// Teardown stops the sandbox, verifies the wipe and runs the poisoning
// guard. The error covers Stop's failures, a dirty wipe and changed model
// files; the report is filled in either way.
func (s *Sandbox) Teardown(ctx context.Context) (TeardownReport, error) {
	var rep TeardownReport
	var errs []error
	if err := s.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	// After Stop: the egress relay is closed, every connection recorded.
	rep.Egress = s.EgressTranscript()
	rep.Wipe = s.VerifyWipe()
	if !rep.Wipe.Clean {
		errs = append(errs, fmt.Errorf("sandbox %s: wipe incomplete: processes %v, cgroup dirs %v, mounts %v, paths %v, init alive %v",
			s.id, rep.Wipe.Processes, rep.Wipe.CgroupDirs, rep.Wipe.Mounts, rep.Wipe.Paths, rep.Wipe.InitAlive))
	}
	pr, err := s.CheckModelFiles()
	rep.ModelFiles = pr
	if err != nil {
		errs = append(errs, err)
	} else if pr.Changed {
		errs = append(errs, fmt.Errorf("sandbox %s: poisoning guard: %d model file(s) changed while it ran, first %s %s", s.id, len(pr.Changes), pr.Changes[0].Change, pr.Changes[0].Path))
	}
	return rep, errors.Join(errs...)
}
