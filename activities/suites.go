package activities

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/tableio"
)

// suiteFiles collects the result files of one suite and writes its manifest.
type suiteFiles struct {
	a        *Activities
	suite    string
	prefix   string // results/<suite>/
	manifest datasets.Manifest
}

func (a *Activities) newSuiteFiles(releaseID, suite string, seed uint64) (*suiteFiles, error) {
	k, err := keysFor(releaseID)
	if err != nil {
		return nil, err
	}
	prefix := must(k.l.ResultsStagePrefix(suite))
	return &suiteFiles{a: a, suite: suite, prefix: prefix, manifest: datasets.Manifest{
		SchemaVersion: datasets.ManifestSchemaVersion, Dataset: suite, Generator: "sandgate/activities." + suite,
		GeneratorVersion: GeneratorVersion, Seed: seed,
	}}, nil
}

// key of a table: results/<suite>/<table>/part-00000.parquet, a directory
// per table so a notebook globs one schema at a time.
func (f *suiteFiles) key(table string) string { return f.prefix + table + "/part-00000.parquet" }

func writeTable[T any](ctx context.Context, f *suiteFiles, table string, rows []T) error {
	file, err := f.a.writeRows(ctx, f.key(table), func(p string) (datasets.FileStats, error) {
		return datasets.WriteFile(p, slices.Values(rows), datasets.WriteOptions{Metadata: map[string]string{"suite": f.suite, "table": table}})
	})
	if err != nil {
		return err
	}
	f.manifest.Files = append(f.manifest.Files, file)
	f.manifest.Rows += file.Rows
	return nil
}

// finish writes the suite's manifest and returns its key, or "" when the
// suite wrote no file (e.g. red teaming without adaptive attackers: only
// metrics), since a manifest lists at least one file.
func (f *suiteFiles) finish(ctx context.Context) (string, int64, error) {
	if len(f.manifest.Files) == 0 {
		return "", 0, nil
	}
	key := f.prefix + "manifest.json"
	if _, err := f.a.putJSON(ctx, key, f.manifest); err != nil {
		return "", 0, err
	}
	return key, f.manifest.Rows, nil
}

// oip returns a client for the model in the sandbox and its metadata,
// checking the model is ready first so a wrong oip_model name fails with
// a message that says so rather than with 404s on every batch.
func (a *Activities) oip(ctx context.Context, in SuiteInput) (*modelapi.OIPClient, modelapi.ModelMetadata, error) {
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return nil, modelapi.ModelMetadata{}, err
	}
	c := &modelapi.OIPClient{BaseURL: sb.Endpoint(), Model: in.OIPModel, BatchSize: 256, Concurrency: 4}
	meta, err := c.Metadata(ctx)
	if err != nil {
		return nil, meta, badInput("model.oip_model %q: the model server does not describe it (GET /v2/models/%s): %v", in.OIPModel, in.OIPModel, err)
	}
	if len(meta.Outputs) == 0 {
		return nil, meta, badInput("model.oip_model %q: its metadata lists no outputs", in.OIPModel)
	}
	return c, meta, nil
}

// linkRow is the identity columns of a tabular dataset row.
type linkRow struct {
	ID      int64  `parquet:"id"`
	TwinOf  *int64 `parquet:"twin_of,optional"`
	Flipped string `parquet:"flipped_attribute"`
}

// population is a tabular dataset read back from S3: the feature table the
// model takes, the protected and label columns, and twin links.
type population struct {
	Features modelapi.Table
	Extra    modelapi.Table // protected attributes and label, by name
	ID       []int64
	TwinOf   []int64 // -1 for originals
	Flipped  []string
}

// readPopulation downloads every part of the dataset and reads the model's
// inputs plus the extra columns, checking each part's sha256 on the way.
func (a *Activities) readPopulation(ctx context.Context, ref TabularDataRef, inputs, extra []string) (population, error) {
	var p population
	for _, key := range ref.Files {
		local, cleanup, err := a.tempFile("population-*.parquet")
		if err != nil {
			return p, err
		}
		err = func() error {
			defer cleanup()
			if _, err := a.Store.Download(ctx, key, local); err != nil {
				return fmt.Errorf("download %s: %w", key, err)
			}
			feat, err := tableio.ReadFile(ctx, local, tableio.Options{Columns: inputs})
			if err != nil {
				return badInput("%s: %v (the model's inputs are %s)", key, err, strings.Join(inputs, ", "))
			}
			ex, err := tableio.ReadFile(ctx, local, tableio.Options{Columns: extra})
			if err != nil {
				return badInput("%s: %v", key, err)
			}
			links, err := readLinks(local)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			p.Features.Append(feat)
			p.Extra.Append(ex)
			for _, l := range links {
				p.ID = append(p.ID, l.ID)
				tw := int64(-1)
				if l.TwinOf != nil {
					tw = *l.TwinOf
				}
				p.TwinOf = append(p.TwinOf, tw)
				p.Flipped = append(p.Flipped, l.Flipped)
			}
			return nil
		}()
		if err != nil {
			return p, err
		}
		activity.RecordHeartbeat(ctx, "read "+path.Base(key))
	}
	if p.Features.Len() != len(p.ID) {
		return p, fmt.Errorf("population: %d feature rows but %d ids", p.Features.Len(), len(p.ID))
	}
	return p, nil
}

func readLinks(path string) ([]linkRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := parquet.NewGenericReader[linkRow](f)
	defer r.Close()
	out := make([]linkRow, r.NumRows())
	n, err := r.Read(out)
	if n == len(out) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("read id, twin_of, flipped_attribute: %w", err)
	}
	return out[:n], nil
}

// text renders row i of a column as the group label fairness metrics use.
func text(c modelapi.Column, i int) string {
	switch c.Type {
	case modelapi.String:
		return c.Strings[i]
	case modelapi.Bool:
		if c.Bools[i] {
			return "true"
		}
		return "false"
	case modelapi.Int64:
		return fmt.Sprint(c.Ints[i])
	}
	return fmt.Sprint(c.Floats[i])
}

// inputNames are the model's declared input names.
func inputNames(meta modelapi.ModelMetadata) []string {
	out := make([]string, len(meta.Inputs))
	for i, in := range meta.Inputs {
		out[i] = in.Name
	}
	return out
}

// extraColumns are the protected attributes and the label column of a
// fairness config, deduplicated, in config order.
func extraColumns(f *config.Fairness) []string {
	out := slices.Clone(f.Protected)
	if f.LabelColumn != "" && !slices.Contains(out, f.LabelColumn) {
		out = append(out, f.LabelColumn)
	}
	return out
}

func indexOf[T comparable](xs []T) map[T]int {
	m := make(map[T]int, len(xs))
	for i, x := range xs {
		m[x] = i
	}
	return m
}

// seqOf adapts a slice for datasets.WriteFile.
func seqOf[T any](xs []T) iter.Seq[T] { return slices.Values(xs) }
