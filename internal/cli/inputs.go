package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/workflows"
)

// localInput is a file on the starter's machine that a release reads from
// S3: it is uploaded under the release's inputs/ before the release starts,
// and the config field is rewritten to the object key.
type localInput struct {
	field string // config path, for errors
	path  string // local file
	key   string // object key it is uploaded to
	rows  int64
}

// isLocalPath: an explicit relative or absolute path. Anything else is an
// object key in the release bucket (or an s3:// URL).
func isLocalPath(ref string) bool {
	return strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || strings.HasPrefix(ref, "/")
}

// resolveLocalInputs finds the config's local input files (relative to the
// config file), checks they exist before anything starts, and points the
// config at the keys they will be uploaded to.
func resolveLocalInputs(configPath string, in *workflows.ReleaseInput) ([]localInput, error) {
	m := in.Config.Suites.Membership
	if m == nil {
		return nil, nil
	}
	l, err := datasets.NewLayout(in.ReleaseID)
	if err != nil {
		return nil, err
	}
	var out []localInput
	for _, f := range []struct {
		field string
		ref   *string
		name  string
	}{{"suites.membership.members", &m.Members, "members.parquet"}, {"suites.membership.non_members", &m.NonMembers, "non-members.parquet"}} {
		if !isLocalPath(*f.ref) {
			continue
		}
		p := *f.ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(configPath), p)
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: %s is not a readable file (paths are relative to the config file; use an object key or s3:// URL for data already on S3)", f.field, *f.ref)
		}
		rows, err := parquetRows(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", f.field, *f.ref, err)
		}
		key := l.Prefix() + "inputs/" + f.name
		out = append(out, localInput{field: f.field, path: p, key: key, rows: rows})
		*f.ref = key
	}
	return out, nil
}

// uploadInputs puts the local inputs under the release's inputs/. A
// re-upload of the same release overwrites the same keys.
// A manifest beside them records their sha256 and row counts, like every
// other file of the release.
func uploadInputs(ctx context.Context, store *objstore.Store, inputs []localInput) error {
	if len(inputs) == 0 {
		return nil
	}
	m := datasets.Manifest{SchemaVersion: datasets.ManifestSchemaVersion, Dataset: "inputs", Generator: "starter (uploaded as given)", GeneratorVersion: "1.0.0"}
	for _, in := range inputs {
		info, err := store.PutFile(ctx, in.key, in.path)
		if err != nil {
			return fmt.Errorf("%s: upload %s: %w", in.field, in.path, err)
		}
		m.Files = append(m.Files, datasets.ManifestFile{Key: in.key, Rows: in.rows, Bytes: info.Size, SHA256: info.SHA256})
		m.Rows += in.rows
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	key := strings.TrimSuffix(inputs[0].key, path.Base(inputs[0].key)) + "manifest.json"
	if _, err := store.PutBytes(ctx, key, b); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

// parquetRows opens a local Parquet file: a file that is not Parquet is
// refused before anything starts.
func parquetRows(p string) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("not a readable Parquet file: %w", err)
	}
	if pf.NumRows() == 0 {
		return 0, fmt.Errorf("has no rows")
	}
	return pf.NumRows(), nil
}
