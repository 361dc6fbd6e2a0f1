package reexec_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/internal/reexec"
)

const (
	echoRole = "sandgate-reexec-test-echo"
	failRole = "sandgate-reexec-test-fail"
)

func init() {
	reexec.Register(echoRole, func() {
		fmt.Printf("role=%s args=%s\n", os.Args[0], strings.Join(os.Args[1:], ","))
	})
	reexec.Register(failRole, func() { os.Exit(3) })
}

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func TestCommandRunsRole(t *testing.T) {
	out, err := reexec.Command(echoRole, "a", "b c").CombinedOutput()
	if err != nil {
		t.Fatalf("run role: %v (output %q)", err, out)
	}
	want := "role=" + echoRole + " args=a,b c\n"
	if string(out) != want {
		t.Fatalf("output = %q, want %q", out, want)
	}
}

func TestRoleExitStatus(t *testing.T) {
	err := reexec.Command(failRole).Run()
	if err == nil {
		t.Fatal("expected non-zero exit")
	}
	if code := exitCode(err); code != 3 {
		t.Fatalf("exit code = %d (%v), want 3", code, err)
	}
}

func exitCode(err error) int {
	type coder interface{ ExitCode() int }
	if c, ok := err.(coder); ok {
		return c.ExitCode()
	}
	return -1
}

func TestCommandShape(t *testing.T) {
	cmd := reexec.Command("some-role", "--x", "1")
	if cmd.Path != reexec.Self() {
		t.Errorf("Path = %q, want %q", cmd.Path, reexec.Self())
	}
	if got := strings.Join(cmd.Args, " "); got != "some-role --x 1" {
		t.Errorf("Args = %q", got)
	}
	if runtime.GOOS == "linux" && reexec.Self() != "/proc/self/exe" {
		t.Errorf("Self() = %q on linux", reexec.Self())
	}
}

func TestInitUnknownRole(t *testing.T) {
	// The test binary's own name is not a role, so Init must not run anything.
	if reexec.Init() {
		t.Fatal("Init ran a role for the test binary's own name")
	}
	if !reexec.Registered(echoRole) || reexec.Registered("nope") {
		t.Fatal("Registered disagrees with the registry")
	}
}

func TestRegisterPanics(t *testing.T) {
	cases := map[string]func(){
		"duplicate": func() { reexec.Register(echoRole, func() {}) },
		"empty":     func() { reexec.Register("", func() {}) },
		"nil":       func() { reexec.Register("sandgate-reexec-test-nil", nil) },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			fn()
		})
	}
}
