package cli

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSandboxExecHasNoEgress is the acceptance check: a command run
// with `starter sandbox exec` cannot reach a port the host listens on, while
// the same command outside the sandbox can.
func TestSandboxExecHasNoEgress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process sandbox needs root here")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	ln := testutil.AcceptingListener(t, "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)

	if out, err := exec.Command(bash, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("control outside the sandbox failed: %v: %s", err, out)
	}
	var out bytes.Buffer
	code := Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, []string{"sandbox", "exec", "--timeout", "20s", "--", bash, "-c", script})
	if code == 0 {
		t.Fatalf("connect to a host port succeeded inside the sandbox:\n%s", out.String())
	}
	if strings.Contains(out.String(), "set up") && code == 125 {
		t.Fatalf("the sandbox could not be set up:\n%s", out.String())
	}

	out.Reset()
	code = Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, []string{"sandbox", "exec", "--", bash, "-c", "echo inside; exit 7"})
	if code != 7 || !strings.Contains(out.String(), "inside") {
		t.Fatalf("exec did not stream output or pass the exit code: code %d\n%s", code, out.String())
	}
}

func TestSandboxExecSnapshotOnFailure(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process sandbox needs root here")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	code := Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv},
		[]string{"sandbox", "exec", "--snapshot-dir", dir, "--", "/bin/sh", "-c", "echo partial > /tmp/out; exit 4"})
	if code != 4 || !strings.Contains(out.String(), "snapshot (exit code 4): "+dir) {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "*", "manifest.json"))
	if len(snaps) != 1 {
		t.Fatalf("manifests under %s: %v", dir, snaps)
	}
	out.Reset()
	if code := Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, []string{"snapshot", "show", filepath.Dir(snaps[0])}); code != 0 || !strings.Contains(out.String(), "1 files") {
		t.Fatalf("show: %d\n%s", code, out.String())
	}
	// Control: a command that succeeds leaves no snapshot.
	ok := t.TempDir()
	if code := Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, []string{"sandbox", "exec", "--snapshot-dir", ok, "--", "/bin/true"}); code != 0 {
		t.Fatalf("true: %d", code)
	}
	if ents, _ := os.ReadDir(ok); len(ents) != 0 {
		t.Fatalf("snapshot written for a command that succeeded: %v", ents)
	}
}
