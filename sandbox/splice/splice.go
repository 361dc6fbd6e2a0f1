// Package splice is the harness's way into a container that has no network:
// a helper that runs as the container's entrypoint, starts the model, and
// joins every connection on a unix socket (in a directory bind-mounted from
// the host) to the model's TCP port on the container's own loopback.
//
// The container keeps NetworkMode "none" (only lo), so the model can listen
// on 127.0.0.1 as it would anywhere, yet nothing it opens can leave; the
// only way in is the socket file, which only the host can reach. The package
// uses the standard library only so cmd/sandgate-splice builds as a static
// binary (CGO_ENABLED=0) that runs in any image, whatever its libc.
package splice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Config is what the helper needs to know.
type Config struct {
	// Socket is the unix socket path to listen on, inside the bind mount.
	Socket string
	// Port is the model's TCP port on 127.0.0.1.
	Port int
	// Argv is the model's command line.
	Argv []string
	// Stdout and Stderr receive the model's output (default: the helper's).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

func (c Config) validate() error {
	if c.Socket == "" {
		return errors.New("splice: -socket is empty; give the unix socket path inside the bind-mounted directory")
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("splice: -port is %d; give the model's TCP port (1-65535)", c.Port)
	}
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("splice: no model command after --")
	}
	return nil
}

// Run starts the model, serves the socket until the model exits, and returns
// the model's exit status as a shell would report it (128+N for signal N).
// SIGTERM and SIGINT sent to the helper are passed on to the model, so
// `docker stop` reaches it.
func Run(ctx context.Context, c Config) (int, error) {
	if err := c.validate(); err != nil {
		return 2, err
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Stderr, nil))
	}
	ln, err := Listen(c.Socket)
	if err != nil {
		return 2, err
	}
	defer ln.Close()

	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("splice: start model %q: %w", c.Argv[0], err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		Serve(serveCtx, ln, fmt.Sprintf("127.0.0.1:%d", c.Port), c.Logger)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var waitErr error
	ctxDone := ctx.Done()
loop:
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case <-ctxDone:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			ctxDone = nil // once is enough; then wait for the model
		case waitErr = <-waited:
			break loop
		}
	}
	stopServe()
	ln.Close()
	<-served
	return exitStatus(cmd.ProcessState, waitErr), nil
}

func exitStatus(ps *os.ProcessState, err error) int {
	if ps == nil {
		if err != nil {
			return 1
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// Listen replaces any stale socket at path and listens on it, readable and
// writable by the owner only: the harness connects as root or as the owner.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("splice: remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("splice: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("splice: chmod %s: %w", path, err)
	}
	return ln, nil
}

// Serve accepts on ln until it is closed or ctx ends, joining each
// connection to a fresh TCP connection to target. A failed dial closes the
// accepted connection at once, so the harness sees the model is not ready.
func Serve(ctx context.Context, ln net.Listener, target string, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off rather than spin.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			log.Warn("splice: accept", "err", err, "retry_in", tempDelay)
			select {
			case <-time.After(tempDelay):
			case <-ctx.Done():
				return
			}
			continue
		}
		tempDelay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			join(ctx, c, target, log)
		}()
	}
}

func join(ctx context.Context, in net.Conn, target string, log *slog.Logger) {
	defer in.Close()
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		log.Debug("splice: dial model", "target", target, "err", err)
		return
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(out, in)
		closeWrite(out)
	}()
	_, _ = io.Copy(in, out)
	closeWrite(in)
	<-done
}

// closeWrite passes a half-close on, so a client that shuts down its write
// side still gets the whole reply.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
