package modelapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// Open Inference Protocol v2 tensor datatypes this package sends and reads.
const (
	DatatypeFP32  = "FP32"
	DatatypeFP64  = "FP64"
	DatatypeINT64 = "INT64"
	DatatypeBYTES = "BYTES"
	DatatypeBOOL  = "BOOL"
)

// Tensor is one named input or output of an OIP v2 inference request or
// response. Data is the flat, row-major element list as raw JSON, so a
// reader can decode it according to Datatype; use the Floats, Ints,
// Strings and Bools accessors.
type Tensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// RequestedOutput names an output the client wants back.
type RequestedOutput struct {
	Name string `json:"name"`
}

// InferRequest is the body of POST /v2/models/{name}/infer.
type InferRequest struct {
	ID         string            `json:"id,omitempty"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	Inputs     []Tensor          `json:"inputs"`
	Outputs    []RequestedOutput `json:"outputs,omitempty"`
}

// InferResponse is the body of a successful infer call.
type InferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version,omitempty"`
	ID           string         `json:"id,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	Outputs      []Tensor       `json:"outputs"`
}

// TensorMetadata describes one input or output in model metadata; -1 in
// Shape is a variable dimension (the batch).
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the body of GET /v2/models/{name}[/versions/{v}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
	// Parameters carry model-card facts, e.g. a DP guarantee:
	// dp_epsilon, dp_delta (numbers) and dp_accounting (text).
	Parameters map[string]any `json:"parameters,omitempty"`
}

// OIPErrorBody is the OIP v2 error envelope: {"error": "message"}.
type OIPErrorBody struct {
	Error string `json:"error"`
}

// Reason classifies an *InferError so callers can count failures by kind.
type Reason string

// Reasons an inference call fails.
const (
	ReasonHTTPStatus    Reason = "http_status"    // non-2xx reply; see Status
	ReasonTransport     Reason = "transport"      // connection failed or broke mid-reply
	ReasonBodyTooLarge  Reason = "body_too_large" // reply exceeded the client's cap
	ReasonInvalidJSON   Reason = "invalid_json"   // reply is not the JSON OIP specifies
	ReasonErrorBody     Reason = "error_body"     // 2xx reply carrying {"error": ...}
	ReasonMissingOutput Reason = "missing_output" // the requested output is absent
	ReasonShape         Reason = "bad_shape"      // shape disagrees with rows or data length
	ReasonDatatype      Reason = "bad_datatype"   // output is not numeric
	ReasonNonFinite     Reason = "non_finite"     // NaN or ±Inf in an output
)

// InferError is a failed inference call, classified by Reason. Rows is
// the [start, end) row range of the batch that failed, when known.
type InferError struct {
	Reason Reason
	// Status is the HTTP status for ReasonHTTPStatus, else 0.
	Status int
	Msg    string
	Rows   [2]int
	Err    error // underlying transport error, if any
}

func (e *InferError) Error() string {
	s := "oip: " + string(e.Reason)
	if e.Rows != [2]int{} {
		s += fmt.Sprintf(" (rows %d..%d)", e.Rows[0], e.Rows[1]-1)
	}
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

func (e *InferError) Unwrap() error { return e.Err }

// Retryable reports whether repeating the same request may succeed: 5xx,
// 429 and 408 replies and transport failures. A 4xx says the request
// itself is wrong, and a malformed 2xx reply comes from a model that will
// answer the same way again.
func (e *InferError) Retryable() bool {
	switch e.Reason {
	case ReasonTransport:
		return true
	case ReasonHTTPStatus:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
	}
	return false
}

func inferErr(r Reason, format string, args ...any) *InferError {
	return &InferError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// maxDataDepth bounds the nesting accepted in a "data" array: some servers
// send [[p0, p1], ...] instead of the flat list the protocol specifies.
const maxDataDepth = 8

// ParseInferResponse validates a 2xx infer reply and returns output's
// values as one vector per row (class probabilities for a classifier, one
// value for a regressor). An empty output name takes the first output.
// The output's shape must be [rows] or [rows, k, ...] and hold rows×k
// finite numbers. Every failure is an *InferError; it never panics.
func ParseInferResponse(body []byte, output string, rows int) ([][]float64, error) {
	var resp struct {
		InferResponse
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		// Python's json module writes NaN and Infinity bare, which is not
		// JSON; name that instead of a generic syntax error.
		if bytes.Contains(body, []byte("NaN")) || bytes.Contains(body, []byte("Infinity")) {
			return nil, inferErr(ReasonNonFinite, "reply contains NaN or Infinity literals: %v", err)
		}
		return nil, inferErr(ReasonInvalidJSON, "%v", err)
	}
	if resp.Error != nil {
		return nil, inferErr(ReasonErrorBody, "%q", truncate(*resp.Error, 200))
	}
	if len(resp.Outputs) == 0 {
		return nil, inferErr(ReasonMissingOutput, "reply has no outputs")
	}
	var out *Tensor
	if output == "" {
		out = &resp.Outputs[0]
	} else {
		for i := range resp.Outputs {
			if resp.Outputs[i].Name == output {
				out = &resp.Outputs[i]
				break
			}
		}
		if out == nil {
			names := make([]string, 0, len(resp.Outputs))
			for _, o := range resp.Outputs {
				names = append(names, truncate(o.Name, 64))
			}
			return nil, inferErr(ReasonMissingOutput, "no output %q among %q", output, names)
		}
	}
	name := truncate(out.Name, 64)
	switch out.Datatype {
	case DatatypeFP32, DatatypeFP64, "FP16", DatatypeINT64, "INT32", "INT16", "INT8", "UINT8", "UINT16", "UINT32", "UINT64", DatatypeBOOL:
	default:
		return nil, inferErr(ReasonDatatype, "output %q has datatype %q; want a numeric datatype", name, truncate(out.Datatype, 32))
	}
	if len(out.Shape) == 0 || out.Shape[0] != int64(rows) {
		return nil, inferErr(ReasonShape, "output %q has shape %v; want [%d, ...] (one entry per input row)", name, out.Shape, rows)
	}
	width := int64(1)
	for _, d := range out.Shape[1:] {
		if d <= 0 || d > math.MaxInt32 || width > math.MaxInt32/d {
			return nil, inferErr(ReasonShape, "output %q has shape %v; dimensions must be positive and small", name, out.Shape)
		}
		width *= d
	}
	if int64(rows)*width > int64(len(body)) {
		// Each element needs at least two bytes of JSON: a hostile shape
		// cannot make us allocate more than the body could hold.
		return nil, inferErr(ReasonShape, "output %q has shape %v but the reply is only %d bytes", name, out.Shape, len(body))
	}
	flat, err := flatNumbers(out.Data)
	if err != nil {
		return nil, inferErr(ReasonInvalidJSON, "output %q data: %v", name, err)
	}
	if int64(len(flat)) != int64(rows)*width {
		return nil, inferErr(ReasonShape, "output %q has %d values for shape %v; want %d", name, len(flat), out.Shape, int64(rows)*width)
	}
	for i, v := range flat {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, inferErr(ReasonNonFinite, "output %q value %d is %v", name, i, v)
		}
	}
	res := make([][]float64, rows)
	w := int(width)
	for i := range res {
		res[i] = flat[i*w : (i+1)*w : (i+1)*w]
	}
	return res, nil
}

// flatNumbers decodes a JSON array of numbers or booleans, flattening
// nested arrays up to maxDataDepth.
func flatNumbers(raw json.RawMessage) ([]float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("missing")
	}
	var flat []float64
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	flat = flat[:0]
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		switch x := v.(type) {
		case float64:
			flat = append(flat, x)
		case bool:
			if x {
				flat = append(flat, 1)
			} else {
				flat = append(flat, 0)
			}
		case []any:
			if depth >= maxDataDepth {
				return fmt.Errorf("nested deeper than %d levels", maxDataDepth)
			}
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("element of JSON type %T is not a number", v)
		}
		return nil
	}
	if _, ok := v.([]any); !ok {
		return nil, errors.New("not an array")
	}
	if err := walk(v, 0); err != nil {
		return nil, err
	}
	return flat, nil
}

// appendTableRequest writes an infer request with one input per column of
// t, shape [rows, 1] and parameters content_type "pd" (the MLServer pandas
// codec layout, which KServe and Triton python backends read as well).
// Hand-written because encoding/json would box every value.
func appendTableRequest(b []byte, t Table, output string) []byte {
	n := t.Len()
	b = append(b, `{"parameters":{"content_type":"pd"},"inputs":[`...)
	for i, c := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"shape":[`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `,1],"datatype":"`...)
		b = append(b, c.Type.Datatype()...)
		b = append(b, `","data":[`...)
		switch c.Type {
		case Float64:
			for j, v := range c.Floats {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFloat(b, v, 64)
			}
		case Int64:
			for j, v := range c.Ints {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, v, 10)
			}
		case String:
			for j, v := range c.Strings {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, v)
			}
		case Bool:
			for j, v := range c.Bools {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendBool(b, v)
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	b = appendOutputs(b, output)
	return append(b, '}')
}

// appendTensorRequest writes an infer request with one FP32 input.
func appendTensorRequest(b []byte, input string, shape []int, data []float32, output string) []byte {
	b = append(b, `{"inputs":[{"name":`...)
	b = appendString(b, input)
	b = append(b, `,"shape":[`...)
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	b = append(b, `],"datatype":"FP32","data":[`...)
	for i, v := range data {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFloat(b, float64(v), 32)
	}
	b = append(b, "]}]"...)
	b = appendOutputs(b, output)
	return append(b, '}')
}

func appendOutputs(b []byte, output string) []byte {
	if output == "" {
		return b
	}
	b = append(b, `,"outputs":[{"name":`...)
	b = appendString(b, output)
	return append(b, "}]"...)
}

func appendFloat(b []byte, v float64, bits int) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bits)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
