// Package regate recomputes a stored release's gate verdict from the rows
// the release wrote to S3, under any policy, without calling the model.
//
// A release's stages leave their rows as Parquet files listed, with their
// sha256, in releases/<id>/results/<stage>/manifest.json. Summaries reads
// them back through the same accumulators the stages used (redteam.Tally,
// privacy.Accumulator, shadow.Accumulator), so a stricter policy applied
// here sees exactly the numbers the release was judged on, and a file
// changed after the release is refused rather than silently re-judged.
package regate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/shadow"
)

// Stage names as the release writes them under results/. They mirror the
// activities package's constants, which this package cannot import
// (activities depends on Temporal).
const (
	StageAdversarial = "adversarial"
	StagePrivacy     = "privacy"
	StageShadow      = "shadow"
)

// readBatch bounds the rows held in memory per file at a time.
const readBatch = 8192

// Store is the part of *objstore.Store this package reads through.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error)
	Download(ctx context.Context, key, path string) (objstore.ObjectInfo, error)
}

var _ Store = (*objstore.Store)(nil)

// Stored is what a release's stored results say, recomputed from its rows.
type Stored struct {
	Adversarial redteam.Summary
	Privacy     privacy.Summary
	Shadow      shadow.Summary
	// Evidence maps a stage name (a metric prefix: "adversarial",
	// "privacy", "shadow") to the keys of the files its summary was
	// computed from; it is what gate.EvaluateWithEvidence takes.
	Evidence     map[string][]string
	ModelName    string
	ModelVersion string
	// Stages lists the stages that had results, in pipeline order; a
	// stage that never ran (e.g. shadow after a blocked gate) is absent
	// and its metrics are missing, as they were for the release.
	Stages []string
}

// Summaries recomputes the stage summaries of releaseID from its stored rows.
// Every file is checked against the sha256 in its stage manifest before it
// is read; a mismatch is an error naming the key.
func Summaries(ctx context.Context, st Store, releaseID string) (Stored, error) {
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		return Stored{}, fmt.Errorf("regate: %w", err)
	}
	out := Stored{Evidence: map[string][]string{}}
	if out.ModelName, out.ModelVersion, err = readModel(ctx, st, l); err != nil {
		return Stored{}, err
	}
	dir, err := os.MkdirTemp("", "regate-*")
	if err != nil {
		return Stored{}, fmt.Errorf("regate: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	r := reader{st: st, l: l, dir: dir}

	var tally redteam.Tally
	keys, err := readStage(ctx, r, StageAdversarial, func(row redteam.AttemptRow) { tally.Add(row) })
	if err != nil {
		return Stored{}, err
	}
	out.record(StageAdversarial, keys)
	out.Adversarial = tally.Summary()

	var leaks privacy.Accumulator
	if keys, err = readStage(ctx, r, StagePrivacy, func(row privacy.LeakRow) { leaks.Add(row) }); err != nil {
		return Stored{}, err
	}
	out.record(StagePrivacy, keys)
	out.Privacy = leaks.Summary()

	pairs := shadow.NewAccumulator()
	if keys, err = readStage(ctx, r, StageShadow, func(row shadow.PairRow) { pairs.Add(row) }); err != nil {
		return Stored{}, err
	}
	out.record(StageShadow, keys)
	out.Shadow = pairs.Summary()
	return out, nil
}

// record notes a stage's files; nil keys mean the stage has no results.
func (s *Stored) record(stage string, keys []string) {
	if keys == nil {
		return
	}
	s.Stages = append(s.Stages, stage)
	s.Evidence[stage] = keys
}

// Metrics flattens the recomputed summaries into gate metrics.
func (s Stored) Metrics() gate.Metrics {
	return gate.MetricsFrom(s.Adversarial, s.Privacy, s.Shadow)
}

// Verdict applies every rule of p, whatever its phase, to the stored
// metrics: offline, all the evidence the release has is available at once.
func (s Stored) Verdict(p gate.Policy, baseline gate.Metrics) (gate.Verdict, error) {
	if err := p.Validate(); err != nil {
		return gate.Verdict{}, fmt.Errorf("regate: %w", err)
	}
	return gate.EvaluateWithEvidence(p, s.Metrics(), baseline, s.Evidence), nil
}

// Regate recomputes releaseID's verdict under p from its stored rows.
// baseline is the last released version's metrics (nil when none); see
// BaselineFromReport.
func Regate(ctx context.Context, st Store, releaseID string, p gate.Policy, baseline gate.Metrics) (gate.Verdict, error) {
	// Validate before reading anything: a bad policy should not cost a
	// download of every result file.
	if err := p.Validate(); err != nil {
		return gate.Verdict{}, fmt.Errorf("regate: %w", err)
	}
	s, err := Summaries(ctx, st, releaseID)
	if err != nil {
		return gate.Verdict{}, err
	}
	return s.Verdict(p, baseline)
}

// BaselineFromReport builds the metrics of a released version from its
// stored report.json (an audit.Report), for regression rules.
func BaselineFromReport(reportJSON []byte) (gate.Metrics, error) {
	var r audit.Report
	if err := json.Unmarshal(reportJSON, &r); err != nil {
		return nil, fmt.Errorf("regate: baseline report is not a report.json: %w", err)
	}
	m := gate.MetricsFrom(r.Adversarial, r.Privacy, r.Shadow)
	for _, s := range r.Suites {
		for k, v := range s.Metrics {
			m[k] = v
		}
	}
	return m, nil
}

// readModel reads the model name and version from audit/config.json, the
// config the release recorded before it started any work.
func readModel(ctx context.Context, st Store, l datasets.Layout) (name, version string, err error) {
	key, err := l.Audit("config.json")
	if err != nil {
		return "", "", fmt.Errorf("regate: %w", err)
	}
	b, err := st.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return "", "", fmt.Errorf("regate: release %s has no %s; check the release id and SANDGATE_BUCKET: %w", l.ReleaseID(), key, err)
		}
		return "", "", fmt.Errorf("regate: read %s: %w", key, err)
	}
	// Only the model is needed; decoding into config.Release would make an
	// old release unreadable whenever the config schema grows stricter.
	var doc struct {
		Config struct {
			Model struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"model"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", "", fmt.Errorf("regate: %s is not the recorded release config: %w", key, err)
	}
	return doc.Config.Model.Name, doc.Config.Model.Version, nil
}

type reader struct {
	st  Store
	l   datasets.Layout
	dir string
}

// readStage feeds every row of a stage's files to add and returns the
// files' keys, or nil keys when the stage left no manifest (it never ran).
func readStage[T any](ctx context.Context, r reader, stage string, add func(T)) ([]string, error) {
	mkey, err := r.l.ResultManifest(stage)
	if err != nil {
		return nil, fmt.Errorf("regate: %w", err)
	}
	// List rather than Get-and-classify: "never ran" must be told apart
	// from "could not read", and a listing says so without error parsing.
	objs, err := r.st.List(ctx, mkey)
	if err != nil {
		return nil, fmt.Errorf("regate: list %s: %w", mkey, err)
	}
	if !listed(objs, mkey) {
		return nil, nil
	}
	b, err := r.st.Get(ctx, mkey)
	if err != nil {
		return nil, fmt.Errorf("regate: read %s: %w", mkey, err)
	}
	m, err := datasets.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("regate: %s: %w", mkey, err)
	}
	keys := make([]string, 0, len(m.Files))
	for i, f := range m.Files {
		if !strings.HasPrefix(f.Key, r.l.Prefix()) {
			return nil, fmt.Errorf("regate: %s: files[%d] %s is outside %s; the manifest does not belong to this release", mkey, i, f.Key, r.l.Prefix())
		}
		if err := readFile(ctx, r, f, add); err != nil {
			return nil, err
		}
		keys = append(keys, f.Key)
	}
	return keys, nil
}

func listed(objs []objstore.ObjectInfo, key string) bool {
	for _, o := range objs {
		if o.Key == key {
			return true
		}
	}
	return false
}

// readFile downloads one file, verifies it against the manifest and feeds
// its rows to add in batches.
func readFile[T any](ctx context.Context, r reader, f datasets.ManifestFile, add func(T)) error {
	path := filepath.Join(r.dir, "part.parquet")
	defer os.Remove(path)
	info, err := r.st.Download(ctx, f.Key, path)
	if err != nil {
		return fmt.Errorf("regate: download %s: %w", f.Key, err)
	}
	if info.SHA256 != f.SHA256 {
		return fmt.Errorf("regate: %s has sha256 %s but its manifest records %s: the stored result was changed after the release; not re-gating on it", f.Key, info.SHA256, f.SHA256)
	}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("regate: read %s: %w", f.Key, err)
		}
		rows, err := datasets.ReadRows[T](path, n, readBatch)
		if err != nil {
			return fmt.Errorf("regate: %w", err)
		}
		for _, row := range rows {
			add(row)
		}
		n += int64(len(rows))
		if len(rows) < readBatch {
			break
		}
	}
	if n != f.Rows {
		return fmt.Errorf("regate: %s holds %d rows but its manifest records %d", f.Key, n, f.Rows)
	}
	return nil
}
