// Command worker runs sandgate's release workflows and activities.
//
// It connects to Temporal with the SDKs' standard variables
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*
// for mTLS, TEMPORAL_GRPC_META_*) and to S3 with the standard AWS_*
// variables plus AWS_ENDPOINT_URL_S3 for an S3-compatible server. With
// --codec-keys FILE or SANDGATE_CODEC_KEYS it encrypts every Temporal
// payload (see package codec); without, payloads are sent as the SDK
// encodes them. With --metrics-listen (or SANDGATE_METRICS_LISTEN) it serves
// Prometheus metrics at /metrics. It stops cleanly on SIGINT/SIGTERM:
// running activities are given time to finish and every sandbox it started
// is wiped.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/internal/gctune"
	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/workflows"

	// Roles this binary can re-run itself as inside a sandbox.
	_ "github.com/sandgate/sandgate/refmodel"
	_ "github.com/sandgate/sandgate/sandbox"
)

func main() {
	if reexec.Init() {
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	taskQueue := flag.String("task-queue", workflows.TaskQueue, "Temporal task queue to poll")
	keyPath := flag.String("attestation-key", os.Getenv("SANDGATE_ATTESTATION_KEY"), "ed25519 private key (PEM, PKCS#8) that signs release attestations; empty: none are signed")
	codecKeys := flag.String("codec-keys", "", "payload encryption key file (lines id:base64key, or JSON); empty: the keys in $"+codec.EnvKeys+", or no encryption when that is empty too")
	metricsListen := flag.String("metrics-listen", os.Getenv("SANDGATE_METRICS_LISTEN"), "serve Prometheus metrics (Temporal SDK temporal_* and sandgate_* series) on host:port at /metrics, e.g. 127.0.0.1:9090; empty: no metrics endpoint")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if gctune.Apply(os.Getenv, gctune.Worker()) {
		logger.Info("garbage collector tuned (set GOGC or GOMEMLIMIT to choose yourself)", "gogc", gctune.Worker().Percent, "soft_limit_bytes", gctune.Worker().LimitBytes)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tc, err := app.TemporalFromEnv()
	if err != nil {
		return err
	}
	var metrics *app.Metrics
	if *metricsListen != "" {
		metrics = app.NewMetrics()
		addr, err := app.ServeMetrics(ctx, *metricsListen, metrics, logger)
		if err != nil {
			return err
		}
		tc.Metrics = metrics
		logger.Info("metrics", "url", "http://"+addr+"/metrics")
	}
	pc, err := codec.Load(*codecKeys, os.Getenv)
	if err != nil {
		return err
	}
	if cc, ok := pc.(*codec.Codec); ok {
		tc.Codec = cc
		logger.Info("payload encryption on", "active_key", cc.ActiveKeyID())
	}
	c, err := app.Dial(ctx, tc, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	acts, err := app.NewActivities(ctx, objstore.ConfigFromEnv(), logger)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := acts.Close(cctx); err != nil {
			logger.Warn("stop sandboxes", "err", err)
		}
	}()
	if *keyPath != "" {
		if acts.AttestationKey, err = audit.LoadPrivateKey(*keyPath); err != nil {
			return err
		}
	}
	w := app.NewWorkerWithOptions(c, *taskQueue, acts, app.WorkerOptions{Metrics: metrics})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker started", "task_queue", *taskQueue)
	<-ctx.Done()
	logger.Info("stopping worker")
	w.Stop()
	return nil
}
