package datasets

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseTabularSpec: any input either fails with an error or yields a
// spec that compiles, generates rows and survives Encode/Parse. Never a
// panic.
func FuzzParseTabularSpec(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "tabular", "*.yaml"))
	paths = append(paths, filepath.Join("schemas", "credit-applicant.yaml"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\ncolumns:\n  - {name: a, type: int, distribution: {kind: poisson, lambda: 0.5}}\n  - {name: b, type: bool, distribution: {kind: bernoulli, p: 1}}\ncorrelations: [{a: a, b: b, rho: -1}]\nprotected: [b]\n"))
	f.Add([]byte("name: x\ncolumns:\n  - {name: q, type: float, distribution: {kind: empirical, quantiles: [1, 1, 2]}, round: 0, clip: {max: 1.5}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := ParseTabularSpec(b)
		if err != nil {
			return
		}
		g, err := NewTabular(spec, TabularOptions{})
		if err != nil {
			t.Fatalf("parsed spec does not compile: %v", err)
		}
		n := 0
		for r := range g.Rows(1, 0, 3) {
			if len(r.Values) != len(spec.Columns) {
				t.Fatalf("row has %d values for %d columns", len(r.Values), len(spec.Columns))
			}
			n++
		}
		if int64(n) != 3*g.RowsPerOriginal() {
			t.Fatalf("%d rows, want %d", n, 3*g.RowsPerOriginal())
		}
		enc, err := spec.Encode()
		if err != nil {
			t.Fatalf("encode a valid spec: %v", err)
		}
		if _, err := ParseTabularSpec(enc); err != nil {
			t.Fatalf("re-parse encoded spec: %v\n%s", err, enc)
		}
	})
}
