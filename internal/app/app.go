// Package app wires the pieces a sandgate process needs — Temporal client,
// S3 store, sandbox provider, worker — from flags and the standard
// environment variables, so cmd/worker and the starter's in-process worker
// are built the same way.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/workflows"
)

// TemporalConfig says where the Temporal cluster is, how the client
// authenticates and how payloads are encoded on the way there.
type TemporalConfig struct {
	Address   string
	Namespace string
	// APIKey, when set, is sent as a bearer token (Temporal Cloud API keys)
	// and turns TLS on unless TLS.Disabled.
	APIKey string
	// TLS, when set and not Disabled, dials with TLS (mTLS with a client
	// certificate); nil dials plaintext unless APIKey is set.
	TLS *TLSConfig
	// GRPCMeta are extra gRPC headers on every call (lowercase names).
	GRPCMeta map[string]string
	// Codec, when set, encodes every payload (and failure message) the
	// client sends, e.g. codec.Codec to encrypt them; nil sends them as the
	// SDK's default converter writes them. Worker, starter and codec server
	// must use the same keys.
	Codec converter.PayloadCodec
	// Metrics, when set, receives the SDK's metrics (see NewMetrics).
	Metrics *Metrics
}

// Dial connects to Temporal.
func Dial(ctx context.Context, tc TemporalConfig, logger *slog.Logger) (client.Client, error) {
	opts, err := tc.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = tlog.NewStructuredLogger(logger)
	if tc.Metrics != nil {
		opts.MetricsHandler = tc.Metrics.SDKHandler()
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
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s; set TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE, TEMPORAL_API_KEY or TEMPORAL_TLS_*): %w", tc.Address, tc.Namespace, err)
	}
	return c, nil
}

// NewActivities builds the activities with a store and the process sandbox.
func NewActivities(ctx context.Context, sc objstore.Config, logger *slog.Logger) (*activities.Activities, error) {
	store, err := objstore.New(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("connect to S3: %w", err)
	}
	// A model that crashes, is OOM-killed, hits its deadline or breaches a
	// relay budget is frozen and snapshotted; teardown uploads the snapshot.
	provider, err := sandbox.NewProcessProvider(sandbox.ProcessOptions{Logger: logger, Snapshot: sandbox.SnapshotOptions{OnFailure: true}})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return activities.New(store, provider, logger), nil
}

// NewWorker registers the release workflow, the scheduled-release wrapper
// and the activities on a task queue. Sessions are enabled because the
// sandboxed stages are pinned to the worker that holds the sandbox.
func NewWorker(c client.Client, taskQueue string, acts *activities.Activities) worker.Worker {
	return NewWorkerWithOptions(c, taskQueue, acts, WorkerOptions{})
}

// WorkerOptions are the optional parts of a worker.
type WorkerOptions struct {
	// Metrics, when set, counts activity outcomes and release facts
	// (sandgate_* series). The SDK's own series come from the client: set
	// TemporalConfig.Metrics to the same value.
	Metrics *Metrics
}

// NewWorkerWithOptions is NewWorker with options.
func NewWorkerWithOptions(c client.Client, taskQueue string, acts *activities.Activities, o WorkerOptions) worker.Worker {
	wo := worker.Options{
		EnableSessionWorker:               true,
		MaxConcurrentSessionExecutionSize: 8,
	}
	if o.Metrics != nil {
		wo.Interceptors = append(wo.Interceptors, o.Metrics.Interceptor())
	}
	w := worker.New(c, taskQueue, wo)
	w.RegisterWorkflow(workflows.ReleaseWorkflow)
	w.RegisterWorkflow(workflows.ShadowPhaseWorkflow)
	w.RegisterWorkflowWithOptions(ScheduledReleaseWorkflow, workflow.RegisterOptions{Name: ScheduledReleaseWorkflowName})
	w.RegisterActivity(acts)
	return w
}
