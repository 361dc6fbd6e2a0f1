// Package reexec lets a sandgate binary re-run itself in a named role, so one
// executable (worker, starter or a test binary) can be copied into a sandbox
// and started there as, say, the reference model, without shipping a second
// binary whose version could drift from the harness.
//
// A package that offers a role registers it from init():
//
//	func init() { reexec.Register("sandgate-refmodel", serve) }
//
// and every main (and TestMain) calls Init first:
//
//	func main() {
//		if reexec.Init() {
//			return
//		}
//		...
//	}
//
// The parent starts a role with Command("sandgate-refmodel", args...), which
// execs Self() with argv[0] set to the role name.
package reexec

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// The registry is package-level mutable state on purpose: roles are declared
// by init() functions of whatever packages a binary links, before main runs,
// and Init must find them without main having to know which packages offer
// roles. It is written only during init and read afterwards; the mutex makes
// late registration (e.g. from a test) safe anyway.
var (
	mu    sync.RWMutex
	roles = map[string]func(){}
)

// Register makes fn runnable as role name. It panics on an empty name, a nil
// fn or a duplicate name: all are programming errors that would otherwise
// make a re-exec silently run the wrong code.
func Register(name string, fn func()) {
	if name == "" {
		panic("reexec: Register with empty role name")
	}
	if fn == nil {
		panic(fmt.Sprintf("reexec: Register(%q) with nil func", name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := roles[name]; dup {
		panic(fmt.Sprintf("reexec: role %q registered twice", name))
	}
	roles[name] = fn
}

// Init runs the role named by the base name of os.Args[0], if one is
// registered, and reports whether it did. The caller must return from main
// (or TestMain) when it returns true. A role that needs a non-zero exit
// status calls os.Exit itself.
func Init() bool {
	if len(os.Args) == 0 {
		return false
	}
	mu.RLock()
	fn, ok := roles[filepath.Base(os.Args[0])]
	mu.RUnlock()
	if !ok {
		return false
	}
	fn()
	return true
}

// Registered reports whether a role of that name exists in this binary, so
// a launcher can fail fast before starting a sandbox that would only run the
// binary's normal main.
func Registered(name string) bool {
	mu.RLock()
	defer mu.RUnlock()
	_, ok := roles[name]
	return ok
}

// Self returns the path to exec to re-run the current binary. On Linux it is
// /proc/self/exe, which stays valid even if the file on disk was replaced or
// deleted after start (an upgrade in place), and which a sandbox can bind
// mount without knowing where the binary lives.
func Self() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe"
	}
	if p, err := os.Executable(); err == nil {
		return p
	}
	// Last resort: what the shell resolved; exec reports a clear error if
	// this does not exist.
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return os.Args[0]
}

// Command returns a Cmd that runs this binary in role name with args. Path
// is Self() and Args[0] is name, so Init in the child dispatches on it.
// On Linux the child gets SIGTERM when the parent's thread dies (Pdeathsig),
// so a crashed harness does not leave a model server running; callers that
// need other SysProcAttr settings (namespaces) replace SysProcAttr and keep
// this behaviour by setting Pdeathsig themselves.
func Command(name string, args ...string) *exec.Cmd {
	cmd := &exec.Cmd{
		Path: Self(),
		Args: append([]string{name}, args...),
	}
	setParentDeathSignal(cmd)
	return cmd
}
