package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// ManifestSchemaVersion is the manifest format this package writes and the
// newest it reads.
const ManifestSchemaVersion = 1

// maxManifestBytes bounds ParseManifest input; a real manifest with
// thousands of shards is well under a megabyte.
const maxManifestBytes = 16 << 20

// Manifest describes one dataset or one stage's results: enough to verify
// every file and to regenerate the data bit-identically from the seed.
type Manifest struct {
	SchemaVersion    int               `json:"schema_version"`
	Dataset          string            `json:"dataset"`
	Generator        string            `json:"generator"`
	GeneratorVersion string            `json:"generator_version"`
	Seed             uint64            `json:"seed"`
	Rows             int64             `json:"rows"`
	Files            []ManifestFile    `json:"files"`
	Params           map[string]string `json:"params,omitempty"`
}

// ManifestFile is one Parquet file of the dataset. Key is the object key
// (relative to the bucket), SHA256 lowercase hex of the whole file.
type ManifestFile struct {
	Key    string `json:"key"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// AddFile appends a written file and keeps Rows equal to the sum of the
// files' rows.
func (m *Manifest) AddFile(key string, s FileStats) {
	m.Files = append(m.Files, ManifestFile{Key: key, Rows: s.Rows, Bytes: s.Bytes, SHA256: s.SHA256})
	m.Rows += s.Rows
}

// Validate returns every problem at once, each naming the field and what a
// valid value looks like.
func (m Manifest) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("manifest: "+format, args...))
	}
	switch {
	case m.SchemaVersion == 0:
		add("schema_version is missing; set it to %d", ManifestSchemaVersion)
	case m.SchemaVersion < 0 || m.SchemaVersion > ManifestSchemaVersion:
		add("schema_version %d is not supported (this build reads 1..%d); upgrade sandgate", m.SchemaVersion, ManifestSchemaVersion)
	}
	if err := ValidateName(m.Dataset); err != nil {
		add("dataset: %v", err)
	}
	if strings.TrimSpace(m.Generator) == "" {
		add("generator is empty; name the code that produced the data (e.g. %q)", "prompts")
	}
	if strings.TrimSpace(m.GeneratorVersion) == "" {
		add("generator_version is empty; regeneration is only bit-identical for the same version (e.g. %q)", PromptsGeneratorVersion)
	}
	if m.Rows < 0 {
		add("rows is %d; must be >= 0", m.Rows)
	}
	if len(m.Files) == 0 {
		add("files is empty; a dataset has at least one file (an empty dataset has one file with 0 rows)")
	}
	seen := make(map[string]int, len(m.Files))
	var sum int64
	for i, f := range m.Files {
		switch {
		case f.Key == "":
			add("files[%d].key is empty", i)
		case strings.HasPrefix(f.Key, "/") || strings.Contains("/"+f.Key+"/", "/../"):
			add("files[%d].key %q must be a bucket-relative key without '..'", i, f.Key)
		}
		if j, dup := seen[f.Key]; dup && f.Key != "" {
			add("files[%d].key %q duplicates files[%d]", i, f.Key, j)
		} else {
			seen[f.Key] = i
		}
		if f.Rows < 0 {
			add("files[%d].rows is %d; must be >= 0", i, f.Rows)
		}
		if f.Bytes <= 0 {
			add("files[%d].bytes is %d; a Parquet file is never empty", i, f.Bytes)
		}
		if !isSHA256Hex(f.SHA256) {
			add("files[%d].sha256 %q is not 64 lowercase hex characters (use the value WriteFile returns)", i, f.SHA256)
		}
		if f.Rows > 0 && sum > math.MaxInt64-f.Rows {
			add("files[%d].rows %d overflows the total row count", i, f.Rows)
		} else if f.Rows > 0 {
			sum += f.Rows
		}
	}
	if len(m.Files) > 0 && sum != m.Rows {
		add("rows is %d but the files hold %d; recompute rows from files", m.Rows, sum)
	}
	return errors.Join(errs...)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Marshal validates and encodes the manifest as indented JSON with a
// trailing newline. Output is deterministic (params are sorted by key).
func (m Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseManifest decodes and validates a manifest. Unknown fields are
// ignored so older readers survive additive changes; a schema_version
// newer than this build is rejected by Validate.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if len(b) > maxManifestBytes {
		return m, fmt.Errorf("manifest: %d bytes is over the %d-byte limit", len(b), maxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: not valid manifest JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Manifest{}, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}
