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
	if err := refuseUnwiredProvider(in.Role, in.Model.Sandbox); err != nil {
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
			MaxTokens:      s.Budget.Tokens,
			MaxBytes:       int64(s.Budget.Bytes),
			RequestTimeout: time.Duration(s.Budget.Timeout),
		},
	}
	if n := s.Network; n.Profile != "" || n.Latency > 0 || n.Jitter > 0 || n.Bandwidth > 0 {
		p, err := sandbox.LookupProfile(n.Profile)
		if err != nil {
			return SandboxRef{}, badInput("model.sandbox.network.profile: %v", err)
		}
		if n.Latency > 0 {
			p.Latency, p.Sigma = time.Duration(n.Latency), 0
		}
		if n.Jitter > 0 {
			p.Jitter = time.Duration(n.Jitter)
		}
		if n.Bandwidth > 0 {
			p.BytesPerSecond = int64(n.Bandwidth)
		}
		spec.Relay.Network = p
	}
	// Egress records travel in the sandbox's TeardownReport (teardown.json);
	// the allowlist and its refusal probe are in the evidence above.
	for _, r := range s.Egress.Allow {
		spec.Egress = append(spec.Egress, sandbox.EgressRule{Name: r.Name, Address: r.Address})
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
	// Dirty lists sandboxes whose wipe check found something left;
	// Poisoned those whose model files changed while they ran.
	Dirty, Poisoned []string
	// SnapshotKeys are the failure snapshots uploaded under snapshots/.
	SnapshotKeys []string
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
	reports := map[string]sandbox.TeardownReport{}
	for _, ref := range in.Sandboxes {
		a.mu.Lock()
		sb := a.live[ref.SandboxID]
		a.mu.Unlock()
		if sb == nil {
			res.Missing = append(res.Missing, ref.SandboxID)
			continue
		}
		// Stop, then check nothing is left (process, cgroup, mount,
		// scratch dir) and that the model did not write into its own files.
		rep, terr := sb.Teardown(ctx)
		if terr != nil && !rep.Wipe.Clean && len(rep.Wipe.Checked) == 0 {
			return res, fmt.Errorf("stop sandbox %s: %w", ref.SandboxID, terr)
		}
		a.mu.Lock()
		delete(a.live, ref.SandboxID)
		a.mu.Unlock()
		stats[ref.Role] = sb.Stats()
		reports[ref.Role] = rep
		if !rep.Wipe.Clean {
			res.Dirty = append(res.Dirty, ref.SandboxID)
		}
		if rep.ModelFiles.Changed {
			res.Poisoned = append(res.Poisoned, ref.SandboxID)
		}
		keys, err := a.uploadSnapshots(ctx, k, ref, sb)
		if err != nil {
			return res, err
		}
		res.SnapshotKeys = append(res.SnapshotKeys, keys...)
		res.Stopped = append(res.Stopped, ref.SandboxID)
	}
	res.StatsKey = k.audit("teardown.json")
	if _, err := a.putJSON(ctx, res.StatsKey, map[string]any{"stopped": res.Stopped, "missing": res.Missing, "stats": stats,
		"teardown": reports, "snapshots": res.SnapshotKeys}); err != nil {
		return res, err
	}
	return res, nil
}

// uploadSnapshots puts the failure snapshots a sandbox took (crash, OOM,
// deadline, budget breach) under snapshots/ as .tar.gz, for
// `starter snapshot show|replay`, and removes the local copies.
func (a *Activities) uploadSnapshots(ctx context.Context, k keys, ref SandboxRef, sb *sandbox.Sandbox) ([]string, error) {
	var out []string
	for i, snap := range sb.Snapshots() {
		path, cleanup, err := a.tempFile("snapshot-*.tar.gz")
		if err != nil {
			return out, err
		}
		err = func() error {
			defer cleanup()
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if err := sandbox.TarSnapshot(snap.Dir, f); err != nil {
				f.Close()
				return fmt.Errorf("snapshot %s: %w", snap.Dir, err)
			}
			if err := f.Close(); err != nil {
				return err
			}
			key := must(k.l.Snapshot(fmt.Sprintf("%s-%02d.tar.gz", ref.Role, i)))
			if _, err := a.Store.PutFile(ctx, key, path); err != nil {
				return err
			}
			out = append(out, key)
			return os.RemoveAll(snap.Dir)
		}()
		if err != nil {
			return out, err
		}
	}
	return out, nil
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
