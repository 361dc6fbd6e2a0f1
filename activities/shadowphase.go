package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/shadow"
)

// StageShadowPhase names the results of a windowed shadow phase:
// results/shadow-phase/window=00007/part-00000.parquet and measurement.json.
const StageShadowPhase = "shadow-phase"

// ShadowWindowInput runs one analysis window of a shadow phase: Requests
// requests replayed to incumbent (twice, for the noise floor) and candidate.
type ShadowWindowInput struct {
	ReleaseID string
	Window    int // 0-based; picks the requests and the object key
	Incumbent SandboxRef
	Candidate SandboxRef
	// Traffic: ReplayKey (an S3 key of a Parquet request log, e.g. a
	// recorder part file or last week's requests; see
	// shadow.ReadRequestLog) when set, else the release's prompt Dataset.
	// Window w takes rows [w·Requests, (w+1)·Requests), wrapping around.
	ReplayKey    string
	Dataset      *DatasetRef
	Requests     int
	Concurrency  int
	Timeout      time.Duration
	MaxTokens    int
	SystemPrompt string
	Analysis     shadow.AnalysisSpec // metrics and MinSamples judge the window
}

// ShadowWindowResult is one window's verdict and where its pairs are; it
// holds no rows, so a phase of hundreds of windows keeps a small history.
type ShadowWindowResult struct {
	Window         int
	Measurement    shadow.Measurement
	Summary        shadow.Summary
	Key            string // the window's PairRow Parquet file
	MeasurementKey string // measurement.json beside it
	Rows           int64
	SHA256         string
	Skipped        int // recorded requests that were not chat requests or had no body
}

// ShadowWindow replays one window's requests, writes its pairs under a key
// that depends only on (release, window) — a retry overwrites, never
// duplicates — and judges the window against the analysis metrics.
func (a *Activities) ShadowWindow(ctx context.Context, in ShadowWindowInput) (ShadowWindowResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return ShadowWindowResult{}, err
	}
	switch {
	case in.Window < 0:
		return ShadowWindowResult{}, badInput("shadow window %d: must not be negative", in.Window)
	case in.Requests < 1:
		return ShadowWindowResult{}, badInput("shadow window: requests per window is %d; set it to at least analysis.minSamples (%d)", in.Requests, in.Analysis.MinSamples)
	case in.ReplayKey == "" && (in.Dataset == nil || in.Dataset.Rows == 0):
		return ShadowWindowResult{}, badInput("shadow window: no traffic; give a replay key (Parquet request log) or the prompt dataset")
	}
	if err := in.Analysis.Validate(); err != nil {
		return ShadowWindowResult{}, badInput("%v", err)
	}
	inc, err := a.sandboxFor(in.Incumbent)
	if err != nil {
		return ShadowWindowResult{}, err
	}
	cand, err := a.sandboxFor(in.Candidate)
	if err != nil {
		return ShadowWindowResult{}, err
	}
	reqs, skipped, err := a.windowRequests(ctx, in)
	if err != nil {
		return ShadowWindowResult{}, err
	}
	activity.RecordHeartbeat(ctx, fmt.Sprintf("window %d: %d requests", in.Window, len(reqs)))

	acc := shadow.NewAccumulator()
	rows := make([]shadow.PairRow, 0, len(reqs))
	opt := shadow.ReplayOptions{Concurrency: in.Concurrency, Timeout: in.Timeout, MaxTokens: in.MaxTokens, ReleaseID: in.ReleaseID, Logger: a.Logger}
	err = shadow.Replay(ctx, &modelapi.Client{BaseURL: inc.Endpoint()}, &modelapi.Client{BaseURL: cand.Endpoint()}, reqs, opt, func(r shadow.PairRow) error {
		acc.Add(r)
		rows = append(rows, r)
		if len(rows)%50 == 0 {
			activity.RecordHeartbeat(ctx, fmt.Sprintf("window %d: %d/%d", in.Window, len(rows), len(reqs)))
		}
		return nil
	})
	if err != nil {
		return ShadowWindowResult{}, fmt.Errorf("shadow window %d: %w", in.Window, err)
	}
	prefix := must(k.l.ResultsStagePrefix(StageShadowPhase)) + fmt.Sprintf("window=%05d/", in.Window)
	key := prefix + "part-00000.parquet"
	file, err := a.writeRows(ctx, key, func(path string) (datasets.FileStats, error) {
		return datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{
			Metadata: map[string]string{"release_id": in.ReleaseID, "window": fmt.Sprint(in.Window)},
		})
	})
	if err != nil {
		return ShadowWindowResult{}, err
	}
	sum := acc.Summary()
	m := shadow.Measure(in.Analysis, in.Window, sum)
	res := ShadowWindowResult{
		Window: in.Window, Measurement: m, Summary: sum, Key: key, MeasurementKey: prefix + "measurement.json",
		Rows: file.Rows, SHA256: file.SHA256, Skipped: skipped,
	}
	if _, err := a.putJSON(ctx, res.MeasurementKey, res); err != nil {
		return ShadowWindowResult{}, err
	}
	a.Logger.Info("shadow window done", "release", in.ReleaseID, "window", in.Window, "phase", m.Phase, "reason", m.Reason)
	return res, nil
}

// windowRequests picks the window's slice of the traffic, wrapping around
// the end so any number of windows can run on a finite log.
func (a *Activities) windowRequests(ctx context.Context, in ShadowWindowInput) ([]shadow.Request, int, error) {
	n := int64(in.Requests)
	if in.ReplayKey != "" {
		path, cleanup, err := a.tempFile("replay-*.parquet")
		if err != nil {
			return nil, 0, err
		}
		defer cleanup()
		if _, err := a.Store.Download(ctx, in.ReplayKey, path); err != nil {
			return nil, 0, fmt.Errorf("download replay log %s: %w", in.ReplayKey, err)
		}
		total, err := datasets.CountRows(path)
		if err != nil {
			return nil, 0, badInput("replay log %s: %v", in.ReplayKey, err)
		}
		if total == 0 {
			return nil, 0, badInput("replay log %s has no rows", in.ReplayKey)
		}
		// Only the window's rows are decoded: a week of requests need not fit in memory.
		var picked []shadow.RecordedRequest
		empty := 0
		start := (int64(in.Window) * n) % total
		for got := int64(0); got < n; {
			end := min(total, start+n-got)
			part, err := shadow.ReadRequestLog(path, start, end-start)
			if err != nil {
				return nil, 0, badInput("replay log %s: %v", in.ReplayKey, err)
			}
			picked = append(picked, part.Requests...)
			empty += part.Skipped
			got += end - start
			start = 0
		}
		reqs, skipped := shadow.ChatRequests(picked)
		return withSystemPrompt(reqs, in.SystemPrompt, false), skipped + empty, nil
	}
	total := in.Dataset.Rows
	start := (int64(in.Window) * n) % total
	var prompts []datasets.PromptRow
	for got := int64(0); got < n; {
		end := min(total, start+n-got)
		part, err := a.readPrompts(ctx, *in.Dataset, start, end)
		if err != nil {
			return nil, 0, fmt.Errorf("read traffic: %w", err)
		}
		prompts = append(prompts, part...)
		got += end - start
		start = 0
	}
	reqs := make([]shadow.Request, 0, len(prompts))
	seen := map[string]int{}
	for _, p := range prompts {
		id := p.ID
		if c := seen[p.ID]; c > 0 {
			id = fmt.Sprintf("%s#%d", p.ID, c) // the window wrapped around a small dataset
		}
		seen[p.ID]++
		reqs = append(reqs, shadow.Request{ID: id, Messages: []modelapi.Message{{Role: "user", Content: p.Prompt}}})
	}
	return withSystemPrompt(reqs, in.SystemPrompt, true), 0, nil
}

// withSystemPrompt adds the model's system prompt to synthetic prompts;
// recorded requests keep the one their client sent (force false) unless
// they have none.
func withSystemPrompt(reqs []shadow.Request, sys string, force bool) []shadow.Request {
	if sys == "" {
		return reqs
	}
	for i, r := range reqs {
		if !force && len(r.Messages) > 0 && r.Messages[0].Role == "system" {
			continue
		}
		reqs[i].Messages = append([]modelapi.Message{{Role: "system", Content: sys}}, r.Messages...)
	}
	return reqs
}
