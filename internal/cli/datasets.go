package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/objstore"
)

// newDatasetsCmd is `starter datasets`: synthetic datasets for users
// outside a release (a notebook, a CI job preparing fixtures).
func newDatasetsCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "datasets", Short: "Generate synthetic datasets (Parquet + manifest.json) locally or on S3"}
	var f generateFlags
	gen := &cobra.Command{
		Use:   "generate --kind prompts|images|tabular --out DIR|s3://bucket/prefix",
		Short: "Generate a dataset; an identical one already at --out is reused, not rewritten",
		Long: `Generate writes part-NNNNN.parquet files and manifest.json to --out.

  --kind prompts   adversarial prompts (one row per prompt)
  --kind images    synthetic 8-bit grayscale scans under images/, and their noise and
                   k-pixel perturbations under perturbations/ (--rows counts base images)
  --kind tabular   rows from a tabular spec (--spec FILE, or the name of a bundled spec),
                   with counterfactual twins

The same kind, seed and parameters always give byte-identical files. If --out
already holds a manifest with the same parameters and every file it lists, the
command prints "reused" and writes nothing. The manifest is written last, so an
interrupted run is simply regenerated.

S3 credentials and endpoint come from the AWS_* variables (see objstore).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, dest, err := f.plan(cmd)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			return runGenerate(cmd.Context(), env, plan, dest)
		},
	}
	fl := gen.Flags()
	fl.StringVar(&f.kind, "kind", "", "what to generate: "+strings.Join(datasetKinds(), "|"))
	fl.Int64Var(&f.rows, "rows", 1000, "rows to generate (images: base images; tabular: original rows, twins come on top)")
	fl.Uint64Var(&f.seed, "seed", 1, "generation seed; the same seed gives byte-identical files")
	fl.StringVar(&f.out, "out", "", "destination: a local directory or s3://bucket/prefix")
	fl.Int64Var(&f.partRows, "part-rows", 0, "rows per part file (0: 1000000 for prompts and tabular, 10000 base images for images)")
	fl.IntVar(&f.width, "width", 0, "images: width in pixels (0 means 64)")
	fl.IntVar(&f.height, "height", 0, "images: height in pixels (0 means 64)")
	fl.BoolVar(&f.perturb, "perturbations", true, "images: also write the perturbation sets")
	fl.StringVar(&f.spec, "spec", "", "tabular: spec file (YAML) or bundled spec name")
	_ = gen.MarkFlagRequired("kind")
	_ = gen.MarkFlagRequired("out")
	cmd.AddCommand(gen)
	cmd.AddCommand(newDatasetsFitCmd(env))
	cmd.AddCommand(newDatasetsRecordsCmd(env))
	return cmd
}

// datasetKinds are the values of --kind. A new generator adds a case to
// generateFlags.plan returning a datasetPlan; nothing else changes.
func datasetKinds() []string { return []string{"prompts", "images", "tabular"} }

type generateFlags struct {
	kind, out, spec string
	rows, partRows  int64
	seed            uint64
	width, height   int
	perturb         bool
}

// datasetPlan is everything runGenerate needs from a generator: what the
// manifest must say for the data to count as already present, and how to
// write the part files.
type datasetPlan struct {
	dataset, generator, version string
	seed                        uint64
	// params identify the data: an existing manifest whose params contain
	// these (plus the same generator, version and seed) is reused.
	params map[string]string
	// write generates the parts into dir under relative slash paths and
	// calls publish after each one, so S3 uploads start (and local disk is
	// freed) part by part. It returns the generator's own params, merged
	// into the manifest.
	write func(ctx context.Context, dir string, publish func(rel string, st datasets.FileStats) error) (map[string]string, error)
}

// plan validates the flags before anything is created.
func (f *generateFlags) plan(cmd *cobra.Command) (datasetPlan, destination, error) {
	var zero datasetPlan
	dest, err := parseDestination(f.out)
	if err != nil {
		return zero, dest, err
	}
	if f.rows < 1 {
		return zero, dest, fmt.Errorf("--rows %d: must be at least 1", f.rows)
	}
	if f.partRows < 0 {
		return zero, dest, fmt.Errorf("--part-rows %d: must be positive (or 0 for the default)", f.partRows)
	}
	set := func(name string) bool { return cmd.Flags().Changed(name) }
	only := func(kind string, flags ...string) error {
		for _, n := range flags {
			if set(n) && f.kind != kind {
				return fmt.Errorf("--%s applies to --kind %s only", n, kind)
			}
		}
		return nil
	}
	if err := errors.Join(only("images", "width", "height", "perturbations"), only("tabular", "spec")); err != nil {
		return zero, dest, err
	}
	parts := func(def int64) (partRows, count int64) {
		partRows = f.partRows
		if partRows == 0 {
			partRows = def
		}
		return partRows, (f.rows + partRows - 1) / partRows
	}
	base := map[string]string{"kind": f.kind, "rows": strconv.FormatInt(f.rows, 10)}
	switch f.kind {
	case "prompts":
		partRows, n := parts(1_000_000)
		opt := datasets.PromptOptions{}
		if err := opt.Validate(); err != nil {
			return zero, dest, err
		}
		params := merge(base, opt.Params(), map[string]string{"part_rows": strconv.FormatInt(partRows, 10)})
		return datasetPlan{
			dataset: "prompts", generator: datasets.PromptsGenerator, version: datasets.PromptsGeneratorVersion,
			seed: f.seed, params: params,
			write: func(ctx context.Context, dir string, publish func(string, datasets.FileStats) error) (map[string]string, error) {
				for p := range n {
					lo, hi := p*partRows, min((p+1)*partRows, f.rows)
					rel := fmt.Sprintf("part-%05d.parquet", p)
					st, err := datasets.WriteFile(filepath.Join(dir, rel), datasets.PromptsRange(f.seed, lo, hi-lo, opt), datasets.WriteOptions{})
					if err != nil {
						return nil, err
					}
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					if err := publish(rel, st); err != nil {
						return nil, err
					}
				}
				return nil, nil
			},
		}, dest, nil

	case "images":
		partRows, n := parts(10_000)
		opt := datasets.ImageOptions{Width: f.width, Height: f.height}
		if !f.perturb {
			opt.Epsilons, opt.PixelCounts = []float64{}, []int{}
		}
		if err := opt.Validate(); err != nil {
			return zero, dest, fmt.Errorf("--width/--height: %w", err)
		}
		params := merge(base, opt.Params(), map[string]string{
			"part_rows":     strconv.FormatInt(partRows, 10),
			"perturbations": strconv.FormatBool(f.perturb),
		})
		return datasetPlan{
			dataset: "images", generator: datasets.ImagesGenerator, version: datasets.ImagesGeneratorVersion,
			seed: f.seed, params: params,
			write: func(ctx context.Context, dir string, publish func(string, datasets.FileStats) error) (map[string]string, error) {
				for p := range n {
					lo, hi := p*partRows, min((p+1)*partRows, f.rows)
					rel := fmt.Sprintf("images/part-%05d.parquet", p)
					st, err := datasets.WriteImages(ctx, filepath.Join(dir, rel), f.seed, lo, hi-lo, opt, datasets.ImageWriteOptions{})
					if err != nil {
						return nil, err
					}
					if err := publish(rel, st); err != nil {
						return nil, err
					}
					if !f.perturb {
						continue
					}
					// Perturbation part p holds the variants of image part p,
					// so a shard of base images and its attacks travel together.
					rel = fmt.Sprintf("perturbations/part-%05d.parquet", p)
					st, err = datasets.WritePerturbations(ctx, filepath.Join(dir, rel), f.seed, lo, hi-lo, opt, datasets.ImageWriteOptions{})
					if err != nil {
						return nil, err
					}
					if err := publish(rel, st); err != nil {
						return nil, err
					}
				}
				return nil, nil
			},
		}, dest, nil

	case "tabular":
		if f.spec == "" {
			return zero, dest, errors.New("--kind tabular needs --spec FILE (a YAML spec) or a bundled spec name: " + strings.Join(datasets.BundledTabularSpecs(), ", "))
		}
		spec, specSum, err := loadTabularSpec(f.spec)
		if err != nil {
			return zero, dest, err
		}
		partRows, n := parts(1_000_000)
		seed := f.seed
		if seed == 0 {
			seed = spec.Seed // what WriteTabularDataset uses, so the manifests agree
		}
		params := merge(base, map[string]string{
			"part_rows":        strconv.FormatInt(partRows, 10),
			"cli_spec_sha256":  specSum,
			"cli_spec_dataset": spec.Name,
		})
		return datasetPlan{
			dataset: spec.Name, generator: datasets.TabularGeneratorName, version: datasets.TabularGeneratorVersion,
			seed: seed, params: params,
			write: func(ctx context.Context, dir string, publish func(string, datasets.FileStats) error) (map[string]string, error) {
				// The tabular writer shards by count and writes its own
				// manifest; we publish its parts and write ours last.
				m, err := datasets.WriteTabularDataset(ctx, spec, dir, datasets.TabularDatasetOptions{Seed: seed, Rows: f.rows, Shards: int(n)})
				if err != nil {
					return nil, err
				}
				for _, file := range m.Files {
					if err := publish(file.Key, datasets.FileStats{Rows: file.Rows, Bytes: file.Bytes, SHA256: file.SHA256}); err != nil {
						return nil, err
					}
				}
				return m.Params, nil
			},
		}, dest, nil
	}
	return zero, dest, fmt.Errorf("--kind %q: unknown; use one of %s", f.kind, strings.Join(datasetKinds(), ", "))
}

// loadTabularSpec reads a spec file, or a bundled spec when no such file
// exists, and returns it with the sha256 of its text (for reuse checks).
func loadTabularSpec(name string) (*datasets.TabularSpec, string, error) {
	b, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(name, `/\.`):
		spec, err := datasets.BundledTabularSpec(name)
		if err != nil {
			return nil, "", fmt.Errorf("--spec %s: not a file, and %w", name, err)
		}
		b, err := spec.Encode()
		if err != nil {
			return nil, "", fmt.Errorf("--spec %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		return spec, hex.EncodeToString(sum[:]), nil
	case err != nil:
		return nil, "", fmt.Errorf("--spec: %w", err)
	}
	spec, err := datasets.ParseTabularSpec(b)
	if err != nil {
		return nil, "", fmt.Errorf("--spec %s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	return spec, hex.EncodeToString(sum[:]), nil
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// destination is --out: a local directory, or a bucket and key prefix.
type destination struct {
	dir            string // local
	bucket, prefix string // S3; prefix is "" or ends in "/"
}

func (d destination) s3() bool { return d.bucket != "" }

// key is where rel (a slash path) goes: the S3 object key, or the path
// relative to the local directory. Manifests record it.
func (d destination) key(rel string) string { return d.prefix + rel }

func (d destination) String() string {
	if d.s3() {
		return "s3://" + d.bucket + "/" + d.prefix
	}
	return d.dir
}

func parseDestination(out string) (destination, error) {
	if out == "" {
		return destination{}, errors.New("--out is empty; give a directory or s3://bucket/prefix")
	}
	rest, ok := strings.CutPrefix(out, "s3://")
	if !ok {
		if strings.Contains(out, "://") {
			return destination{}, fmt.Errorf("--out %q: only local directories and s3:// URLs are supported", out)
		}
		return destination{dir: filepath.Clean(out)}, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return destination{}, fmt.Errorf("--out %q has no bucket; use s3://bucket/prefix", out)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		for _, seg := range strings.Split(prefix, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return destination{}, fmt.Errorf("--out %q: the prefix must not contain empty, '.' or '..' segments", out)
			}
		}
		prefix += "/"
	}
	return destination{bucket: bucket, prefix: prefix}, nil
}

// store abstracts the two destinations; only what runGenerate needs.
type store interface {
	// readManifest returns the existing manifest, or ok=false if none.
	readManifest(ctx context.Context) (datasets.Manifest, bool, error)
	// has reports whether the file a manifest lists is present with its size (and hash where known).
	has(ctx context.Context, f datasets.ManifestFile) (bool, error)
	// stagingDir is where parts are generated before publish moves them.
	stagingDir() (string, func(), error)
	publish(ctx context.Context, rel, local string) error
	writeManifest(ctx context.Context, b []byte) error
}

func runGenerate(ctx context.Context, env Env, plan datasetPlan, dest destination) error {
	st, err := openStore(ctx, dest)
	if err != nil {
		return err
	}
	if old, ok, err := st.readManifest(ctx); err != nil {
		return err
	} else if ok && reusable(ctx, st, old, plan) {
		fmt.Fprintf(env.Stdout, "reused: %s already holds %s (seed %d, %d rows in %d files); nothing written\n",
			dest.key("manifest.json"), old.Dataset, old.Seed, old.Rows, len(old.Files))
		return nil
	}

	dir, cleanup, err := st.stagingDir()
	if err != nil {
		return err
	}
	defer cleanup()
	m := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: plan.dataset,
		Generator: plan.generator, GeneratorVersion: plan.version, Seed: plan.seed}
	genParams, err := plan.write(ctx, dir, func(rel string, fs datasets.FileStats) error {
		if err := st.publish(ctx, rel, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			return err
		}
		m.AddFile(dest.key(rel), fs)
		fmt.Fprintf(env.Stderr, "wrote %s (%d rows, %d bytes)\n", dest.key(rel), fs.Rows, fs.Bytes)
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate %s: %w", plan.dataset, err)
	}
	// The plan's params win: they are what the reuse check compares.
	m.Params = merge(genParams, plan.params)
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("generate %s: %w", plan.dataset, err)
	}
	if err := st.writeManifest(ctx, b); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "generated %s: %d rows in %d files, manifest %s\n", plan.dataset, m.Rows, len(m.Files), dest.key("manifest.json"))
	return nil
}

// reusable: same generator, version, seed and params, and every file is
// still there. Anything else regenerates, which is always safe: the same
// inputs give the same bytes.
func reusable(ctx context.Context, st store, old datasets.Manifest, plan datasetPlan) bool {
	if old.Generator != plan.generator || old.GeneratorVersion != plan.version || old.Seed != plan.seed {
		return false
	}
	for k, v := range plan.params {
		if old.Params[k] != v {
			return false
		}
	}
	for _, f := range old.Files {
		if ok, err := st.has(ctx, f); err != nil || !ok {
			return false
		}
	}
	return true
}

func openStore(ctx context.Context, dest destination) (store, error) {
	if !dest.s3() {
		return localStore{dir: dest.dir}, nil
	}
	cfg := objstore.ConfigFromEnv()
	cfg.Bucket = dest.bucket
	s, err := objstore.New(ctx, cfg)
	if err != nil {
		return nil, withCode(ExitBadInput, fmt.Errorf("--out %s: %w", dest, err))
	}
	return s3Store{s: s, dest: dest}, nil
}

type localStore struct{ dir string }

func (l localStore) readManifest(context.Context) (datasets.Manifest, bool, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "manifest.json"))
	return existingManifest(b, err, errors.Is(err, fs.ErrNotExist))
}

// existingManifest interprets reading manifest.json at the destination: a
// missing or damaged manifest means there is nothing to reuse (a damaged one
// is replaced, not fatal: the data regenerates); other read errors are errors.
func existingManifest(b []byte, err error, missing bool) (datasets.Manifest, bool, error) {
	if missing {
		return datasets.Manifest{}, false, nil
	}
	if err != nil {
		return datasets.Manifest{}, false, fmt.Errorf("read existing manifest: %w", err)
	}
	m, err := datasets.ParseManifest(b)
	if err != nil {
		return datasets.Manifest{}, false, nil
	}
	return m, true, nil
}

func (l localStore) has(_ context.Context, f datasets.ManifestFile) (bool, error) {
	fi, err := os.Stat(filepath.Join(l.dir, filepath.FromSlash(f.Key)))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == f.Bytes, nil
}

// stagingDir is inside the destination so publish is a rename on one
// file system; a crash leaves only a hidden .staging-* directory.
func (l localStore) stagingDir() (string, func(), error) {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", l.dir, err)
	}
	d, err := os.MkdirTemp(l.dir, ".staging-")
	if err != nil {
		return "", nil, fmt.Errorf("create staging directory: %w", err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func (l localStore) publish(_ context.Context, rel, local string) error {
	dst := filepath.Join(l.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	if err := os.Rename(local, dst); err != nil {
		return fmt.Errorf("publish %s: %w", rel, err)
	}
	return nil
}

func (l localStore) writeManifest(_ context.Context, b []byte) error {
	tmp, err := os.CreateTemp(l.dir, ".manifest-*.json")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(l.dir, "manifest.json"))
	}
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

type s3Store struct {
	s    *objstore.Store
	dest destination
}

func (s s3Store) readManifest(ctx context.Context) (datasets.Manifest, bool, error) {
	b, err := s.s.Get(ctx, s.dest.key("manifest.json"))
	return existingManifest(b, err, errors.Is(err, objstore.ErrNotFound))
}

func (s s3Store) has(ctx context.Context, f datasets.ManifestFile) (bool, error) {
	info, err := s.s.Stat(ctx, f.Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Size == f.Bytes && (info.SHA256 == "" || info.SHA256 == f.SHA256), nil
}

func (s s3Store) stagingDir() (string, func(), error) {
	d, err := os.MkdirTemp("", "sandgate-datasets-")
	if err != nil {
		return "", nil, fmt.Errorf("create staging directory: %w", err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func (s s3Store) publish(ctx context.Context, rel, local string) error {
	key := s.dest.key(path.Clean(rel))
	if _, err := s.s.PutFile(ctx, key, local); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	// Free the disk now: a dataset can be far larger than the temp dir.
	os.Remove(local)
	return nil
}

func (s s3Store) writeManifest(ctx context.Context, b []byte) error {
	if _, err := s.s.PutBytes(ctx, s.dest.key("manifest.json"), b); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
