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
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/workflows"
)

// TemporalConfig says where the Temporal cluster is and how payloads are
// encoded on the way there.
type TemporalConfig struct {
	Address   string
	Namespace string
	// Codec, when set, encodes every payload (and failure message) the
	// client sends, e.g. codec.Codec to encrypt them; nil sends them as the
	// SDK's default converter writes them. Worker, starter and codec server
	// must use the same keys.
	Codec converter.PayloadCodec
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
	opts := client.Options{
		HostPort:  tc.Address,
		Namespace: tc.Namespace,
		Logger:    tlog.NewStructuredLogger(logger),
	}
	if tc.Codec != nil {
		dc := codec.NewDataConverter(tc.Codec)
		opts.DataConverter = dc
		// Error messages and stack traces can quote release data; by default
		// the SDK stores them in clear text next to the encoded payloads.
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter:          dc,
			EncodeCommonAttributes: true,
		})
	}
	c, err := client.DialContext(ctx, opts)
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
