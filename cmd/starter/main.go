// Command starter is the CLI users run: `starter dev` runs a release on the
// embedded stack; `starter release start|status|report` work against any
// Temporal cluster. Exit codes: 0 released, 3 blocked, 2 bad input, 1 other.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sandgate/sandgate/internal/cli"
	"github.com/sandgate/sandgate/internal/reexec"

	// Roles this binary can re-run itself as inside a sandbox.
	_ "github.com/sandgate/sandgate/refmodel"
	_ "github.com/sandgate/sandgate/sandbox"
)

func main() {
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
