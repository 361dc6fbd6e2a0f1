package refmodel

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/refmodel/predictive"
)

// RoleName is the reexec role that serves the reference model, so a sandgate
// binary can start it inside a sandbox:
//
//	sandgate-refmodel --variant leaky --listen 127.0.0.1:8000
//	sandgate-refmodel --kind credit --variant biased --listen 127.0.0.1:8080
const RoleName = "sandgate-refmodel"

func init() {
	reexec.Register(RoleName, func() { os.Exit(Main(os.Args[1:])) })
}

// Main runs the server until SIGINT or SIGTERM and returns the process exit
// code: 0 after a clean shutdown, 2 for bad flags, 1 otherwise.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, args, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "refmodel:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "refmodel:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

// Run parses flags, serves until ctx is done, then shuts down gracefully.
// Logs (JSON, one object per line) go to logw; the first line carries the
// listening address as "addr", which a launcher using port 0 can read.
func Run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet(RoleName, flag.ContinueOnError)
	fs.SetOutput(logw)
	kind := fs.String("kind", "chat", "model kind: chat (OpenAI chat API), or credit, credit-limit, imaging (Open Inference Protocol v2)")
	variant := fs.String("variant", string(Hardened), "model variant: chat: incumbent, hardened or leaky; credit: fair, biased or overfit; credit-limit: fair or biased; imaging: brittle or robust")
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on (port 0 picks a free port)")
	latency := fs.Duration("latency", 0, "fixed delay added to each completion, e.g. 5ms")
	slots := fs.Int("slots", 0, "chat: completions served at once (others wait in line); with --latency the capacity is slots/latency per second; 0 = unbounded")
	maxBody := fs.Int64("max-body", DefaultMaxBodyBytes, "largest request body in bytes; larger requests get 413")
	verbose := fs.Bool("v", false, "log every completion (intent, refusal reason)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *latency < 0 || *maxBody <= 0 {
		return fmt.Errorf("%w: --latency must be >= 0 and --max-body > 0", errUsage)
	}
	if *slots < 0 {
		return fmt.Errorf("%w: --slots must be >= 0 (0 = unbounded)", errUsage)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: level}))

	var (
		handler   http.Handler
		modelName string
		variantOf = *variant
	)
	if *kind == "chat" {
		v, err := ParseVariant(*variant)
		if err != nil {
			return fmt.Errorf("%w: --variant: %v", errUsage, err)
		}
		m, err := New(v)
		if err != nil {
			return err
		}
		handler = NewHandler(m, ServerOptions{Latency: *latency, MaxBodyBytes: *maxBody, Logger: log, Slots: *slots})
		modelName = m.Name()
	} else {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["variant"] {
			variantOf = defaultPredictiveVariant(*kind)
		}
		if !set["max-body"] {
			*maxBody = predictive.DefaultMaxBodyBytes
		}
		h, name, err := predictiveHandler(*kind, variantOf, *maxBody, *latency, log)
		if err != nil {
			return err
		}
		handler, modelName = h, name
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "addr", ln.Addr().String(), "model", modelName, "kind", *kind, "variant", variantOf, "latency", latency.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped", "model", modelName)
	return nil
}
