package datasets_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets"
)

func validManifest() datasets.Manifest {
	m := datasets.Manifest{
		SchemaVersion:    datasets.ManifestSchemaVersion,
		Dataset:          "prompts",
		Generator:        datasets.PromptsGenerator,
		GeneratorVersion: datasets.PromptsGeneratorVersion,
		Seed:             1<<63 + 5, // above int64: must survive JSON exactly
		Params:           map[string]string{"max_chain": "2", "converter_rate": "0.5"},
	}
	m.AddFile("releases/r-1/datasets/prompts/part-00000.parquet", datasets.FileStats{Rows: 10, Bytes: 1234, SHA256: strings.Repeat("ab", 32)})
	m.AddFile("releases/r-1/datasets/prompts/part-00001.parquet", datasets.FileStats{Rows: 5, Bytes: 999, SHA256: strings.Repeat("0f", 32)})
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"schema_version": 1`, `"generator_version"`, `"sha256"`, `"seed": 9223372036854775813`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("JSON lacks %s:\n%s", field, b)
		}
	}
	got, err := datasets.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Marshal()
	if string(b) != string(b2) || got.Seed != m.Seed || got.Rows != 15 {
		t.Fatalf("round trip changed the manifest:\n%s\n%s", b, b2)
	}
}

func TestManifestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*datasets.Manifest)
		want   string
	}{
		{"no version", func(m *datasets.Manifest) { m.SchemaVersion = 0 }, "schema_version is missing"},
		{"future version", func(m *datasets.Manifest) { m.SchemaVersion = 99 }, "schema_version 99 is not supported"},
		{"bad dataset", func(m *datasets.Manifest) { m.Dataset = "My Data" }, "dataset:"},
		{"no generator", func(m *datasets.Manifest) { m.Generator = " " }, "generator is empty"},
		{"no generator version", func(m *datasets.Manifest) { m.GeneratorVersion = "" }, "generator_version is empty"},
		{"no files", func(m *datasets.Manifest) { m.Files = nil; m.Rows = 0 }, "files is empty"},
		{"row sum", func(m *datasets.Manifest) { m.Rows = 16 }, "rows is 16 but the files hold 15"},
		{"bad sha", func(m *datasets.Manifest) { m.Files[1].SHA256 = "ABC" }, "files[1].sha256"},
		{"upper sha", func(m *datasets.Manifest) { m.Files[0].SHA256 = strings.Repeat("AB", 32) }, "files[0].sha256"},
		{"dup key", func(m *datasets.Manifest) { m.Files[1].Key = m.Files[0].Key }, "duplicates files[0]"},
		{"abs key", func(m *datasets.Manifest) { m.Files[0].Key = "/etc/passwd" }, "files[0].key"},
		{"dotdot key", func(m *datasets.Manifest) { m.Files[0].Key = "releases/../x" }, "files[0].key"},
		{"empty key", func(m *datasets.Manifest) { m.Files[0].Key = "" }, "files[0].key is empty"},
		{"zero bytes", func(m *datasets.Manifest) { m.Files[0].Bytes = 0 }, "files[0].bytes"},
		{"negative rows", func(m *datasets.Manifest) { m.Files[0].Rows = -10; m.Rows = -5 }, "files[0].rows is -10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validManifest()
			tc.mutate(&m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			}
			if _, err := m.Marshal(); err == nil {
				t.Fatal("Marshal accepted an invalid manifest")
			}
		})
	}
	// All problems are reported at once.
	err := datasets.Manifest{}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 4 {
		t.Fatalf("zero manifest: want several errors, got %v", err)
	}
}

func TestParseManifestRejects(t *testing.T) {
	good, _ := validManifest().Marshal()
	for _, in := range []string{
		"", "null", "[]", "{", `{"schema_version": "1"}`,
		string(good) + "{}",
		strings.Replace(string(good), `"seed": 9223372036854775813`, `"seed": -1`, 1),
	} {
		if _, err := datasets.ParseManifest([]byte(in)); err == nil {
			t.Errorf("ParseManifest(%.50q) accepted", in)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	good, _ := validManifest().Marshal()
	f.Add(good)
	f.Add([]byte(`{"schema_version":1,"files":[{"key":"a","rows":1,"bytes":1,"sha256":""}]}`))
	f.Add([]byte(`{"rows": 9223372036854775807, "files": [{"rows": 9223372036854775807}, {"rows": 9223372036854775807}]}`))
	f.Add([]byte(`{"params": {"a": null}, "seed": 1e30}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := datasets.ParseManifest(b)
		if err != nil {
			return
		}
		// Whatever parses must validate, re-encode and parse to the same thing.
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed manifest does not re-marshal: %v", err)
		}
		m2, err := datasets.ParseManifest(out)
		if err != nil {
			t.Fatalf("re-marshalled manifest does not parse: %v", err)
		}
		j1, _ := json.Marshal(m)
		j2, _ := json.Marshal(m2)
		if string(j1) != string(j2) {
			t.Fatalf("round trip differs:\n%s\n%s", j1, j2)
		}
	})
}
