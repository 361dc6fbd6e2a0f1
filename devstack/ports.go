package devstack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// ErrPortInUse is matched (errors.Is) by the error Start returns when a
// configured address is already bound by another process.
var ErrPortInUse = errors.New("port already in use")

// PortInUseError names the address, the component and the knob to change,
// so a user seeing it on the console can fix it without reading code.
type PortInUseError struct {
	Addr      string // host:port that could not be bound
	Component string // "Temporal frontend", "Temporal Web UI", "S3"
	Flag      string // CLI flag that sets the port, e.g. "--temporal-port"
	Option    string // Options field that sets the port, e.g. "FrontendPort"
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("devstack: %s (%s, %s / Options.%s) is already in use: stop the other process or choose another port",
		e.Addr, e.Component, e.Flag, e.Option)
}

func (e *PortInUseError) Is(target error) bool { return target == ErrPortInUse }

// Flags the CLI uses for the ports; kept here so error messages and
// cmd/starter agree.
const (
	FlagFrontendPort = "--temporal-port"
	FlagUIPort       = "--ui-port"
	FlagS3Port       = "--s3-port"
	FlagDataDir      = "--data-dir"
)

type portSpec struct {
	component, flag, option string
}

var (
	frontendPortSpec = portSpec{"Temporal frontend", FlagFrontendPort, "FrontendPort"}
	uiPortSpec       = portSpec{"Temporal Web UI", FlagUIPort, "UIPort"}
	s3PortSpec       = portSpec{"S3", FlagS3Port, "S3Port"}
)

// listen binds host:port and turns the usual failures into actionable
// errors. port 0 asks the kernel for a free port.
func listen(host string, port int, spec portSpec) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, &PortInUseError{Addr: addr, Component: spec.component, Flag: spec.flag, Option: spec.option}
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("devstack: no permission to bind %s (%s, %s): choose a port above 1023: %w", addr, spec.component, spec.flag, err)
	default:
		return nil, fmt.Errorf("devstack: cannot listen on %s (%s, %s): %w", addr, spec.component, spec.flag, err)
	}
}

// checkFree reports whether host:port can be bound right now, for servers
// that insist on binding themselves. There is a window between this check
// and their bind; callers keep it as short as possible.
func checkFree(host string, port int, spec portSpec) error {
	ln, err := listen(host, port, spec)
	if err != nil {
		return err
	}
	return ln.Close()
}

// pickPort resolves port 0 to a concrete free port. The kernel does not hand
// the same ephemeral port out again right away, so two stacks started in
// parallel (tests) get distinct ports.
func pickPort(host string, port int, spec portSpec) (int, error) {
	if port != 0 {
		return port, nil
	}
	ln, err := listen(host, 0, spec)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
