package modelapi_test

import (
	"errors"
	"testing"

	"github.com/sandgate/sandgate/modelapi"
)

// ParseInferResponse reads replies from the model under test, which is
// adversarial: any body must give rows of the promised shape or an
// *InferError, never a panic.
func FuzzParseInferResponse(f *testing.F) {
	for _, s := range []string{
		`{"outputs":[{"name":"y","shape":[2,2],"datatype":"FP64","data":[0.1,0.9,0.8,0.2]}]}`,
		`{"outputs":[{"name":"y","shape":[2],"datatype":"BOOL","data":[true,false]}]}`,
		`{"outputs":[{"name":"y","shape":[2,1],"datatype":"FP32","data":[[1],[2]]}]}`,
		`{"outputs":[{"name":"y","shape":[2,9223372036854775807],"datatype":"FP64","data":[]}]}`,
		`{"outputs":[{"name":"y","shape":[2],"datatype":"FP64","data":[NaN,1]}]}`,
		`{"error":"x"}`,
		`{"outputs":null}`,
		`[]`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, body []byte, rows uint8) {
		out, err := modelapi.ParseInferResponse(body, "y", int(rows))
		if err != nil {
			var ie *modelapi.InferError
			if !errors.As(err, &ie) || out != nil {
				t.Fatalf("err %v (%T), out %v", err, err, out)
			}
			return
		}
		if len(out) != int(rows) {
			t.Fatalf("%d rows, want %d", len(out), rows)
		}
		for _, r := range out {
			if len(r) != len(out[0]) {
				t.Fatalf("ragged rows")
			}
		}
	})
}
