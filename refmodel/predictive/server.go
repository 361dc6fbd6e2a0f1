package predictive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/sandgate/sandgate/modelapi"
)

// Model kinds served over OIP v2; each is also the model name in
// /v2/models/{name}, and the variant is its only version.
const (
	KindCredit      = "credit"
	KindCreditLimit = "credit-limit"
	KindImaging     = "imaging"
)

// Output tensor names.
const (
	OutputProbabilities = "probabilities" // FP64 [n, classes]
	OutputCreditLimit   = "credit_limit"  // FP64 [n, 1]
	InputImage          = "image"         // FP32 [n, 64, 64]
)

// DefaultMaxBodyBytes caps an infer request: 256 scans of 64×64 pixels
// as JSON text are about 8 MiB.
const DefaultMaxBodyBytes = 32 << 20

// Endpoint is one servable model: its OIP metadata and a function scoring
// a decoded request into one output vector per row. Predict returns a
// *modelapi.InputError for a request it cannot score.
type Endpoint struct {
	Meta    modelapi.ModelMetadata
	Predict func(req *modelapi.InferRequest) ([][]float64, error)
}

// Variants lists the variants of kind, nil for an unknown kind.
func Variants(kind string) []string {
	switch kind {
	case KindCredit:
		return []string{CreditFair, CreditBiased, CreditOverfit, CreditDP}
	case KindCreditLimit:
		return []string{LimitFair, LimitBiased}
	case KindImaging:
		return []string{ImagingBrittle, ImagingRobust}
	}
	return nil
}

// NewEndpoint trains the reference model kind/variant:
//
//	credit        fair | biased | overfit | dp → probabilities [p(deny), p(approve)]
//	credit-limit  fair | biased             → credit_limit [limit]
//	imaging       brittle | robust          → probabilities [healthy, benign, critical]
func NewEndpoint(kind, variant string) (*Endpoint, error) {
	switch kind {
	case KindCredit:
		if variant == CreditDP {
			c, rep, err := NewDPCreditScorer(context.Background())
			if err != nil {
				return nil, err
			}
			e, err := CreditEndpoint(variant, c, FairFeatures())
			if err != nil {
				return nil, err
			}
			// The guarantee is published with the model, as a model card
			// would, so an audit can check the claim against what it measures.
			e.Meta.Parameters = map[string]any{"dp_epsilon": rep.Epsilon, "dp_delta": rep.Delta,
				"dp_accounting": fmt.Sprintf("RDP, %s conversion, order %d; q=%g σ=%g steps=%d C=%g", rep.Conversion, rep.Order, rep.Q, rep.Sigma, rep.Steps, rep.ClipNorm)}
			return e, nil
		}
		c, err := NewCreditScorer(variant)
		if err != nil {
			return nil, err
		}
		feats := FairFeatures()
		if variant == CreditBiased {
			feats = AllFeatures()
		}
		return CreditEndpoint(variant, c, feats)
	case KindCreditLimit:
		r, err := NewCreditLimit(variant)
		if err != nil {
			return nil, err
		}
		feats := FairFeatures()
		if variant == LimitBiased {
			feats = AllFeatures()
		}
		schema, err := inputSchema(feats)
		if err != nil {
			return nil, err
		}
		return &Endpoint{
			Meta: meta(KindCreditLimit, variant, schema, modelapi.TensorMetadata{Name: OutputCreditLimit, Datatype: modelapi.DatatypeFP64, Shape: []int64{-1, 1}}),
			Predict: func(req *modelapi.InferRequest) ([][]float64, error) {
				t, err := req.Table(schema)
				if err != nil {
					return nil, err
				}
				v, err := r.Predict(t)
				if err != nil {
					return nil, err
				}
				out := make([][]float64, len(v))
				for i := range v {
					out[i] = v[i : i+1 : i+1]
				}
				return out, nil
			},
		}, nil
	case KindImaging:
		m, err := NewImagingClassifier(variant)
		if err != nil {
			return nil, err
		}
		return ImagingEndpoint(variant, m), nil
	}
	return nil, fmt.Errorf("unknown model kind %q; use %s, %s or %s", kind, KindCredit, KindCreditLimit, KindImaging)
}

// CreditEndpoint serves any Classifier reading features (a subset of
// CreditInputs) as the credit model, version variant — the hook for
// serving another recipe (e.g. DP-SGD) as a variant.
func CreditEndpoint(variant string, c Classifier, features []string) (*Endpoint, error) {
	schema, err := inputSchema(features)
	if err != nil {
		return nil, err
	}
	return &Endpoint{
		Meta: meta(KindCredit, variant, schema, modelapi.TensorMetadata{Name: OutputProbabilities, Datatype: modelapi.DatatypeFP64, Shape: []int64{-1, 2}}),
		Predict: func(req *modelapi.InferRequest) ([][]float64, error) {
			t, err := req.Table(schema)
			if err != nil {
				return nil, err
			}
			return c.Predict(t)
		},
	}, nil
}

// ImagingEndpoint serves m as the imaging model, version variant. It reads
// one FP32 input "image" of shape [n, 64, 64] (also [n, 4096] or
// [n, 1, 64, 64]) holding grey level / 255.
func ImagingEndpoint(variant string, m *ImagingClassifier) *Endpoint {
	in := modelapi.TensorMetadata{Name: InputImage, Datatype: modelapi.DatatypeFP32, Shape: []int64{-1, ImageSide, ImageSide}}
	return &Endpoint{
		Meta: meta(KindImaging, variant, []modelapi.TensorMetadata{in}, modelapi.TensorMetadata{Name: OutputProbabilities, Datatype: modelapi.DatatypeFP64, Shape: []int64{-1, 3}}),
		Predict: func(req *modelapi.InferRequest) ([][]float64, error) {
			t, ok := req.Input(InputImage)
			if !ok {
				return nil, &modelapi.InputError{Input: InputImage, Msg: fmt.Sprintf("missing; send the scans as FP32 [n, %d, %d]", ImageSide, ImageSide)}
			}
			per := int64(1)
			for _, d := range t.Shape[min(1, len(t.Shape)):] {
				per *= max(d, 0)
			}
			if len(t.Shape) < 2 || per != ImageSide*ImageSide {
				return nil, &modelapi.InputError{Input: InputImage, Msg: fmt.Sprintf("shape %v; want [n, %d, %d]", t.Shape, ImageSide, ImageSide)}
			}
			v, err := t.Floats()
			if err != nil {
				return nil, err
			}
			pix := make([]float32, len(v))
			for i, x := range v {
				pix[i] = float32(x)
			}
			out, err := m.Predict(pix)
			if err != nil {
				return nil, &modelapi.InputError{Input: InputImage, Msg: err.Error()}
			}
			return out, nil
		},
	}
}

func meta(name, version string, in []modelapi.TensorMetadata, out modelapi.TensorMetadata) modelapi.ModelMetadata {
	return modelapi.ModelMetadata{Name: name, Versions: []string{version}, Platform: "sandgate-refmodel",
		Inputs: in, Outputs: []modelapi.TensorMetadata{out}}
}

func inputSchema(features []string) ([]modelapi.TensorMetadata, error) {
	all, err := CreditInputs()
	if err != nil {
		return nil, err
	}
	out := make([]modelapi.TensorMetadata, 0, len(features))
	for _, f := range features {
		i := slices.IndexFunc(all, func(m modelapi.TensorMetadata) bool { return m.Name == f })
		if i < 0 {
			return nil, fmt.Errorf("feature %q is not a credit-applicant input", f)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// ServerOptions configure NewHandler; the zero value works.
type ServerOptions struct {
	// MaxBodyBytes caps a request body (0: DefaultMaxBodyBytes); larger
	// requests get 413.
	MaxBodyBytes int64
	// Logger receives panics at error level; nil discards.
	Logger *slog.Logger
}

// NewHandler serves e over Open Inference Protocol v2 REST:
// GET /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}]
// (metadata), …/ready, and POST …/infer. Errors are {"error": "..."}
// with 400 naming the offending input, 404 for another model or version,
// 413 for a body over the cap.
func NewHandler(e *Endpoint, opt ServerOptions) http.Handler {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{e: e, opt: opt}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}
	mux.HandleFunc("GET /v2/health/live", ok)
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	})
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "sandgate-refmodel", "version": "1", "extensions": []string{}})
	})
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("GET "+prefix, s.model(s.metadata))
		mux.HandleFunc("GET "+prefix+"/ready", s.model(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"name": e.Meta.Name, "ready": true})
		}))
		mux.HandleFunc("POST "+prefix+"/infer", s.model(s.infer))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s.recover(mux)
}

type server struct {
	e   *Endpoint
	opt ServerOptions
}

// recover turns a panic (a bug) into a 500 so one request cannot take the
// model down in the middle of a release.
func (s *server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opt.Logger.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// model answers 404 unless the path names this model (and version).
func (s *server) model(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("name"); name != s.e.Meta.Name {
			writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found; this server serves %q", truncate(name, 64), s.e.Meta.Name))
			return
		}
		if v := r.PathValue("version"); v != "" && !slices.Contains(s.e.Meta.Versions, v) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q; versions: %q", s.e.Meta.Name, truncate(v, 64), s.e.Meta.Versions))
			return
		}
		h(w, r)
	}
}

func (s *server) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Meta)
}

func (s *server) infer(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes; send smaller batches", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read request body: %v", err))
		return
	}
	req, err := modelapi.DecodeInferRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := s.e.Meta.Outputs[0]
	for _, o := range req.Outputs {
		if o.Name != out.Name {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("output %q: unknown; this model has output %q", truncate(o.Name, 64), out.Name))
			return
		}
	}
	rows, err := s.e.Predict(req)
	if err != nil {
		var ie *modelapi.InputError
		if errors.As(err, &ie) {
			writeError(w, http.StatusBadRequest, ie.Error())
			return
		}
		s.opt.Logger.Error("predict", "model", s.e.Meta.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "predict: "+err.Error())
		return
	}
	if err := checkRows(rows, int(out.Shape[len(out.Shape)-1])); err != nil {
		s.opt.Logger.Error("predict", "model", s.e.Meta.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "predict: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendResponse(nil, s.e.Meta, req.ID, out, rows))
}

// checkRows guards the reply against a model bug: a wrong width or a
// non-finite value would otherwise reach the client as a lying shape or
// invalid JSON.
func checkRows(rows [][]float64, width int) error {
	for i, r := range rows {
		if len(r) != width {
			return fmt.Errorf("row %d has %d outputs, metadata says %d", i, len(r), width)
		}
		for _, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("row %d has a non-finite output %v", i, v)
			}
		}
	}
	return nil
}

// appendResponse writes the infer reply by hand: encoding/json would box
// every probability.
func appendResponse(b []byte, m modelapi.ModelMetadata, id string, out modelapi.TensorMetadata, rows [][]float64) []byte {
	width := int(out.Shape[len(out.Shape)-1])
	b = append(b, `{"model_name":`...)
	b = appendJSON(b, m.Name)
	b = append(b, `,"model_version":`...)
	b = appendJSON(b, m.Versions[0])
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSON(b, id)
	}
	b = append(b, `,"outputs":[{"name":`...)
	b = appendJSON(b, out.Name)
	b = append(b, `,"datatype":"FP64","shape":[`...)
	b = strconv.AppendInt(b, int64(len(rows)), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(width), 10)
	b = append(b, `],"data":[`...)
	first := true
	for _, r := range rows {
		for _, v := range r {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	return append(b, "]}]}\n"...)
}

func appendJSON(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, modelapi.OIPErrorBody{Error: msg})
}
