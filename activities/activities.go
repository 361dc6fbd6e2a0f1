// Package activities adapts the domain packages to Temporal: each method is
// one activity, holding the clients it needs, heartbeating long work and
// passing only references (S3 keys, digests, counts) back to the workflow.
package activities

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
)

// Error types the workflow and the CLI match on.
const (
	// ErrTypeBadInput is a non-retryable failure caused by the release config.
	ErrTypeBadInput = "BadInput"
	// ErrTypeSandboxGone means the sandbox this activity needs is not on this
	// worker any more (the worker restarted); the workflow provisions again.
	ErrTypeSandboxGone = "SandboxGone"
)

// GeneratorVersion is recorded in the manifests of results: rows are only
// comparable across releases made by the same version of the stages.
const GeneratorVersion = "0.1.0"

// Activities holds the clients every activity needs. Register one value per
// worker; its methods are the activities.
type Activities struct {
	Store     *objstore.Store
	Sandboxes sandbox.Provider
	Logger    *slog.Logger
	// TempDir holds Parquet files while they are written or read; empty means os.TempDir().
	TempDir string
	// AttestationKey signs release attestations; nil writes none.
	AttestationKey ed25519.PrivateKey

	mu   sync.Mutex
	live map[string]*sandbox.Sandbox // sandboxes started by this worker process
}

// New returns activities backed by the given store and sandbox provider.
func New(store *objstore.Store, provider sandbox.Provider, logger *slog.Logger) *Activities {
	if logger == nil {
		logger = slog.Default()
	}
	return &Activities{Store: store, Sandboxes: provider, Logger: logger, live: map[string]*sandbox.Sandbox{}}
}

// Close stops every sandbox this worker still runs, so a worker that shuts
// down leaves nothing behind.
func (a *Activities) Close(ctx context.Context) error {
	a.mu.Lock()
	boxes := make([]*sandbox.Sandbox, 0, len(a.live))
	for id, sb := range a.live {
		boxes = append(boxes, sb)
		delete(a.live, id)
	}
	a.mu.Unlock()
	var errs []error
	for _, sb := range boxes {
		if err := sb.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func (a *Activities) tempFile(pattern string) (string, func(), error) {
	f, err := os.CreateTemp(a.TempDir, pattern)
	if err != nil {
		return "", nil, fmt.Errorf("create temp file: %w", err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		return "", nil, fmt.Errorf("close temp file: %w", err)
	}
	return name, func() { _ = os.Remove(name) }, nil
}

// putJSON writes v as indented JSON to key.
func (a *Activities) putJSON(ctx context.Context, key string, v any) (objstore.ObjectInfo, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("encode %s: %w", key, err)
	}
	info, err := a.Store.PutBytes(ctx, key, b)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	return info, nil
}

func (a *Activities) getJSON(ctx context.Context, key string, v any) error {
	b, err := a.Store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func badInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeBadInput, nil)
}
