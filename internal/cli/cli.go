// Package cli is the starter command: `dev` runs a release on the embedded
// stack; `release start|status|report` work against any Temporal cluster.
// It lives outside cmd/starter so tests can run it in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/config"
)

// Exit codes. CI pipelines depend on them: keep them stable.
const (
	ExitReleased = 0 // the release passed every gate
	ExitError    = 1 // anything else went wrong (infrastructure, a bug)
	ExitBadInput = 2 // the config or the command line is wrong, or the machine cannot sandbox; nothing was started
	ExitBlocked  = 3 // a gate blocked the release
)

// exitError carries an exit code up to Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// Env is what the command reads and writes; tests pass their own.
type Env struct {
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// Getenv reads environment variables (os.Getenv in main).
	Getenv func(string) string
}

// Run executes the starter with args and returns the process exit code.
func Run(ctx context.Context, env Env, args []string) int {
	if env.Logger == nil {
		env.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	root := &cobra.Command{
		Use:           "starter",
		Short:         "Run and inspect sandgate model releases",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `starter runs sandgate releases: durable Temporal workflows that take a candidate
model through a sandbox, synthetic data, red teaming, privacy checks, a gate and a
shadow comparison.

Exit codes: 0 released, 3 blocked by a gate, 2 bad input (nothing started), 1 other errors.`,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetArgs(args)
	root.AddCommand(newDevCmd(env), newReleaseCmd(env), newGateCmd(env), newAttestCmd(env), newDatasetsCmd(env), newCodecServerCmd(env), newShadowCmd(env), newSandboxCmd(env), newSnapshotCmd(env), newScheduleCmd(env))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitReleased
	}
	fmt.Fprintln(env.Stderr, "error:", err)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, config.ErrInvalid):
		return ExitBadInput
	case isUsageError(err):
		return ExitBadInput
	}
	return ExitError
}

// cobra reports flag and argument problems as plain errors; they are bad input.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown command", "unknown shorthand", "accepts ", "requires at least", "flag needs an argument", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
