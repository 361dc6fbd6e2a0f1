package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
)

// Suites of classifier and regressor releases, as stage names in keys.
const (
	SuiteFairness   = "fairness"
	SuiteRobustness = "robustness"
	SuiteMembership = "membership"
)

// TabularDataRef points at a synthetic tabular population on S3.
type TabularDataRef struct {
	Name        string // dataset name under datasets/
	ManifestKey string
	Files       []string // part keys, in order
	Rows        int64    // all rows, twins included
	Originals   int64
	Seed        uint64
	Reused      bool
}

// GenerateTabularInput asks for a population from a bundled schema.
type GenerateTabularInput struct {
	ReleaseID string
	Data      config.TabularData
}

// GenerateTabular writes the population (originals and their counterfactual
// twins) as Parquet under datasets/<schema>/; a manifest already there with
// the same generator version, seed and rows is reused, so a retried or
// resumed release never regenerates it.
func (a *Activities) GenerateTabular(ctx context.Context, in GenerateTabularInput) (TabularDataRef, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return TabularDataRef{}, err
	}
	spec, err := datasets.BundledTabularSpec(in.Data.Schema)
	if err != nil {
		return TabularDataRef{}, badInput("suites.fairness.dataset.schema: %v (bundled: %s)", err, strings.Join(datasets.BundledTabularSpecs(), ", "))
	}
	name := "tabular-" + spec.Name
	manifestKey := k.datasetManifest(name)
	prefix := strings.TrimSuffix(manifestKey, "manifest.json")
	ref := TabularDataRef{Name: name, ManifestKey: manifestKey, Originals: int64(in.Data.Rows), Seed: in.Data.Seed}

	if ok, err := a.Store.Exists(ctx, manifestKey); err != nil {
		return ref, err
	} else if ok {
		var m datasets.Manifest
		if err := a.getJSON(ctx, manifestKey, &m); err != nil {
			return ref, err
		}
		if m.GeneratorVersion == datasets.TabularGeneratorVersion && m.Seed == in.Data.Seed && m.Params["rows"] == fmt.Sprint(in.Data.Rows) {
			ref.Reused = true
			ref.Rows = m.Rows
			for _, f := range m.Files {
				ref.Files = append(ref.Files, f.Key)
			}
			return ref, nil
		}
	}

	dir, err := os.MkdirTemp(a.TempDir, "tabular-*")
	if err != nil {
		return ref, fmt.Errorf("generate tabular: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := datasets.WriteTabularDataset(ctx, spec, dir, datasets.TabularDatasetOptions{
		Seed: in.Data.Seed, Rows: int64(in.Data.Rows), KeyPrefix: prefix,
	})
	if err != nil {
		return ref, badInput("generate %s: %v", spec.Name, err)
	}
	if m.Params == nil {
		m.Params = map[string]string{}
	}
	m.Params["rows"] = fmt.Sprint(in.Data.Rows)
	for _, f := range m.Files {
		if _, err := a.Store.PutFile(ctx, f.Key, filepath.Join(dir, strings.TrimPrefix(f.Key, prefix))); err != nil {
			return ref, err
		}
		ref.Files = append(ref.Files, f.Key)
	}
	if _, err := a.putJSON(ctx, manifestKey, m); err != nil {
		return ref, err
	}
	ref.Rows = m.Rows
	return ref, nil
}

// SuiteResult is what a suite hands back: gate metrics, the report section
// and where its rows are — never the rows.
type SuiteResult struct {
	Suite       string
	Metrics     map[string]float64
	ManifestKey string
	Rows        int64
	Queries     int64 // model inputs evaluated
	Section     audit.SuiteSection
}

// SuiteInput is one suite of a classifier or regressor release.
type SuiteInput struct {
	ReleaseID  string
	Sandbox    SandboxRef
	ModelType  string // config.TypeClassifier or config.TypeRegressor
	OIPModel   string
	Fairness   *config.Fairness
	Robustness *config.Robustness
	Membership *config.Membership
	Tabular    *TabularDataRef
	Seed       uint64
	// Recipe is "<kind>/<variant>" of a bundled reference model, whose
	// training code LiRA's shadow models use; empty for other models.
	Recipe string
}
