package cli

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
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
