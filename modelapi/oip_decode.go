package modelapi

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// InputError is a request a server cannot score, naming the offending
// input; an OIP server answers it with 400 and the message.
type InputError struct {
	Input string
	Msg   string
}

func (e *InputError) Error() string {
	if e.Input == "" {
		return e.Msg
	}
	return fmt.Sprintf("input %q: %s", e.Input, e.Msg)
}

// DecodeInferRequest parses an infer request body. Errors are
// *InputError.
func DecodeInferRequest(body []byte) (*InferRequest, error) {
	var r InferRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("request body is not an OIP v2 infer request: %v", err)}
	}
	if len(r.Inputs) == 0 {
		return nil, &InputError{Msg: "inputs is empty; send one input tensor per model input"}
	}
	for i, in := range r.Inputs {
		if in.Name == "" {
			return nil, &InputError{Msg: fmt.Sprintf("inputs[%d] has no name", i)}
		}
		if slices.ContainsFunc(r.Inputs[:i], func(t Tensor) bool { return t.Name == in.Name }) {
			return nil, &InputError{Input: in.Name, Msg: "appears twice in inputs"}
		}
	}
	return &r, nil
}

// Input returns the input named name.
func (r *InferRequest) Input(name string) (*Tensor, bool) {
	for i := range r.Inputs {
		if r.Inputs[i].Name == name {
			return &r.Inputs[i], true
		}
	}
	return nil, false
}

// Elements is the product of the shape, or an error for a negative or
// overflowing dimension.
func (t *Tensor) Elements() (int, error) {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return 0, &InputError{Input: t.Name, Msg: fmt.Sprintf("shape %v has a negative or too large dimension", t.Shape)}
		}
		n *= d
	}
	return int(n), nil
}

func (t *Tensor) checkLen(got int) error {
	want, err := t.Elements()
	if err != nil {
		return err
	}
	if got != want {
		return &InputError{Input: t.Name, Msg: fmt.Sprintf("data has %d elements but shape %v needs %d", got, t.Shape, want)}
	}
	return nil
}

func (t *Tensor) isNumeric() bool {
	switch t.Datatype {
	case DatatypeFP32, DatatypeFP64, "FP16", DatatypeINT64, "INT32", "INT16", "INT8", "UINT8", "UINT16", "UINT32", "UINT64":
		return true
	}
	return false
}

// Floats decodes a numeric tensor's data (flat or nested) as float64,
// rejecting a count that disagrees with the shape.
func (t *Tensor) Floats() ([]float64, error) {
	if !t.isNumeric() {
		return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("datatype %q is not numeric; send FP32, FP64 or INT64", t.Datatype)}
	}
	v, err := flatNumbers(t.Data)
	if err != nil {
		return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("data: %v", err)}
	}
	return v, t.checkLen(len(v))
}

// Ints decodes an integer tensor; FP data is accepted when every value is
// a whole number, since pandas turns an int column with a gap into floats.
func (t *Tensor) Ints() ([]int64, error) {
	f, err := t.Floats()
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(f))
	for i, x := range f {
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("element %d is %v; want a whole number", i, x)}
		}
		out[i] = int64(x)
	}
	return out, nil
}

// Strings decodes a BYTES tensor whose elements are JSON strings.
func (t *Tensor) Strings() ([]string, error) {
	if t.Datatype != DatatypeBYTES {
		return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("datatype %q; send strings as BYTES", t.Datatype)}
	}
	var v []string
	if err := json.Unmarshal(t.Data, &v); err != nil {
		var nested [][]string
		if json.Unmarshal(t.Data, &nested) != nil {
			return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("data is not a list of strings: %v", err)}
		}
		for _, row := range nested {
			v = append(v, row...)
		}
	}
	return v, t.checkLen(len(v))
}

// Bools decodes a BOOL tensor; 0/1 numbers are accepted too.
func (t *Tensor) Bools() ([]bool, error) {
	if t.Datatype != DatatypeBOOL && !t.isNumeric() {
		return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("datatype %q; send BOOL", t.Datatype)}
	}
	f, err := flatNumbers(t.Data)
	if err != nil {
		return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("data: %v", err)}
	}
	out := make([]bool, len(f))
	for i, x := range f {
		if x != 0 && x != 1 {
			return nil, &InputError{Input: t.Name, Msg: fmt.Sprintf("element %d is %v; want true/false or 0/1", i, x)}
		}
		out[i] = x == 1
	}
	return out, t.checkLen(len(out))
}

// Table gathers the inputs a tabular model declares into columns typed by
// schema (FP64 → Float64, INT64 → Int64, BYTES → String, BOOL → Bool).
// Each input must have shape [n] or [n, 1] with the same n; inputs the
// schema does not name are ignored, so a client may send a whole table.
// NaN cannot arrive (JSON has no literal for it).
func (r *InferRequest) Table(schema []TensorMetadata) (Table, error) {
	t := Table{Columns: make([]Column, 0, len(schema))}
	rows := -1
	for _, m := range schema {
		in, ok := r.Input(m.Name)
		if !ok {
			names := make([]string, len(schema))
			for i, s := range schema {
				names[i] = s.Name
			}
			return Table{}, &InputError{Input: m.Name, Msg: fmt.Sprintf("missing; this model needs inputs %q", names)}
		}
		if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) {
			return Table{}, &InputError{Input: m.Name, Msg: fmt.Sprintf("shape %v; send one column as [rows] or [rows, 1]", in.Shape)}
		}
		n := in.Shape[0]
		if rows >= 0 && n != int64(rows) {
			return Table{}, &InputError{Input: m.Name, Msg: fmt.Sprintf("has %d rows but input %q has %d; all inputs must have the same rows", n, t.Columns[0].Name, rows)}
		}
		c := Column{Name: m.Name}
		var err error
		switch m.Datatype {
		case DatatypeFP64, DatatypeFP32:
			c.Type = Float64
			c.Floats, err = in.Floats()
		case DatatypeINT64:
			c.Type = Int64
			c.Ints, err = in.Ints()
		case DatatypeBYTES:
			c.Type = String
			c.Strings, err = in.Strings()
		case DatatypeBOOL:
			c.Type = Bool
			c.Bools, err = in.Bools()
		default:
			return Table{}, fmt.Errorf("modelapi: schema input %q has unsupported datatype %q", m.Name, m.Datatype)
		}
		if err != nil {
			return Table{}, err
		}
		rows = int(n)
		t.Columns = append(t.Columns, c)
	}
	return t, nil
}
