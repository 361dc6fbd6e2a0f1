package modelapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandgate/sandgate/modelapi"
)

// echoServer answers each infer request with output "y" = [x, 2x] per row
// of the FP64 input "x", so the client's reassembly order is checkable.
func echoServer(t *testing.T, hook func(w http.ResponseWriter, req *modelapi.InferRequest) bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if r.URL.Path != "/v2/models/m/infer" || r.Method != http.MethodPost {
			http.Error(w, `{"error":"bad path"}`, 404)
			return
		}
		b, _ := io.ReadAll(r.Body)
		req, err := modelapi.DecodeInferRequest(b)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if hook != nil && hook(w, req) {
			return
		}
		tab, err := req.Table([]modelapi.TensorMetadata{{Name: "x", Datatype: "FP64"}, {Name: "s", Datatype: "BYTES"}, {Name: "k", Datatype: "INT64"}, {Name: "b", Datatype: "BOOL"}})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		x, _ := tab.Column("x")
		data := make([]float64, 0, 2*x.Len())
		for _, v := range x.Floats {
			data = append(data, v, 2*v)
		}
		d, _ := json.Marshal(data)
		fmt.Fprintf(w, `{"model_name":"m","outputs":[{"name":"other","shape":[1],"datatype":"FP32","data":[0]},{"name":"y","shape":[%d,2],"datatype":"FP64","data":%s}]}`, x.Len(), d)
	}))
	t.Cleanup(srv.Close)
	return srv, &peak
}

func table(n int) modelapi.Table {
	x := make([]float64, n)
	s := make([]string, n)
	k := make([]int64, n)
	b := make([]bool, n)
	for i := range x {
		x[i] = float64(i) + 0.25
		s[i] = fmt.Sprintf("r\"%d", i)
		k[i] = int64(-i)
		b[i] = i%2 == 0
	}
	return modelapi.Table{Columns: []modelapi.Column{
		modelapi.Float64Column("x", x), modelapi.StringColumn("s", s), modelapi.Int64Column("k", k), modelapi.BoolColumn("b", b),
	}}
}

func TestPredictTableBatchesInOrder(t *testing.T) {
	srv, peak := echoServer(t, func(w http.ResponseWriter, req *modelapi.InferRequest) bool {
		// Hold each request briefly so batches overlap.
		time.Sleep(2 * time.Millisecond)
		in, _ := req.Input("s")
		if in.Shape[1] != 1 || in.Datatype != "BYTES" || req.Parameters["content_type"] != "pd" {
			http.Error(w, "not pandas-codec layout", 400)
			return true
		}
		return false
	})
	c := &modelapi.OIPClient{BaseURL: srv.URL, Model: "m", BatchSize: 7, Concurrency: 3, Output: "y"}
	out, st, err := c.PredictTable(context.Background(), table(100))
	if err != nil {
		t.Fatal(err)
	}
	if st != (modelapi.Stats{Requests: 15, Rows: 100, Retries: 0}) {
		t.Errorf("stats %+v", st)
	}
	for i, r := range out {
		if len(r) != 2 || r[0] != float64(i)+0.25 || r[1] != 2*r[0] {
			t.Fatalf("row %d = %v", i, r)
		}
	}
	if p := peak.Load(); p < 2 || p > 3 {
		t.Errorf("peak concurrency %d, want 2..3", p)
	}
}

func TestPredictRetriesServerErrorsOnly(t *testing.T) {
	var calls atomic.Int64
	srv, _ := echoServer(t, func(w http.ResponseWriter, req *modelapi.InferRequest) bool {
		if calls.Add(1) <= 2 {
			w.WriteHeader(503)
			io.WriteString(w, `{"error":"warming up"}`)
			return true
		}
		return false
	})
	c := &modelapi.OIPClient{BaseURL: srv.URL, Model: "m", RetryBackoff: time.Millisecond, Output: "y"}
	out, st, err := c.PredictTable(context.Background(), table(5))
	if err != nil || len(out) != 5 || st.Retries != 2 || st.Requests != 3 {
		t.Fatalf("out %v stats %+v err %v", out, st, err)
	}

	calls.Store(0)
	c.MaxRetries = 1
	_, st, err = c.PredictTable(context.Background(), table(5))
	var ie *modelapi.InferError
	if !errors.As(err, &ie) || ie.Status != 503 || !ie.Retryable() || ie.Msg != "warming up" || st.Requests != 2 {
		t.Fatalf("err %v stats %+v", err, st)
	}

	// A 400 is the request's fault: no retry.
	bad := modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("x", []float64{1})}}
	calls.Store(10)
	_, st, err = c.PredictTable(context.Background(), bad)
	if !errors.As(err, &ie) || ie.Status != 400 || ie.Retryable() || st.Requests != 1 || !strings.Contains(ie.Msg, `input "s": missing`) {
		t.Fatalf("err %v stats %+v", err, st)
	}
}

func TestHostileReplies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		reason modelapi.Reason
	}{
		{"not json", `{"outputs":`, modelapi.ReasonInvalidJSON},
		{"python NaN", `{"outputs":[{"name":"y","shape":[2,1],"datatype":"FP64","data":[NaN,1]}]}`, modelapi.ReasonNonFinite},
		{"error envelope", `{"error":"model crashed"}`, modelapi.ReasonErrorBody},
		{"no outputs", `{"outputs":[]}`, modelapi.ReasonMissingOutput},
		{"wrong name", `{"outputs":[{"name":"z","shape":[2,1],"datatype":"FP64","data":[1,2]}]}`, modelapi.ReasonMissingOutput},
		{"short", `{"outputs":[{"name":"y","shape":[2,2],"datatype":"FP64","data":[1,2,3]}]}`, modelapi.ReasonShape},
		{"wrong rows", `{"outputs":[{"name":"y","shape":[3,1],"datatype":"FP64","data":[1,2,3]}]}`, modelapi.ReasonShape},
		{"huge shape", `{"outputs":[{"name":"y","shape":[2,2147483647],"datatype":"FP64","data":[1,2]}]}`, modelapi.ReasonShape},
		{"negative dim", `{"outputs":[{"name":"y","shape":[2,-1],"datatype":"FP64","data":[1,2]}]}`, modelapi.ReasonShape},
		{"strings", `{"outputs":[{"name":"y","shape":[2],"datatype":"BYTES","data":["a","b"]}]}`, modelapi.ReasonDatatype},
		{"string data", `{"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":["a","b"]}]}`, modelapi.ReasonInvalidJSON},
		{"too deep", `{"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[[[[[[[[[[1]]]]]]]]],2]}]}`, modelapi.ReasonInvalidJSON},
		{"too large", `{"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}],"pad":"` + strings.Repeat("x", 2000) + `"}`, modelapi.ReasonBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := &modelapi.OIPClient{BaseURL: srv.URL, Model: "m", Output: "y", MaxResponseBytes: 1024}
			out, st, err := c.PredictTable(context.Background(), table(2))
			var ie *modelapi.InferError
			if !errors.As(err, &ie) || ie.Reason != tc.reason || ie.Retryable() || out != nil {
				t.Fatalf("err = %v, want reason %s", err, tc.reason)
			}
			if ie.Rows != [2]int{0, 2} || st.Requests != 1 {
				t.Errorf("rows %v stats %+v", ie.Rows, st)
			}
		})
	}
}

func TestParseNestedAndRegressorShapes(t *testing.T) {
	got, err := modelapi.ParseInferResponse([]byte(`{"outputs":[{"name":"p","shape":[2,2],"datatype":"FP32","data":[[0.1,0.9],[0.8,0.2]]}]}`), "", 2)
	if err != nil || len(got) != 2 || got[1][0] != 0.8 {
		t.Fatalf("nested: %v %v", got, err)
	}
	got, err = modelapi.ParseInferResponse([]byte(`{"outputs":[{"name":"p","shape":[3],"datatype":"BOOL","data":[true,false,true]}]}`), "p", 3)
	if err != nil || len(got) != 3 || got[0][0] != 1 || got[1][0] != 0 {
		t.Fatalf("regressor: %v %v", got, err)
	}
}

func TestPredictTensorAndMetadata(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/models/img/versions/2":
			io.WriteString(w, `{"name":"img","versions":["2"],"platform":"x","inputs":[{"name":"image","datatype":"FP32","shape":[-1,2,2]}],"outputs":[]}`)
		case "/v2/models/img/versions/2/ready":
			w.WriteHeader(503)
		case "/v2/models/img/versions/2/infer":
			b, _ := io.ReadAll(r.Body)
			req, _ := modelapi.DecodeInferRequest(b)
			in, _ := req.Input("image")
			v, err := in.Floats()
			if err != nil || len(in.Shape) != 3 || in.Shape[1] != 2 {
				http.Error(w, fmt.Sprint(err), 400)
				return
			}
			n := in.Shape[0]
			sums := make([]float64, n)
			for i := range sums {
				for _, x := range v[i*4 : i*4+4] {
					sums[i] += x
				}
			}
			d, _ := json.Marshal(sums)
			fmt.Fprintf(w, `{"outputs":[{"name":"s","shape":[%d],"datatype":"FP64","data":%s}]}`, n, d)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	c := &modelapi.OIPClient{BaseURL: srv.URL, Model: "img", Version: "2", BatchSize: 2}
	data := []float32{1, 1, 1, 1, 0, 0, 0, 0.5, 2, 2, 2, 2}
	out, st, err := c.PredictTensor(context.Background(), "image", []int{3, 2, 2}, data)
	if err != nil || st.Requests != 2 || out[0][0] != 4 || out[1][0] != 0.5 || out[2][0] != 8 {
		t.Fatalf("out %v stats %+v err %v", out, st, err)
	}
	if _, _, err := c.PredictTensor(context.Background(), "image", []int{4, 2, 2}, data); err == nil {
		t.Error("shape/data mismatch accepted")
	}
	md, err := c.Metadata(context.Background())
	if err != nil || md.Inputs[0].Name != "image" {
		t.Errorf("metadata %+v %v", md, err)
	}
	if ok, err := c.Ready(context.Background()); ok || err != nil {
		t.Errorf("ready = %v %v, want false (503)", ok, err)
	}
}

func TestTableValidate(t *testing.T) {
	for _, tc := range []struct {
		t    modelapi.Table
		want string
	}{
		{modelapi.Table{}, "no columns"},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("a", []float64{1}), modelapi.Int64Column("b", []int64{1, 2})}}, `"b" has 2 rows`},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("a", []float64{1}), modelapi.BoolColumn("a", []bool{true})}}, `"a" appears twice`},
		{modelapi.Table{Columns: []modelapi.Column{modelapi.Float64Column("a", []float64{nan()})}}, `"a" row 0 is NaN`},
	} {
		if err := tc.t.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%v) = %v, want %q", tc.t.Names(), err, tc.want)
		}
	}
}

func nan() float64 { var z float64; return z / z }
