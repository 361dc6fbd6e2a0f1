package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/redteam"
)

// StageAdversarial names the adversarial stage in keys and results.
const StageAdversarial = "adversarial"

// ShardInput is one shard of the adversarial stage.
type ShardInput struct {
	ReleaseID   string
	Sandbox     SandboxRef
	Dataset     DatasetRef
	Shard       int
	Shards      int
	PartSize    int
	Concurrency int
	MaxTokens   int
	MaxRetries  int
	Timeout     time.Duration
	Target      redteam.Target
	Model       string
	// Limits and Budget are this shard's share of the stage's global rate
	// limit and budget (the workflow divides them by the shards it runs at
	// once), so all shards on all workers together stay within them.
	Limits redteam.Limits
	Budget redteam.Budget
}

// ShardResult is what a shard hands back: counts and a manifest key, never rows.
type ShardResult struct {
	Shard       int
	Rows        int64
	Parts       int
	Resumed     int // parts found already written by an earlier attempt
	ManifestKey string
	Tally       redteam.Tally
}

// ShardProgress is the heartbeat detail: the next part to run.
type ShardProgress struct {
	NextPart int
	Rows     int64
}

// ShardRange is the half-open row range [Start, End) of shard i of n over rows.
func ShardRange(rows int64, i, n int) (start, end int64) {
	per, rem := rows/int64(n), rows%int64(n)
	start = int64(i)*per + min(int64(i), rem)
	end = start + per
	if int64(i) < rem {
		end++
	}
	return start, end
}

// AdversarialShard attacks the model with one shard of the prompt dataset.
// Results are written part by part under deterministic keys; a part already
// on S3 (from an attempt that died) is read back instead of re-run, and a
// part re-run after a crash overwrites the same key — so every prompt ends up
// with exactly one result row however often the shard restarts.
func (a *Activities) AdversarialShard(ctx context.Context, in ShardInput) (ShardResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return ShardResult{}, err
	}
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return ShardResult{}, err
	}
	start, end := ShardRange(in.Dataset.Rows, in.Shard, in.Shards)
	parts := int((end - start + int64(in.PartSize) - 1) / int64(in.PartSize))
	res := ShardResult{Shard: in.Shard, Parts: parts, Tally: redteam.Tally{}}

	var progress ShardProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &progress)
	}

	prompts, err := a.readPrompts(ctx, in.Dataset, start, end)
	if err != nil {
		return res, err
	}

	hc, err := modelapi.NewEndpointHTTPClient(sb.Endpoint(), 0, in.Concurrency)
	if err != nil {
		return res, fmt.Errorf("model client: %w", err)
	}
	client := &modelapi.Client{BaseURL: sb.Endpoint(), HTTP: hc}
	throttle, err := redteam.NewThrottle(redteam.ThrottleOptions{Limits: in.Limits, Budget: in.Budget, MaxConcurrency: max(in.Concurrency, 1)})
	if err != nil {
		return res, badInput("suites.adversarial.rate_limit: %v", err)
	}
	manifest := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: StageAdversarial, Generator: "redteam.Run", GeneratorVersion: GeneratorVersion}
	for p := 0; p < parts; p++ {
		pStart := start + int64(p)*int64(in.PartSize)
		pEnd := min(pStart+int64(in.PartSize), end)
		key := k.resultPart(StageAdversarial, in.Shard, p)
		rows, file, resumed, err := a.adversarialPart(ctx, client, throttle, in, prompts[pStart-start:pEnd-start], key, p < progress.NextPart)
		if errors.Is(err, redteam.ErrBudget) {
			return res, badInput("shard %d part %d: suites.adversarial.budget is spent (this shard's share: %+v): %v", in.Shard, p, in.Budget, err)
		}
		if err != nil {
			return res, fmt.Errorf("shard %d part %d: %w", in.Shard, p, err)
		}
		for _, r := range rows {
			res.Tally.Add(r)
		}
		if resumed {
			res.Resumed++
		}
		res.Rows += int64(len(rows))
		manifest.Files = append(manifest.Files, file)
		activity.RecordHeartbeat(ctx, ShardProgress{NextPart: p + 1, Rows: res.Rows})
	}
	manifest.Rows = res.Rows
	res.ManifestKey = k.shardManifest(StageAdversarial, in.Shard)
	if _, err := a.putJSON(ctx, res.ManifestKey, manifest); err != nil {
		return res, err
	}
	return res, nil
}

// adversarialPart returns the rows of one part, from S3 when an earlier
// attempt already wrote it completely, otherwise by running the attacks.
func (a *Activities) adversarialPart(ctx context.Context, client *modelapi.Client, throttle *redteam.Throttle, in ShardInput, prompts []datasets.PromptRow, key string, heartbeatSaysDone bool) ([]redteam.AttemptRow, datasets.ManifestFile, bool, error) {
	want := int64(len(prompts))
	exists, err := a.Store.Exists(ctx, key)
	if err != nil {
		return nil, datasets.ManifestFile{}, false, fmt.Errorf("check %s: %w", key, err)
	}
	if exists {
		rows, file, err := a.readPart(ctx, key)
		if err == nil && int64(len(rows)) == want {
			return rows, file, true, nil
		}
		a.Logger.Warn("re-running incomplete part", "key", key, "rows", len(rows), "want", want, "err", err, "heartbeat_done", heartbeatSaysDone)
	}
	rows := make([]redteam.AttemptRow, 0, len(prompts))
	opt := redteam.RunOptions{
		Concurrency: in.Concurrency,
		Timeout:     in.Timeout,
		MaxRetries:  in.MaxRetries,
		MaxTokens:   in.MaxTokens,
		ReleaseID:   in.ReleaseID,
		Shard:       in.Shard,
		Model:       in.Model,
		Logger:      a.Logger,
		Throttle:    throttle,
	}
	err = redteam.RunSeq(ctx, client, in.Target, slices.Values(prompts), opt, func(r redteam.AttemptRow) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, datasets.ManifestFile{}, false, err
	}
	path, cleanup, err := a.tempFile("part-*.parquet")
	if err != nil {
		return nil, datasets.ManifestFile{}, false, err
	}
	defer cleanup()
	stats, err := datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{})
	if err != nil {
		return nil, datasets.ManifestFile{}, false, fmt.Errorf("write part: %w", err)
	}
	info, err := a.Store.PutFile(ctx, key, path)
	if err != nil {
		return nil, datasets.ManifestFile{}, false, fmt.Errorf("upload part: %w", err)
	}
	return rows, datasets.ManifestFile{Key: key, Rows: stats.Rows, Bytes: info.Size, SHA256: info.SHA256}, false, nil
}

func (a *Activities) readPart(ctx context.Context, key string) ([]redteam.AttemptRow, datasets.ManifestFile, error) {
	path, cleanup, err := a.tempFile("part-*.parquet")
	if err != nil {
		return nil, datasets.ManifestFile{}, err
	}
	defer cleanup()
	info, err := a.Store.Download(ctx, key, path)
	if err != nil {
		return nil, datasets.ManifestFile{}, err
	}
	n, err := datasets.CountRows(path)
	if err != nil {
		return nil, datasets.ManifestFile{}, err
	}
	rows, err := datasets.ReadRows[redteam.AttemptRow](path, 0, n)
	if err != nil {
		return nil, datasets.ManifestFile{}, err
	}
	return rows, datasets.ManifestFile{Key: key, Rows: n, Bytes: info.Size, SHA256: info.SHA256}, nil
}
