package predictive

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// Classifier is a trained binary credit classifier. Predict returns one
// [p(deny), p(approve)] pair per row of t (class 1 = approve, the
// favourable outcome fairness metrics count), or an error naming the
// column that cannot be read. It is an interface so other training
// recipes (e.g. a DP-SGD logistic regression) can be served as variants.
type Classifier interface {
	Predict(t modelapi.Table) ([][]float64, error)
}

// Method selects a training recipe.
type Method string

// Training recipes.
const (
	// Logistic is L2-regularised logistic regression fitted by Newton's
	// method on standardised features.
	Logistic Method = "logistic"
	// Kernel is a narrow-RBF kernel vote: it memorises every training row
	// (a near-1-NN model) — the overfit recipe membership inference is
	// meant to catch.
	Kernel Method = "kernel"
)

// Options configure Train. Zero fields take the documented defaults.
type Options struct {
	Method Method // "" means Logistic
	// Features are the credit-applicant columns the model reads; nil means
	// FairFeatures().
	Features []string
	// L2 is the ridge penalty of Logistic (0: 1.0; negative: none).
	L2 float64
	// Gamma is the RBF width of Kernel on standardised features
	// (0: 4.0): larger memorises harder.
	Gamma float64
	// Prior is the pseudo-count weight of the base rate in Kernel's vote
	// (0: 0.02).
	Prior float64
}

// FairFeatures are the credit-applicant inputs except the protected
// attributes (sex, race, foreign_worker) and the label.
func FairFeatures() []string {
	return []string{"age", "marital_status", "education", "annual_income", "employment_years", "credit_score",
		"debt_to_income", "open_credit_lines", "loan_amount", "loan_term_years", "home_owner"}
}

// AllFeatures are FairFeatures plus the protected attributes.
func AllFeatures() []string { return append(FairFeatures(), ProtectedColumns()...) }

// Train fits a classifier to labels (0 deny, 1 approve) of the rows in t,
// reading opt.Features. Deterministic: the same rows, labels and options
// give the same model. Use it to train shadow models on other subsets.
func Train(t modelapi.Table, labels []int, opt Options) (Classifier, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if len(labels) != t.Len() {
		return nil, fmt.Errorf("train: %d labels for %d rows; pass one label per row", len(labels), t.Len())
	}
	pos := 0
	for i, y := range labels {
		if y != 0 && y != 1 {
			return nil, fmt.Errorf("train: labels[%d] is %d; labels must be 0 (deny) or 1 (approve)", i, y)
		}
		pos += y
	}
	if pos == 0 || pos == len(labels) {
		return nil, fmt.Errorf("train: all %d labels are %d; need both classes", len(labels), labels[0])
	}
	feats := opt.Features
	if feats == nil {
		feats = FairFeatures()
	}
	enc, err := newEncoder(feats)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	x, err := enc.fit(t)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	switch opt.Method {
	case "", Logistic:
		l2 := opt.L2
		if l2 == 0 {
			l2 = 1
		}
		w, err := fitLogistic(x, enc.dim, labels, max(l2, 0))
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		return &logisticModel{enc: enc, w: w}, nil
	case Kernel:
		g, prior := opt.Gamma, opt.Prior
		if g == 0 {
			g = 4
		}
		if prior == 0 {
			prior = 0.02
		}
		if g < 0 || prior < 0 {
			return nil, fmt.Errorf("train: Gamma %v and Prior %v must be positive", g, prior)
		}
		return &kernelModel{enc: enc, x: x, y: slices.Clone(labels), gamma: g, prior: prior,
			base: float64(pos) / float64(len(labels))}, nil
	}
	return nil, fmt.Errorf("train: unknown Method %q; use %q or %q", opt.Method, Logistic, Kernel)
}

// encoding of one input column into features.
type encoding int

const (
	encNumeric encoding = iota
	encLog              // log of a positive amount: incomes and loans are lognormal
	encOneHot
	encOrdinal
)

type featureSpec struct {
	name  string
	enc   encoding
	typ   modelapi.ColumnType
	vocab []string
}

// encoder turns table columns into standardised feature vectors; the mean
// and scale are fitted on the training rows and frozen into the model.
type encoder struct {
	feats       []featureSpec
	dim         int
	mean, scale []float64
}

func newEncoder(names []string) (*encoder, error) {
	spec, err := datasets.BundledTabularSpec(CreditSpecName)
	if err != nil {
		return nil, err
	}
	e := &encoder{}
	for _, n := range names {
		i := slices.IndexFunc(spec.Columns, func(c datasets.ColumnSpec) bool { return c.Name == n })
		if i < 0 || n == LabelColumn {
			return nil, fmt.Errorf("feature %q is not a credit-applicant input column", n)
		}
		c := spec.Columns[i]
		f := featureSpec{name: n}
		switch {
		case c.Type == datasets.ColumnCategory && c.Distribution.Ordinal:
			f.enc, f.typ, f.vocab = encOrdinal, modelapi.String, categoriesOf(spec, n)
			e.dim++
		case c.Type == datasets.ColumnCategory:
			f.enc, f.typ, f.vocab = encOneHot, modelapi.String, categoriesOf(spec, n)
			e.dim += len(f.vocab)
		case c.Type == datasets.ColumnBool:
			f.enc, f.typ = encNumeric, modelapi.Bool
			e.dim++
		case c.Distribution.Kind == datasets.DistLognormal:
			f.enc, f.typ = encLog, modelapi.Float64
			e.dim++
		default:
			f.enc, f.typ = encNumeric, modelapi.Float64
			if c.Type == datasets.ColumnInt {
				f.typ = modelapi.Int64
			}
			e.dim++
		}
		e.feats = append(e.feats, f)
	}
	return e, nil
}

// raw encodes t into row-major n×dim unstandardised features.
func (e *encoder) raw(t modelapi.Table) ([]float64, error) {
	n := t.Len()
	x := make([]float64, n*e.dim)
	off := 0
	for _, f := range e.feats {
		c, ok := t.Column(f.name)
		if !ok {
			return nil, &modelapi.InputError{Input: f.name, Msg: "missing; the model reads this column"}
		}
		if c.Len() != n {
			return nil, &modelapi.InputError{Input: f.name, Msg: fmt.Sprintf("has %d rows, want %d", c.Len(), n)}
		}
		numeric := c.Type == modelapi.Float64 || c.Type == modelapi.Int64 || c.Type == modelapi.Bool
		if (f.typ == modelapi.String) != (c.Type == modelapi.String) || (f.typ != modelapi.String && !numeric) {
			return nil, &modelapi.InputError{Input: f.name, Msg: fmt.Sprintf("is %v; want %v", c.Type, f.typ)}
		}
		switch f.enc {
		case encNumeric, encLog:
			for i := range n {
				v := c.Float(i)
				if f.enc == encLog {
					if v <= 0 {
						return nil, &modelapi.InputError{Input: f.name, Msg: fmt.Sprintf("row %d is %v; want a positive amount", i, v)}
					}
					v = math.Log(v)
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, &modelapi.InputError{Input: f.name, Msg: fmt.Sprintf("row %d is %v; want a finite number", i, v)}
				}
				x[i*e.dim+off] = v
			}
			off++
		case encOrdinal, encOneHot:
			for i := range n {
				k := slices.Index(f.vocab, c.Strings[i])
				if k < 0 {
					return nil, &modelapi.InputError{Input: f.name,
						Msg: fmt.Sprintf("row %d is %q; want one of %q", i, truncate(c.Strings[i], 40), f.vocab)}
				}
				if f.enc == encOrdinal {
					x[i*e.dim+off] = float64(k)
				} else {
					x[i*e.dim+off+k] = 1
				}
			}
			if f.enc == encOrdinal {
				off++
			} else {
				off += len(f.vocab)
			}
		}
	}
	return x, nil
}

// fit encodes the training rows and freezes the standardisation.
func (e *encoder) fit(t modelapi.Table) ([]float64, error) {
	x, err := e.raw(t)
	if err != nil {
		return nil, err
	}
	n := t.Len()
	e.mean, e.scale = make([]float64, e.dim), make([]float64, e.dim)
	for j := range e.dim {
		var s, ss float64
		for i := range n {
			s += x[i*e.dim+j]
		}
		m := s / float64(n)
		for i := range n {
			d := x[i*e.dim+j] - m
			ss += d * d
		}
		e.mean[j] = m
		// A constant column (a category absent from the sample) keeps
		// scale 1 rather than dividing by zero.
		e.scale[j] = 1
		if sd := math.Sqrt(ss / float64(n)); sd > 1e-12 {
			e.scale[j] = sd
		}
	}
	e.standardise(x)
	return x, nil
}

func (e *encoder) standardise(x []float64) {
	for i := 0; i < len(x); i += e.dim {
		for j := range e.dim {
			x[i+j] = (x[i+j] - e.mean[j]) / e.scale[j]
		}
	}
}

func (e *encoder) encode(t modelapi.Table) ([]float64, error) {
	x, err := e.raw(t)
	if err != nil {
		return nil, err
	}
	e.standardise(x)
	return x, nil
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	ez := math.Exp(z)
	return ez / (1 + ez)
}

// fitLogistic runs Newton's method on the L2-penalised log-loss; the last
// weight is the unpenalised intercept.
func fitLogistic(x []float64, dim int, y []int, l2 float64) ([]float64, error) {
	n := len(y)
	d := dim + 1
	w := make([]float64, d)
	row := func(i int) []float64 { return x[i*dim : (i+1)*dim] }
	for iter := 0; iter < 50; iter++ {
		h := mat.NewSymDense(d, nil)
		g := make([]float64, d)
		hd := make([]float64, d*d)
		for i := range n {
			xi := row(i)
			z := w[dim]
			for j, v := range xi {
				z += w[j] * v
			}
			p := sigmoid(z)
			r := p - float64(y[i])
			s := max(p*(1-p), 1e-9)
			for j := range d {
				vj := 1.0
				if j < dim {
					vj = xi[j]
				}
				g[j] += r * vj
				for k := j; k < d; k++ {
					vk := 1.0
					if k < dim {
						vk = xi[k]
					}
					hd[j*d+k] += s * vj * vk
				}
			}
		}
		for j := range d {
			for k := j; k < d; k++ {
				h.SetSym(j, k, hd[j*d+k])
			}
			if j < dim {
				g[j] += l2 * w[j]
				h.SetSym(j, j, h.At(j, j)+l2)
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(h) {
			return nil, errors.New("logistic regression: Hessian is singular; add L2 regularisation")
		}
		var step mat.VecDense
		if err := ch.SolveVecTo(&step, mat.NewVecDense(d, g)); err != nil {
			return nil, fmt.Errorf("logistic regression: Newton step: %w", err)
		}
		var moved float64
		for j := range d {
			w[j] -= step.AtVec(j)
			moved = max(moved, math.Abs(step.AtVec(j)))
		}
		if moved < 1e-8 {
			break
		}
	}
	for _, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("logistic regression diverged (separable data?); add L2 regularisation")
		}
	}
	return w, nil
}

type logisticModel struct {
	enc *encoder
	w   []float64
}

func (m *logisticModel) Predict(t modelapi.Table) ([][]float64, error) {
	x, err := m.enc.encode(t)
	if err != nil {
		return nil, err
	}
	dim := m.enc.dim
	out := make([][]float64, t.Len())
	for i := range out {
		z := m.w[dim]
		for j, v := range x[i*dim : (i+1)*dim] {
			z += m.w[j] * v
		}
		p := sigmoid(z)
		out[i] = []float64{1 - p, p}
	}
	return out, nil
}

type kernelModel struct {
	enc          *encoder
	x            []float64
	y            []int
	gamma, prior float64
	base         float64
}

// Predict votes the training labels with weights exp(-gamma·‖x−xᵢ‖²/dim),
// plus Prior pseudo-rows at the base rate: a training row sees its own
// label with weight 1, a new row sees mostly the base rate.
func (m *kernelModel) Predict(t modelapi.Table) ([][]float64, error) {
	x, err := m.enc.encode(t)
	if err != nil {
		return nil, err
	}
	dim := m.enc.dim
	out := make([][]float64, t.Len())
	for i := range out {
		q := x[i*dim : (i+1)*dim]
		num, den := m.prior*m.base, m.prior
		for k, yk := range m.y {
			var d2 float64
			for j, v := range m.x[k*dim : (k+1)*dim] {
				diff := v - q[j]
				d2 += diff * diff
			}
			wk := math.Exp(-m.gamma * d2 / float64(dim))
			num += wk * float64(yk)
			den += wk
		}
		p := num / den
		out[i] = []float64{1 - p, p}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
