//go:build linux

package sandbox

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCgroupV2AgainstFakeFS drives the v2 code path against a directory
// laid out like a delegated cgroup2 mount: this host runs cgroup v1, so the
// kernel side (enforcement, cgroup.events updates) cannot be shown here,
// only that the right values go into the right files and are read back.
func TestCgroupV2AgainstFakeFS(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cgroup.controllers", "cpu memory pids\n")
	write("cgroup.subtree_control", "")
	write("sandgate/cgroup.subtree_control", "")
	const group = "/sandgate/model-1"
	write(group+"/memory.swap.max", "max\n")

	h, err := newCgroupV2(root, group, Limits{CPUs: 0.5, MemoryBytes: 64 << 20, Pids: 32}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newCgroupV2 on a fake tree: %v", err)
	}
	dir := filepath.Join(root, group)
	for file, want := range map[string]string{
		"memory.max": "67108864", "pids.max": "32", "cpu.max": "50000 100000", "memory.swap.max": "0",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sandgate/cgroup.subtree_control")); !strings.Contains(string(b), "memory") {
		t.Errorf("parent subtree_control = %q, want the controllers enabled", b)
	}

	write(group+"/memory.peak", "5242880\n")
	write(group+"/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	write(group+"/pids.events", "max 4\n")
	write(group+"/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
	if u := h.Usage(); u.PeakBytes != 5<<20 || u.OOMKills != 1 || u.PidsHits != 4 {
		t.Errorf("usage = %+v", u)
	}
	if d, err := h.CPUUsage(); err != nil || d != 1500*time.Microsecond {
		t.Errorf("cpu usage = %s, %v", d, err)
	}

	// Freeze writes the request and waits for the kernel's answer in
	// cgroup.events; the fake kernel answers at once here.
	write(group+"/cgroup.events", "populated 1\nfrozen 1\n")
	if err := h.Freeze(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("cgroup.freeze = %q after Freeze", b)
	}
	// A kernel that never reports frozen: Freeze gives up with ctx.
	write(group+"/cgroup.events", "populated 1\nfrozen 0\n")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Freeze(ctx); err == nil || !strings.Contains(err.Error(), "THAWED") {
		t.Errorf("Freeze against a stuck kernel = %v", err)
	}
	if err := h.Thaw(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("cgroup.freeze = %q after Thaw", b)
	}
	write(group+"/cgroup.events", "populated 1\n")
	if _, err := h.FreezerState(); err == nil || !strings.Contains(err.Error(), "5.2") {
		t.Errorf("no frozen key: %v", err)
	}
	stats := h.StatFiles()
	if !strings.Contains(stats["sandgate/model-1/memory.events"], "oom_kill 1") || stats["sandgate/model-1/memory.max"] == "" {
		t.Errorf("stat files = %v", stats)
	}
}
