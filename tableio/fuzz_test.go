package tableio_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/sandgate/sandgate/tableio"
)

// Read must turn any byte string into a table or an error, never a panic:
// the files come from users and from the model's side of a release.
func FuzzRead(f *testing.F) {
	var seed bytes.Buffer
	r := writeRows(&testing.T{}, []badRow{{X: 1, S: "a", I: 3, B: true}, {X: 2, S: "b", I: -4}})
	_, _ = seed.ReadFrom(r)
	f.Add(seed.Bytes())
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := tableio.Read(context.Background(), bytes.NewReader(b), int64(len(b)), "fuzz.parquet", tableio.Options{Columns: []string{"s", "i", "b", "x"}})
		if err != nil {
			return
		}
		if err := tab.Validate(); err != nil {
			t.Fatalf("Read returned an invalid table: %v", err)
		}
	})
}
