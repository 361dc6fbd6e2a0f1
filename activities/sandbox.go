package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/sandbox"
)

// ProvisionInput asks for one model to be started in a sandbox.
type ProvisionInput struct {
	ReleaseID string
	Role      string // "candidate" or "incumbent"
	Model     config.Model
}

// SandboxRef is what the workflow keeps of a running sandbox.
type SandboxRef struct {
	SandboxID     string
	Role          string
	Endpoint      string // relay base URL on the worker's loopback
	EvidenceKey   string // S3 key of the isolation evidence
	EgressBlocked bool
	Interfaces    []string
	// ArtifactName and ArtifactDigest identify what ran: the sha256 of the
	// model server's executable, the subject of the release attestation.
	ArtifactName   string
	ArtifactDigest string
}

// Provision starts the model in a fresh sandbox, waits until it answers and
// records the evidence that it has no network egress.
func (a *Activities) Provision(ctx context.Context, in ProvisionInput) (SandboxRef, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return SandboxRef{}, err
	}
	if a.Sandboxes == nil {
		return SandboxRef{}, badInput("this worker has no sandbox provider")
	}
	s := in.Model.Sandbox
	spec := sandbox.Spec{
		Name:    fmt.Sprintf("%s-%s", in.Role, in.Model.Name),
		Command: s.Command,
		Port:    s.Port,
		Env:     s.Env,
		Limits: sandbox.Limits{
			CPUs:        s.Limits.CPUs,
			MemoryBytes: int64(s.Limits.Memory),
			Pids:        s.Limits.Pids,
			WallClock:   time.Duration(s.Limits.WallClock),
		},
		Relay: &sandbox.RelayOptions{
			MaxRequests:    s.Budget.Requests,
			RequestTimeout: time.Duration(s.Budget.Timeout),
		},
	}
	artifact, digest, err := artifactDigest(s.Command[0])
	if err != nil {
		return SandboxRef{}, badInput("model.sandbox.command[0] %q: %v", s.Command[0], err)
	}
	sb, err := a.Sandboxes.Start(ctx, spec)
	if err != nil {
		if errors.Is(err, sandbox.ErrUnsupported) {
			return SandboxRef{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
		}
		return SandboxRef{}, fmt.Errorf("start %s sandbox: %w", in.Role, err)
	}
	a.mu.Lock()
	a.live[sb.ID()] = sb
	a.mu.Unlock()

	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go heartbeatUntil(readyCtx, "waiting for model")
	if err := sb.WaitReady(readyCtx); err != nil {
		a.stopAndForget(context.WithoutCancel(ctx), sb.ID())
		return SandboxRef{}, fmt.Errorf("%s model did not become ready: %w", in.Role, err)
	}
	ev := sb.Evidence()
	key := k.audit("sandbox-" + in.Role + ".json")
	record := map[string]any{
		"sandbox_id": sb.ID(),
		"role":       in.Role,
		"model":      in.Model.Name,
		"version":    in.Model.Version,
		"command":    s.Command,
		"limits":     spec.Limits,
		"evidence":   ev,
		"artifact":   map[string]string{"name": artifact, "sha256": digest},
	}
	if _, err := a.putJSON(ctx, key, record); err != nil {
		a.stopAndForget(context.WithoutCancel(ctx), sb.ID())
		return SandboxRef{}, err
	}
	a.Logger.Info("sandbox ready", "release", in.ReleaseID, "role", in.Role, "sandbox", sb.ID(), "endpoint", sb.Endpoint())
	return SandboxRef{
		SandboxID:      sb.ID(),
		Role:           in.Role,
		Endpoint:       sb.Endpoint(),
		EvidenceKey:    key,
		EgressBlocked:  ev.Check() == nil,
		Interfaces:     ev.Interfaces,
		ArtifactName:   artifact,
		ArtifactDigest: digest,
	}, nil
}

// TeardownInput names the sandboxes to stop and wipe.
type TeardownInput struct {
	ReleaseID string
	Sandboxes []SandboxRef
}

// TeardownResult says what was stopped and where its final stats are.
type TeardownResult struct {
	Stopped  []string
	Missing  []string // not on this worker any more: died with a previous worker
	StatsKey string
}

// Teardown stops and wipes sandboxes. It always succeeds for sandboxes this
// worker no longer has (they died with the worker that ran them).
func (a *Activities) Teardown(ctx context.Context, in TeardownInput) (TeardownResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return TeardownResult{}, err
	}
	var res TeardownResult
	stats := map[string]any{}
	for _, ref := range in.Sandboxes {
		a.mu.Lock()
		sb := a.live[ref.SandboxID]
		a.mu.Unlock()
		if sb == nil {
			res.Missing = append(res.Missing, ref.SandboxID)
			continue
		}
		if err := sb.Stop(ctx); err != nil {
			return res, fmt.Errorf("stop sandbox %s: %w", ref.SandboxID, err)
		}
		a.mu.Lock()
		delete(a.live, ref.SandboxID)
		a.mu.Unlock()
		stats[ref.Role] = sb.Stats()
		res.Stopped = append(res.Stopped, ref.SandboxID)
	}
	res.StatsKey = k.audit("teardown.json")
	if _, err := a.putJSON(ctx, res.StatsKey, map[string]any{"stopped": res.Stopped, "missing": res.Missing, "stats": stats}); err != nil {
		return res, err
	}
	return res, nil
}

func (a *Activities) stopAndForget(ctx context.Context, id string) {
	a.mu.Lock()
	sb := a.live[id]
	delete(a.live, id)
	a.mu.Unlock()
	if sb != nil {
		if err := sb.Stop(ctx); err != nil {
			a.Logger.Warn("stop sandbox", "sandbox", id, "err", err)
		}
	}
}

// sandboxFor returns the live sandbox behind ref, or a SandboxGone error the
// workflow answers by provisioning again.
func (a *Activities) sandboxFor(ref SandboxRef) (*sandbox.Sandbox, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sb := a.live[ref.SandboxID]
	if sb == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("sandbox %s (%s) is not running on this worker", ref.SandboxID, ref.Role), ErrTypeSandboxGone, nil)
	}
	return sb, nil
}

// artifactDigest hashes the executable that serves the model. A bundled
// role (sandgate-refmodel) runs from this very binary, so that is what is hashed.
func artifactDigest(cmd string) (name, digest string, err error) {
	path := cmd
	if reexec.Registered(cmd) {
		path = reexec.Self()
	} else if path, err = exec.LookPath(cmd); err != nil {
		return "", "", fmt.Errorf("not found: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", fmt.Errorf("hash %s: %w", path, err)
	}
	return cmd, hex.EncodeToString(h.Sum(nil)), nil
}

// heartbeatUntil keeps an activity alive while it waits on something that
// reports no progress of its own.
func heartbeatUntil(ctx context.Context, what string) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			activity.RecordHeartbeat(ctx, what)
		}
	}
}
