package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/regate"
	"github.com/sandgate/sandgate/shadow"
)

// Stage names used in keys.
const (
	StagePrivacy = "privacy"
	StageShadow  = "shadow"
)

// PrivacyInput runs the leakage probes and scans the adversarial replies.
type PrivacyInput struct {
	ReleaseID           string
	Sandbox             SandboxRef
	Seed                uint64
	Target              redteam.Target
	Concurrency         int
	Timeout             time.Duration
	MaxTokens           int
	Model               string
	AdversarialManifest string // results/adversarial/manifest.json
}

// PrivacyResult is the privacy stage's summary and where its rows are.
type PrivacyResult struct {
	Summary     privacy.Summary
	ManifestKey string
	Rows        int64
}

// PrivacyScan probes the model for its system prompt, planted secrets and
// canary records, and scans every adversarial reply for the same leaks.
func (a *Activities) PrivacyScan(ctx context.Context, in PrivacyInput) (PrivacyResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return PrivacyResult{}, err
	}
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return PrivacyResult{}, err
	}
	acc := &privacy.Accumulator{}
	var rows []privacy.LeakRow
	emit := func(r privacy.LeakRow) error {
		acc.Add(r)
		rows = append(rows, r)
		return nil
	}
	probes := privacy.Probes(in.Seed, in.Target)
	client := &modelapi.Client{BaseURL: sb.Endpoint()}
	opt := privacy.RunOptions{Concurrency: in.Concurrency, Timeout: in.Timeout, MaxTokens: in.MaxTokens, ReleaseID: in.ReleaseID, Model: in.Model, Logger: a.Logger}
	if err := privacy.Run(ctx, client, in.Target, probes, opt, emit); err != nil {
		return PrivacyResult{}, fmt.Errorf("privacy probes: %w", err)
	}
	activity.RecordHeartbeat(ctx, "probes done")

	// Replies to attacks are the largest sample of model output: scan them too.
	if in.AdversarialManifest != "" {
		var m datasets.Manifest
		if err := a.getJSON(ctx, in.AdversarialManifest, &m); err != nil {
			return PrivacyResult{}, err
		}
		detectors := redteam.DefaultDetectors()
		for _, f := range m.Files {
			part, _, err := a.readPart(ctx, f.Key)
			if err != nil {
				return PrivacyResult{}, fmt.Errorf("read %s: %w", f.Key, err)
			}
			for _, r := range part {
				if err := emit(privacy.AdversarialRow(detectors, in.Target, r)); err != nil {
					return PrivacyResult{}, err
				}
			}
			activity.RecordHeartbeat(ctx, f.Key)
		}
	}
	key := k.resultPart(StagePrivacy, 0, 0)
	file, err := a.writeRows(ctx, key, func(path string) (datasets.FileStats, error) {
		return datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{})
	})
	if err != nil {
		return PrivacyResult{}, err
	}
	manifest := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: StagePrivacy, Generator: "privacy.Run", GeneratorVersion: GeneratorVersion, Seed: in.Seed, Rows: file.Rows, Files: []datasets.ManifestFile{file}}
	mkey := k.resultManifest(StagePrivacy)
	if _, err := a.putJSON(ctx, mkey, manifest); err != nil {
		return PrivacyResult{}, err
	}
	return PrivacyResult{Summary: acc.Summary(), ManifestKey: mkey, Rows: file.Rows}, nil
}

// ShadowInput replays synthetic traffic to incumbent and candidate.
type ShadowInput struct {
	ReleaseID    string
	Incumbent    SandboxRef
	Candidate    SandboxRef
	Dataset      DatasetRef
	Requests     int
	Concurrency  int
	Timeout      time.Duration
	MaxTokens    int
	SystemPrompt string
}

// ShadowResult is the comparison summary and where the pairs are.
type ShadowResult struct {
	Summary     shadow.Summary
	ManifestKey string
	Rows        int64
}

// Shadow mirrors synthetic traffic to the candidate beside the incumbent,
// with the incumbent against itself as the noise floor, and records every pair.
func (a *Activities) Shadow(ctx context.Context, in ShadowInput) (ShadowResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return ShadowResult{}, err
	}
	inc, err := a.sandboxFor(in.Incumbent)
	if err != nil {
		return ShadowResult{}, err
	}
	cand, err := a.sandboxFor(in.Candidate)
	if err != nil {
		return ShadowResult{}, err
	}
	n := min(int64(in.Requests), in.Dataset.Rows)
	prompts, err := a.readPrompts(ctx, in.Dataset, 0, n)
	if err != nil {
		return ShadowResult{}, fmt.Errorf("read traffic: %w", err)
	}
	reqs := make([]shadow.Request, 0, len(prompts))
	for _, p := range prompts {
		msgs := []modelapi.Message{{Role: "user", Content: p.Prompt}}
		if in.SystemPrompt != "" {
			msgs = append([]modelapi.Message{{Role: "system", Content: in.SystemPrompt}}, msgs...)
		}
		reqs = append(reqs, shadow.Request{ID: p.ID, Messages: msgs})
	}
	acc := shadow.NewAccumulator()
	var rows []shadow.PairRow
	opt := shadow.ReplayOptions{Concurrency: in.Concurrency, Timeout: in.Timeout, MaxTokens: in.MaxTokens, ReleaseID: in.ReleaseID, Logger: a.Logger}
	err = shadow.Replay(ctx, &modelapi.Client{BaseURL: inc.Endpoint()}, &modelapi.Client{BaseURL: cand.Endpoint()}, reqs, opt, func(r shadow.PairRow) error {
		acc.Add(r)
		rows = append(rows, r)
		if len(rows)%50 == 0 {
			activity.RecordHeartbeat(ctx, len(rows))
		}
		return nil
	})
	if err != nil {
		return ShadowResult{}, fmt.Errorf("shadow replay: %w", err)
	}
	key := k.resultPart(StageShadow, 0, 0)
	file, err := a.writeRows(ctx, key, func(path string) (datasets.FileStats, error) {
		return datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{})
	})
	if err != nil {
		return ShadowResult{}, err
	}
	manifest := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: StageShadow, Generator: "shadow.Replay", GeneratorVersion: GeneratorVersion, Rows: file.Rows, Files: []datasets.ManifestFile{file}}
	mkey := k.resultManifest(StageShadow)
	if _, err := a.putJSON(ctx, mkey, manifest); err != nil {
		return ShadowResult{}, err
	}
	return ShadowResult{Summary: acc.Summary(), ManifestKey: mkey, Rows: file.Rows}, nil
}

func (a *Activities) writeRows(ctx context.Context, key string, write func(path string) (datasets.FileStats, error)) (datasets.ManifestFile, error) {
	path, cleanup, err := a.tempFile("rows-*.parquet")
	if err != nil {
		return datasets.ManifestFile{}, err
	}
	defer cleanup()
	stats, err := write(path)
	if err != nil {
		return datasets.ManifestFile{}, fmt.Errorf("write %s: %w", key, err)
	}
	info, err := a.Store.PutFile(ctx, key, path)
	if err != nil {
		return datasets.ManifestFile{}, fmt.Errorf("upload %s: %w", key, err)
	}
	return datasets.ManifestFile{Key: key, Rows: stats.Rows, Bytes: info.Size, SHA256: info.SHA256}, nil
}

// GateInput is the evidence a gate decision is made on.
type GateInput struct {
	ReleaseID   string
	ModelName   string
	Phase       string // "pre-shadow" evaluates adversarial and privacy rules, "shadow" the shadow rules
	Policy      gate.Policy
	Adversarial redteam.Summary
	Privacy     privacy.Summary
	Shadow      shadow.Summary
	// SuiteMetrics are the metrics of classifier and regressor suites
	// (fairness.*, robustness.*, privacy.mia.*, privacy.epsilon_lb).
	SuiteMetrics map[string]float64
	// Evidence maps a metric prefix ("adversarial", "privacy", "shadow") to
	// the manifests of the rows behind it, so each rule names its rows.
	Evidence map[string][]string
}

// GateResult is the verdict and where its evidence was recorded.
type GateResult struct {
	Verdict     gate.Verdict
	EvidenceKey string
}

// Gate applies the policy's rules for this phase and records the verdict.
func (a *Activities) Gate(ctx context.Context, in GateInput) (GateResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return GateResult{}, err
	}
	policy := in.Policy.ForPhase(in.Phase)
	m := withSuites(gate.MetricsFrom(in.Adversarial, in.Privacy, in.Shadow), in.SuiteMetrics)
	baseline, baselineID, err := a.baseline(ctx, in.ModelName)
	if err != nil {
		return GateResult{}, err
	}
	v := gate.EvaluateWithEvidence(policy, m, baseline, in.Evidence)
	key := k.audit("gate-" + in.Phase + ".json")
	if _, err := a.putJSON(ctx, key, map[string]any{"phase": in.Phase, "policy": policy, "metrics": m, "baseline_release": baselineID, "baseline": baseline, "verdict": v}); err != nil {
		return GateResult{}, err
	}
	return GateResult{Verdict: v, EvidenceKey: key}, nil
}

// withSuites adds the suites' metrics to m.
func withSuites(m gate.Metrics, suites map[string]float64) gate.Metrics {
	for k, v := range suites {
		m[k] = v
	}
	return m
}

// lastReleased is the pointer to the newest RELEASED release of a model,
// the baseline that regression rules compare against.
type lastReleased struct {
	ReleaseID string `json:"release_id"`
	Version   string `json:"version"`
	ReportKey string `json:"report_json_key"`
}

func lastReleasedKey(model string) string { return "models/" + model + "/last-released.json" }

// baseline loads the metrics of the model's last released version; none
// yet is an empty baseline, which regression rules are written to allow.
func (a *Activities) baseline(ctx context.Context, model string) (gate.Metrics, string, error) {
	if model == "" {
		return gate.Metrics{}, "", nil
	}
	ok, err := a.Store.Exists(ctx, lastReleasedKey(model))
	if err != nil {
		return nil, "", fmt.Errorf("look up last released %s: %w", model, err)
	}
	if !ok {
		return gate.Metrics{}, "", nil
	}
	var ptr lastReleased
	if err := a.getJSON(ctx, lastReleasedKey(model), &ptr); err != nil {
		return nil, "", err
	}
	b, err := a.Store.Get(ctx, ptr.ReportKey)
	if err != nil {
		return nil, "", fmt.Errorf("read baseline report %s: %w", ptr.ReportKey, err)
	}
	m, err := regate.BaselineFromReport(b)
	if err != nil {
		return nil, "", err
	}
	return m, ptr.ReleaseID, nil
}

// ReportInput is everything the report says; it is small by construction.
type ReportInput struct {
	Report audit.Report
}

// ReportRef says where the report was written.
type ReportRef struct {
	MarkdownKey string
	JSONKey     string
	HTMLKey     string
}

// Report renders the release report as Markdown and JSON under report/.
func (a *Activities) Report(ctx context.Context, in ReportInput) (ReportRef, error) {
	k, err := keysFor(in.Report.ReleaseID)
	if err != nil {
		return ReportRef{}, err
	}
	md := audit.RenderMarkdown(in.Report)
	js, err := audit.RenderJSON(in.Report)
	if err != nil {
		return ReportRef{}, fmt.Errorf("render report: %w", err)
	}
	page, err := audit.RenderHTML(in.Report)
	if err != nil {
		return ReportRef{}, fmt.Errorf("render HTML report: %w", err)
	}
	ref := ReportRef{MarkdownKey: k.l.ReportMarkdown(), JSONKey: k.l.ReportJSON(), HTMLKey: k.l.ReportPrefix() + "report.html"}
	if _, err := a.Store.PutBytes(ctx, ref.HTMLKey, page); err != nil {
		return ReportRef{}, fmt.Errorf("write report: %w", err)
	}
	if _, err := a.Store.PutBytes(ctx, ref.MarkdownKey, md); err != nil {
		return ReportRef{}, fmt.Errorf("write report: %w", err)
	}
	if _, err := a.Store.PutBytes(ctx, ref.JSONKey, js); err != nil {
		return ReportRef{}, fmt.Errorf("write report: %w", err)
	}
	if in.Report.Verdict == gate.Released && in.Report.ModelName != "" {
		ptr := lastReleased{ReleaseID: in.Report.ReleaseID, Version: in.Report.ModelVersion, ReportKey: ref.JSONKey}
		if _, err := a.putJSON(ctx, lastReleasedKey(in.Report.ModelName), ptr); err != nil {
			return ReportRef{}, err
		}
	}
	return ref, nil
}
