// Package app wires the pieces a sandgate process needs — Temporal client,
// S3 store, sandbox provider, worker — from flags and the standard
// environment variables, so cmd/worker and the starter's in-process worker
// are built the same way.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/workflows"
)

// TemporalConfig says where the Temporal cluster is.
type TemporalConfig struct {
	Address   string
	Namespace string
}

// TemporalFromEnv reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (the
// variables the temporal CLI and SDKs use), with the local defaults.
func TemporalFromEnv() TemporalConfig {
	c := TemporalConfig{Address: os.Getenv("TEMPORAL_ADDRESS"), Namespace: os.Getenv("TEMPORAL_NAMESPACE")}
	if c.Address == "" {
		c.Address = "127.0.0.1:7233"
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	return c
}

// Dial connects to Temporal.
func Dial(ctx context.Context, tc TemporalConfig, logger *slog.Logger) (client.Client, error) {
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  tc.Address,
		Namespace: tc.Namespace,
		Logger:    tlog.NewStructuredLogger(logger),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; set TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE): %w", tc.Address, tc.Namespace, err)
	}
	return c, nil
}

// NewActivities builds the activities with a store and the process sandbox.
func NewActivities(ctx context.Context, sc objstore.Config, logger *slog.Logger) (*activities.Activities, error) {
	store, err := objstore.New(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to S3: %w", err)
	}
	provider, err := sandbox.NewProcessProvider(sandbox.ProcessOptions{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return activities.New(store, provider, logger), nil
}

// NewWorker registers the release workflow and activities on a task queue.
// Sessions are enabled because the sandboxed stages are pinned to the worker
// that holds the sandbox.
func NewWorker(c client.Client, taskQueue string, acts *activities.Activities) worker.Worker {
	w := worker.New(c, taskQueue, worker.Options{
		EnableSessionWorker:               true,
		MaxConcurrentSessionExecutionSize: 8,
	})
	w.RegisterWorkflow(workflows.ReleaseWorkflow)
	w.RegisterActivity(acts)
	return w
}
