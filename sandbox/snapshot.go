package sandbox

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SnapshotVersion is the layout version written into every manifest.
const SnapshotVersion = 1

// Files of a snapshot directory.
const (
	SnapshotManifestFile   = "manifest.json"
	SnapshotConfigFile     = "config.json"
	SnapshotTranscriptFile = "transcript.json"
	snapshotCgroupFile     = "cgroup.json"
	snapshotProcsFile      = "processes.json"
	snapshotEvidenceFile   = "evidence.json"
	// SnapshotEgressFile holds the egress records (EgressRecord) so far;
	// written only for a sandbox with an allowlist.
	SnapshotEgressFile   = "egress.json"
	snapshotWritableFile = "writable.tar"
	snapshotStdoutFile   = "stdout.txt"
	snapshotStderrFile   = "stderr.txt"
	snapshotCRIUDir      = "criu"
)

// FreezeEvidence shows a sandbox was frozen, from the cgroup itself: a
// frozen task's /proc status still says S, so that is not asked.
type FreezeEvidence struct {
	// State is the freezer's own word: v1 freezer.state, v2 cgroup.events.
	State string `json:"state"`
	// CPUBefore and CPUAfter are the group's CPU time at both ends of
	// Window; equal when nothing ran.
	CPUBefore time.Duration `json:"cpu_before"`
	CPUAfter  time.Duration `json:"cpu_after"`
	Window    time.Duration `json:"window"`
	// Frozen is State FROZEN and CPU time not advancing.
	Frozen bool `json:"frozen"`
}

// SnapshotFile is one file of a snapshot, for integrity checks after upload.
type SnapshotFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// WritableLayer says what of the model's writable areas (/tmp and home)
// went into writable.tar.
type WritableLayer struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Skipped are files left out because the cap was reached (at most 100
	// names); Truncated says any were.
	Skipped   []string `json:"skipped,omitempty"`
	Truncated bool     `json:"truncated"`
	// Note says why there is no tar at all, if there is none.
	Note string `json:"note,omitempty"`
}

// CRIUResult is the best-effort process memory dump.
type CRIUResult struct {
	// Status is "ok", "skipped" or "failed".
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// SnapshotManifest describes a snapshot directory (manifest.json).
type SnapshotManifest struct {
	Version   int       `json:"version"`
	SandboxID string    `json:"sandbox_id"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
	// Running says the model was alive (and was frozen) when captured;
	// false for a snapshot after it crashed or was killed.
	Running   bool            `json:"running"`
	Freeze    *FreezeEvidence `json:"freeze,omitempty"`
	Stats     Stats           `json:"stats"`
	Exchanges int             `json:"exchanges"`
	Writable  WritableLayer   `json:"writable"`
	CRIU      CRIUResult      `json:"criu"`
	Files     []SnapshotFile  `json:"files"`
	// Errors are parts that could not be captured; the rest still was.
	Errors []string `json:"errors,omitempty"`
}

// SnapshotInfo is where a snapshot was written and what it holds. The
// directory belongs to the caller: upload it (TarSnapshot) and remove it.
type SnapshotInfo struct {
	Dir      string           `json:"dir"`
	Manifest SnapshotManifest `json:"manifest"`
}

// SnapshotConfig is config.json: what is needed to start the same model
// again (`starter snapshot replay`). Env values whose names look secret
// are redacted.
type SnapshotConfig struct {
	Spec  Spec         `json:"spec"`
	Relay RelayOptions `json:"relay"`
}

// ProcessInfo is one process of the sandbox as /proc showed it.
type ProcessInfo struct {
	Pid     int               `json:"pid"`
	Cmdline []string          `json:"cmdline"`
	Status  map[string]string `json:"status"`
}

// SnapshotOptions configure snapshots of the process provider.
type SnapshotOptions struct {
	// Root is where snapshot directories are written (default
	// <ScratchRoot>/snapshots). They survive Stop.
	Root string
	// OnFailure snapshots automatically when the model crashes or exits
	// non-zero, is OOM-killed, reaches its wall-clock deadline (frozen,
	// before the kill) or breaches a relay budget (frozen, then thawed).
	// Sandbox.Snapshots lists them.
	OnFailure bool
	// MaxWritableBytes caps writable.tar's file contents (default 64 MiB).
	MaxWritableBytes int64
	// FreezeWindow is how long CPU time is watched to prove a freeze
	// (default 100ms).
	FreezeWindow time.Duration
}

func (o SnapshotOptions) withDefaults(scratchRoot string) SnapshotOptions {
	if o.Root == "" {
		o.Root = filepath.Join(scratchRoot, "snapshots")
	}
	if o.MaxWritableBytes <= 0 {
		o.MaxWritableBytes = 64 << 20
	}
	if o.FreezeWindow <= 0 {
		o.FreezeWindow = 100 * time.Millisecond
	}
	return o
}

var errStopped = errors.New("sandbox already stopped: its cgroup and scratch dir are gone; snapshot before Stop")

// Freeze stops every process of the sandbox with the cgroup freezer and
// proves it: the cgroup reports FROZEN and its CPU time does not advance
// over the freeze window. Thaw resumes.
func (s *Sandbox) Freeze(ctx context.Context) (FreezeEvidence, error) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return FreezeEvidence{}, fmt.Errorf("freeze sandbox %s: %w", s.id, errStopped)
	}
	return s.freeze(ctx)
}

func (s *Sandbox) freeze(ctx context.Context) (FreezeEvidence, error) {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.cg.Freeze(fctx); err != nil {
		return FreezeEvidence{}, fmt.Errorf("freeze sandbox %s: %w", s.id, err)
	}
	ev := FreezeEvidence{Window: s.snapOpt.FreezeWindow}
	before, err := s.cg.CPUUsage()
	if err != nil {
		return ev, fmt.Errorf("freeze sandbox %s: %w", s.id, err)
	}
	t := time.NewTimer(ev.Window)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return ev, fmt.Errorf("freeze sandbox %s: %w", s.id, ctx.Err())
	}
	after, err := s.cg.CPUUsage()
	if err != nil {
		return ev, fmt.Errorf("freeze sandbox %s: %w", s.id, err)
	}
	state, err := s.cg.FreezerState()
	if err != nil {
		return ev, fmt.Errorf("freeze sandbox %s: %w", s.id, err)
	}
	ev.State, ev.CPUBefore, ev.CPUAfter = state, before, after
	ev.Frozen = state == "FROZEN" && after == before
	return ev, nil
}

// Thaw resumes a frozen sandbox.
func (s *Sandbox) Thaw() error {
	if err := s.cg.Thaw(); err != nil {
		return fmt.Errorf("thaw sandbox %s: %w", s.id, err)
	}
	return nil
}

// Snapshots are the snapshots taken so far, on request or on failure.
func (s *Sandbox) Snapshots() []SnapshotInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.snapshots)
}

// Snapshot freezes the sandbox (when the model is still running), writes
// a snapshot directory and thaws it again. The directory holds manifest.json
// (reason, freeze evidence, stats, file digests), config.json, transcript.json,
// cgroup.json, processes.json, evidence.json, the model's stdout/stderr
// tails, writable.tar (capped) and, when criu is installed, a CRIU dump.
// It must be called before Stop.
func (s *Sandbox) Snapshot(ctx context.Context, reason string) (SnapshotInfo, error) {
	return s.snapshot(ctx, reason, false)
}

func (s *Sandbox) snapshot(ctx context.Context, reason string, keepFrozen bool) (SnapshotInfo, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.mu.Lock()
	stopped, n := s.stopped, len(s.snapshots)+1
	s.mu.Unlock()
	if stopped {
		return SnapshotInfo{}, fmt.Errorf("snapshot sandbox %s: %w", s.id, errStopped)
	}
	if strings.TrimSpace(reason) == "" {
		reason = "requested"
	}
	dir := filepath.Join(s.snapOpt.Root, fmt.Sprintf("%s-%02d-%s", s.id, n, slug(reason)))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot sandbox %s: create %s: %w", s.id, dir, err)
	}
	m := SnapshotManifest{Version: SnapshotVersion, SandboxID: s.id, Name: s.spec.Name, Reason: reason, Time: time.Now().UTC()}
	fail := func(part string, err error) { m.Errors = append(m.Errors, part+": "+err.Error()) }

	running := s.running()
	m.Running = running
	// CRIU freezes the tree itself, so it goes first, while it still runs.
	m.CRIU = s.criuDump(ctx, filepath.Join(dir, snapshotCRIUDir), running)
	if running {
		ev, err := s.freeze(ctx)
		if err != nil {
			fail("freeze", err)
		} else {
			m.Freeze = &ev
		}
		if !keepFrozen {
			defer func() {
				if err := s.cg.Thaw(); err != nil {
					s.log.Warn("snapshot: thaw", "err", err)
				}
			}()
		}
	}
	m.Stats = s.Stats()

	var tr []Exchange
	if s.relay != nil {
		tr = s.relay.Transcript()
	}
	m.Exchanges = len(tr)
	cfg := SnapshotConfig{Spec: redactSpec(s.spec), Relay: s.relayOpt}
	writes := []struct {
		name string
		v    any
	}{
		{SnapshotConfigFile, cfg},
		{SnapshotTranscriptFile, tr},
		{snapshotCgroupFile, s.cg.StatFiles()},
		{snapshotProcsFile, s.processes()},
		{snapshotEvidenceFile, s.AllEvidence()},
	}
	if s.egress != nil {
		writes = append(writes, struct {
			name string
			v    any
		}{SnapshotEgressFile, s.egress.Transcript()})
	}
	for _, w := range writes {
		if err := writeJSONFile(filepath.Join(dir, w.name), w.v); err != nil {
			fail(w.name, err)
		}
	}
	for name, text := range map[string]string{snapshotStdoutFile: s.StdoutTail(), snapshotStderrFile: s.StderrTail()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			fail(name, err)
		}
	}
	wl, err := s.tarWritable(filepath.Join(dir, snapshotWritableFile))
	if err != nil {
		fail(snapshotWritableFile, err)
	}
	m.Writable = wl

	files, err := digestDir(dir)
	if err != nil {
		fail("digests", err)
	}
	m.Files = files
	if err := writeJSONFile(filepath.Join(dir, SnapshotManifestFile), m); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot sandbox %s: %w", s.id, err)
	}
	info := SnapshotInfo{Dir: dir, Manifest: m}
	s.mu.Lock()
	s.snapshots = append(s.snapshots, info)
	s.mu.Unlock()
	s.log.Info("sandbox snapshot", "dir", dir, "reason", reason, "running", running, "errors", len(m.Errors))
	return info, nil
}

// autoSnapshot is a failure snapshot; failures to take it are logged, not
// raised, since the failure it records is what matters to the caller.
func (s *Sandbox) autoSnapshot(reason string, keepFrozen bool) {
	if !s.snapOpt.OnFailure {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.snapshot(ctx, reason, keepFrozen); err != nil && !errors.Is(err, errStopped) {
		s.log.Warn("sandbox failure snapshot", "reason", reason, "err", err)
	}
}

// running is false from the moment watch records the exit, which is
// before Done closes (the failure snapshot sits in between).
func (s *Sandbox) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exited.IsZero()
}

var secretName = regexp.MustCompile(`(?i)(key|token|secret|passw|credential|auth)`)

func redactSpec(spec Spec) Spec {
	out := spec
	out.Env = nil
	for _, kv := range spec.Env {
		k, _, _ := strings.Cut(kv, "=")
		if secretName.MatchString(k) {
			kv = k + "=REDACTED"
		}
		out.Env = append(out.Env, kv)
	}
	return out
}

var slugClean = regexp.MustCompile(`[^a-z0-9-]+`)

func slug(s string) string {
	s = strings.Trim(slugClean.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 32 {
		s = s[:32]
	}
	if s == "" {
		s = "snapshot"
	}
	return s
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// processes reads /proc for every task of the cgroup (the init shim and
// the model's tree).
func (s *Sandbox) processes() []ProcessInfo {
	pids, _ := s.cg.Procs()
	slices.Sort(pids)
	var out []ProcessInfo
	for _, pid := range pids {
		pi := ProcessInfo{Pid: pid, Status: map[string]string{}}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			pi.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		}
		if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, ok := strings.Cut(sc.Text(), ":")
				if ok && slices.Contains([]string{"Name", "State", "PPid", "NSpid", "Threads", "VmPeak", "VmRSS", "VmHWM", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches", "SigPnd", "ShdPnd"}, k) {
					pi.Status[k] = strings.TrimSpace(v)
				}
			}
			f.Close()
		}
		out = append(out, pi)
	}
	return out
}

// criuDump runs `criu dump --leave-running` on the sandbox's tree when
// criu is installed. It is best effort: CRIU fails on GPU mappings and
// some sockets, and the freeze + files + transcript are the baseline.
func (s *Sandbox) criuDump(ctx context.Context, dir string, running bool) CRIUResult {
	bin, err := exec.LookPath("criu")
	switch {
	case err != nil:
		return CRIUResult{Status: "skipped", Detail: "criu is not installed on this host"}
	case !running:
		return CRIUResult{Status: "skipped", Detail: "the model had already exited"}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return CRIUResult{Status: "failed", Detail: err.Error()}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "dump", "--tree", strconv.Itoa(s.proc.Pid), "--images-dir", dir,
		"--leave-running", "--shell-job", "--ext-unix-sk", "--tcp-established", "--file-locks", "--log-file", "dump.log")
	if out, err := cmd.CombinedOutput(); err != nil {
		why := strings.TrimSpace(string(out))
		if why == "" {
			why = criuErrors(filepath.Join(dir, "dump.log"))
		}
		return CRIUResult{Status: "failed", Detail: fmt.Sprintf("%v: %s (see %s/dump.log)", err, why, snapshotCRIUDir)}
	}
	return CRIUResult{Status: "ok", Detail: "criu dump --leave-running into " + snapshotCRIUDir + "/"}
}

// criuErrors joins the first few "Error" lines of a CRIU log: the cause
// is rarely the first one alone.
func criuErrors(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log: " + err.Error()
	}
	var errs []string
	for line := range strings.Lines(string(b)) {
		if _, msg, ok := strings.Cut(line, "Error ("); ok && len(errs) < 5 {
			if _, msg, ok = strings.Cut(msg, "): "); ok {
				errs = append(errs, strings.TrimSpace(msg))
			}
		}
	}
	if len(errs) == 0 {
		return "no error line in the log"
	}
	return strings.Join(errs, "; ")
}

// tarWritable archives the model's writable areas, largest-last order
// being irrelevant: files are taken in walk order until the cap.
func (s *Sandbox) tarWritable(path string) (WritableLayer, error) {
	var wl WritableLayer
	if !s.hostTmpfs {
		wl.Note = "the writable areas live inside the sandbox's mount namespace (rootless mode) and are not captured"
		return wl, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return wl, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, area := range []string{"tmp", "home"} {
		base := filepath.Join(s.scratch, area)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a file removed mid-walk: skip it
			}
			rel, _ := filepath.Rel(base, p)
			name := filepath.ToSlash(filepath.Join(area, rel))
			info, err := d.Info()
			if err != nil {
				return nil
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				link, _ = os.Readlink(p)
			} else if !info.Mode().IsRegular() && !info.IsDir() {
				return nil // fifos, sockets, devices: nothing to keep
			}
			if info.Mode().IsRegular() && wl.Bytes+info.Size() > s.snapOpt.MaxWritableBytes {
				wl.Truncated = true
				if len(wl.Skipped) < 100 {
					wl.Skipped = append(wl.Skipped, name)
				}
				return nil
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return nil
			}
			hdr.Name = name
			if info.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			src, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer src.Close()
			// The model is frozen or gone, but a file can still change
			// size under a thawed one: copy exactly what the header says.
			if _, err := io.CopyN(tw, src, info.Size()); err != nil {
				return fmt.Errorf("archive %s: %w", name, err)
			}
			wl.Files++
			wl.Bytes += info.Size()
			return nil
		})
		if err != nil {
			return wl, err
		}
	}
	if err := tw.Close(); err != nil {
		return wl, err
	}
	return wl, f.Close()
}

func digestDir(dir string) ([]SnapshotFile, error) {
	var out []SnapshotFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		sum, n, err := sha256File(p)
		if err != nil {
			return err
		}
		out = append(out, SnapshotFile{Name: filepath.ToSlash(rel), Bytes: n, SHA256: sum})
		return nil
	})
	return out, err
}

func sha256File(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// TarSnapshot writes dir as a gzip'd tar (paths relative to dir), the form
// a caller uploads.
func TarSnapshot(dir string, w io.Writer) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, info.Size())
		return err
	})
	if err != nil {
		return fmt.Errorf("tar snapshot %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar snapshot %s: %w", dir, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("tar snapshot %s: %w", dir, err)
	}
	return nil
}

// SnapshotData is a snapshot read back from its directory.
type SnapshotData struct {
	Manifest   SnapshotManifest
	Config     SnapshotConfig
	Transcript []Exchange
}

// LoadSnapshot reads a snapshot directory and checks every file against
// the manifest's digests.
func LoadSnapshot(dir string) (SnapshotData, error) {
	var d SnapshotData
	for _, f := range []struct {
		name string
		v    any
	}{{SnapshotManifestFile, &d.Manifest}, {SnapshotConfigFile, &d.Config}, {SnapshotTranscriptFile, &d.Transcript}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return d, fmt.Errorf("snapshot %s: %w (is this a snapshot directory?)", dir, err)
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return d, fmt.Errorf("snapshot %s: %s: %w", dir, f.name, err)
		}
	}
	if d.Manifest.Version != SnapshotVersion {
		return d, fmt.Errorf("snapshot %s: manifest version %d, this build reads %d", dir, d.Manifest.Version, SnapshotVersion)
	}
	for _, f := range d.Manifest.Files {
		sum, _, err := sha256File(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			return d, fmt.Errorf("snapshot %s: %w", dir, err)
		}
		if sum != f.SHA256 {
			return d, fmt.Errorf("snapshot %s: %s has sha256 %s, the manifest says %s: the snapshot was altered or partly copied", dir, f.Name, sum, f.SHA256)
		}
	}
	return d, nil
}

// UntarSnapshot unpacks a TarSnapshot stream into dir (which must exist).
// Entries that would land outside dir, links and special files are
// refused: the archive may come from anywhere.
func UntarSnapshot(r io.Reader, dir string, maxBytes int64) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("untar snapshot: not gzip: %w", err)
	}
	defer gz.Close()
	// Bound what is decompressed, not only what is written: a small
	// gzip bomb would otherwise have tar skip terabytes of padding.
	budget := &byteBudget{r: gz, left: maxBytes + 16<<20}
	tr := tar.NewReader(budget)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("untar snapshot: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("untar snapshot: entry %q points outside the snapshot", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if h.Size != 0 {
				return fmt.Errorf("untar snapshot: directory entry %q carries %d bytes of data", h.Name, h.Size)
			}
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return fmt.Errorf("untar snapshot: %w", err)
			}
		case tar.TypeReg:
			total += h.Size
			if h.Size < 0 || total > maxBytes {
				return fmt.Errorf("untar snapshot: more than %d bytes unpacked: raise the limit or inspect the archive by hand", maxBytes)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return fmt.Errorf("untar snapshot: %w", err)
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("untar snapshot: %w", err)
			}
			_, err = io.CopyN(f, tr, h.Size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("untar snapshot: %s: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("untar snapshot: entry %q has type %q; a snapshot holds only files and directories", h.Name, h.Typeflag)
		}
	}
}

// byteBudget fails reads once more than left bytes have come through.
type byteBudget struct {
	r    io.Reader
	left int64
}

func (b *byteBudget) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("archive decompresses to more than the snapshot size limit")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
