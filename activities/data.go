package activities

import (
	"context"
	"fmt"
	"strconv"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
)

// PrepareInput records the release's config before any work starts.
type PrepareInput struct {
	ReleaseID    string
	Config       config.Release
	ConfigSHA256 string
}

// PrepareResult says where the config was stored.
type PrepareResult struct {
	ConfigKey string
	Prefix    string
}

// Prepare checks the store is reachable and records the config the release runs with.
func (a *Activities) Prepare(ctx context.Context, in PrepareInput) (PrepareResult, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return PrepareResult{}, err
	}
	if err := datasets.ValidateReleaseID(in.ReleaseID); err != nil {
		return PrepareResult{}, badInput("%v", err)
	}
	if err := in.Config.Validate(); err != nil {
		return PrepareResult{}, badInput("%v", err)
	}
	key := k.audit("config.json")
	if _, err := a.putJSON(ctx, key, map[string]any{"sha256": in.ConfigSHA256, "config": in.Config}); err != nil {
		return PrepareResult{}, err
	}
	return PrepareResult{ConfigKey: key, Prefix: fmt.Sprintf("s3://%s/%s", a.Store.Bucket(), k.prefix())}, nil
}

// GenerateInput describes the adversarial prompt dataset to make.
type GenerateInput struct {
	ReleaseID     string
	Seed          uint64
	Count         int
	Families      []string
	ConverterRate *float64
}

// DatasetRef points at a dataset on S3.
type DatasetRef struct {
	Name        string
	ManifestKey string
	FileKey     string
	Rows        int64
	SHA256      string
}

// GeneratePrompts writes the prompt dataset as Parquet plus its manifest. A
// retry with the same input finds the manifest and returns it: the data is a
// function of the seed, so regenerating would only reproduce the same bytes.
func (a *Activities) GeneratePrompts(ctx context.Context, in GenerateInput) (DatasetRef, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return DatasetRef{}, err
	}
	const name = "prompts"
	manifestKey := k.datasetManifest(name)
	fileKey := k.datasetPart(name)
	var existing datasets.Manifest
	if ok, err := a.Store.Exists(ctx, manifestKey); err != nil {
		return DatasetRef{}, fmt.Errorf("check %s: %w", manifestKey, err)
	} else if ok {
		if err := a.getJSON(ctx, manifestKey, &existing); err == nil && existing.Seed == in.Seed && existing.Rows == int64(in.Count) && len(existing.Files) == 1 {
			return DatasetRef{Name: name, ManifestKey: manifestKey, FileKey: existing.Files[0].Key, Rows: existing.Rows, SHA256: existing.Files[0].SHA256}, nil
		}
	}
	opts := datasets.PromptOptions{Families: in.Families}
	if in.ConverterRate != nil {
		opts.ConverterRate = *in.ConverterRate
	}
	path, cleanup, err := a.tempFile("prompts-*.parquet")
	if err != nil {
		return DatasetRef{}, err
	}
	defer cleanup()
	stats, err := datasets.WriteFile(path, datasets.Prompts(in.Seed, in.Count, opts), datasets.WriteOptions{})
	if err != nil {
		return DatasetRef{}, badInput("generate prompts: %v", err)
	}
	info, err := a.Store.PutFile(ctx, fileKey, path)
	if err != nil {
		return DatasetRef{}, fmt.Errorf("upload prompts: %w", err)
	}
	m := datasets.Manifest{
		SchemaVersion:    datasets.ManifestSchemaVersion,
		Dataset:          name,
		Generator:        datasets.PromptsGenerator,
		GeneratorVersion: datasets.PromptsGeneratorVersion,
		Seed:             in.Seed,
		Rows:             stats.Rows,
		Files:            []datasets.ManifestFile{{Key: fileKey, Rows: stats.Rows, Bytes: info.Size, SHA256: info.SHA256}},
		Params: map[string]string{
			"count":    strconv.Itoa(in.Count),
			"families": fmt.Sprint(in.Families),
		},
	}
	if _, err := a.putJSON(ctx, manifestKey, m); err != nil {
		return DatasetRef{}, err
	}
	return DatasetRef{Name: name, ManifestKey: manifestKey, FileKey: fileKey, Rows: stats.Rows, SHA256: info.SHA256}, nil
}

// FinalizeInput merges per-shard manifests into the stage manifest.
type FinalizeInput struct {
	ReleaseID         string
	Stage             string
	ShardManifestKeys []string
}

// ResultsRef points at a stage's results.
type ResultsRef struct {
	ManifestKey string
	Rows        int64
	Files       int
}

// FinalizeResults writes results/<stage>/manifest.json listing every part.
func (a *Activities) FinalizeResults(ctx context.Context, in FinalizeInput) (ResultsRef, error) {
	k, err := keysFor(in.ReleaseID)
	if err != nil {
		return ResultsRef{}, err
	}
	out := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: in.Stage, Generator: "sandgate/activities.FinalizeResults", GeneratorVersion: GeneratorVersion}
	for _, k := range in.ShardManifestKeys {
		var m datasets.Manifest
		if err := a.getJSON(ctx, k, &m); err != nil {
			return ResultsRef{}, err
		}
		out.Rows += m.Rows
		out.Files = append(out.Files, m.Files...)
		out.Seed = m.Seed
	}
	key := k.resultManifest(in.Stage)
	if _, err := a.putJSON(ctx, key, out); err != nil {
		return ResultsRef{}, err
	}
	return ResultsRef{ManifestKey: key, Rows: out.Rows, Files: len(out.Files)}, nil
}

// downloadDataset fetches a dataset file to a temp path.
func (a *Activities) downloadDataset(ctx context.Context, ds DatasetRef) (string, func(), error) {
	path, cleanup, err := a.tempFile("dataset-*.parquet")
	if err != nil {
		return "", nil, err
	}
	info, err := a.Store.Download(ctx, ds.FileKey, path)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("download %s: %w", ds.FileKey, err)
	}
	if ds.SHA256 != "" && info.SHA256 != ds.SHA256 {
		cleanup()
		return "", nil, fmt.Errorf("dataset %s changed: sha256 %s, manifest says %s", ds.FileKey, info.SHA256, ds.SHA256)
	}
	return path, cleanup, nil
}
