package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
		key := l.Prefix() + "inputs/" + f.name
		out = append(out, localInput{field: f.field, path: p, key: key})
		*f.ref = key
	}
	return out, nil
}

// uploadInputs puts the local inputs under the release's inputs/. A
// re-upload of the same release overwrites the same keys.
func uploadInputs(ctx context.Context, store *objstore.Store, inputs []localInput) error {
	for _, in := range inputs {
		if _, err := store.PutFile(ctx, in.key, in.path); err != nil {
			return fmt.Errorf("%s: upload %s: %w", in.field, in.path, err)
		}
	}
	return nil
}
