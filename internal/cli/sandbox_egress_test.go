package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/internal/testutil"
)

// TestSandboxExecAllow: with --allow, the command reaches that host port
// (at the same loopback address inside) and the proxy refuses another; both
// attempts are printed.
func TestSandboxExecAllow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process sandbox needs root here")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	allowed := testutil.AcceptingListener(t, "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	other := testutil.AcceptingListener(t, "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && echo reached-allowed
exec 4<>/dev/tcp/127.0.0.1/${HTTP_PROXY##*:}
printf 'CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n' >&4
read -r status <&4; echo "proxy said: $status"`, allowed, other)
	var out bytes.Buffer
	code := Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv},
		[]string{"sandbox", "exec", "--allow", fmt.Sprintf("127.0.0.1:%d", allowed), "--timeout", "20s", "--", bash, "-c", script})
	s := out.String()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, s)
	}
	for _, want := range []string{
		"reached-allowed",
		"proxy said: HTTP/1.1 403 Forbidden",
		fmt.Sprintf("egress allowed 127.0.0.1:%d via listener", allowed),
		fmt.Sprintf("egress refused 127.0.0.1:%d via http-connect", other),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}

	out.Reset()
	code = Run(context.Background(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, []string{"sandbox", "exec", "--allow", "nohost", "--", "true"})
	if code != ExitBadInput || !strings.Contains(out.String(), "--allow") {
		t.Errorf("bad --allow: code %d:\n%s", code, out.String())
	}
}
