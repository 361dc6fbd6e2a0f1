package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func exampleBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExamplesParse(t *testing.T) {
	for _, f := range []string{"../examples/release.yaml", "../examples/release-leaky.yaml"} {
		r, raw, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id := r.ReleaseID(Digest(raw))
		if !strings.HasPrefix(id, "release-harbor-assistant-") || len(id) > 63 {
			t.Errorf("%s: release id %q", f, id)
		}
		if r.Suites.Adversarial.Shards != 4 || r.Model.Sandbox.Limits.Memory != 512<<20 {
			t.Errorf("%s: defaults/units not applied: %+v", f, r.Suites.Adversarial)
		}
	}
}

func TestParseNamesTheField(t *testing.T) {
	good := string(exampleBytes(t))
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level field", good + "\nextra: 1\n", []string{"extra: unknown field"}},
		{"typo with suggestion", strings.Replace(good, "    command: [\"sandgate-refmodel\", \"--variant\", \"hardened\"", "    comand: [\"sandgate-refmodel\", \"--variant\", \"hardened\"", 1), []string{"model.sandbox.comand: unknown field; did you mean \"command\"?"}},
		{"wrong type", strings.Replace(good, "prompts: 600", "prompts: many", 1), []string{"suites.adversarial.prompts: expected an integer, got \"many\""}},
		{"bad duration", strings.Replace(good, "wall_clock: 1h", "wall_clock: soon", 1), []string{"model.sandbox.limits.wall_clock: expected a duration"}},
		{"bad size", strings.Replace(good, "memory: 512Mi", "memory: lots", 1), []string{"model.sandbox.limits.memory: expected a size"}},
		{"missing model", "apiVersion: sandgate.dev/v1\nkind: Release\n", []string{"model: is missing"}},
		{"list expected", strings.Replace(good, "  secrets: [\"HB-ESC-7Q4K-92XD\"]", "  secrets: HB-ESC", 1), []string{"model.secrets: expected a list"}},
		{"bad api version", strings.Replace(good, "apiVersion: sandgate.dev/v1", "apiVersion: v2", 1), []string{"apiVersion: is \"v2\""}},
		{"unknown gate metric", strings.Replace(good, "metric: adversarial.error_rate", "metric: adversarial.eror_rate", 1), []string{"gate: ", "adversarial.eror_rate"}},
		{"empty", "", []string{"empty"}},
		{"not yaml", "a: [", []string{"not valid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error is not ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestReleaseIDIsDeterministicAndValid(t *testing.T) {
	r := &Release{Model: Model{Name: "My.Model_X", Version: "1.2.3+build"}}
	id := r.ReleaseID(Digest([]byte("x")))
	if id != r.ReleaseID(Digest([]byte("x"))) || id == r.ReleaseID(Digest([]byte("y"))) {
		t.Fatal("release id must depend on the config digest only")
	}
	if strings.ContainsAny(id, "._+") {
		t.Errorf("id %q has characters outside [a-z0-9-]", id)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"512Mi": 512 << 20, "1Gi": 1 << 30, "64M": 64e6, "1000": 1000} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1Ti", "Mi"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(exampleBytesF(f))
	f.Add([]byte("model: {name: a}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err == nil && r == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error not marked invalid: %v", err)
		}
	})
}

func exampleBytesF(f *testing.F) []byte {
	b, err := os.ReadFile("../examples/release.yaml")
	if err != nil {
		f.Fatal(err)
	}
	return b
}
