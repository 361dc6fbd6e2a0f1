package datasets

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"gonum.org/v1/gonum/mat"
)

// Tabular generator identity, recorded in manifests. Bump the version on any
// change that alters generated rows for the same spec and seed.
const (
	TabularGeneratorName    = "sandgate/datasets.Tabular"
	TabularGeneratorVersion = "1.0.0"
)

// Column types a tabular spec may declare.
const (
	ColumnInt      = "int"
	ColumnFloat    = "float"
	ColumnCategory = "category"
	ColumnBool     = "bool"
)

// Distribution kinds. Which kinds fit which column type is in kindTypes.
const (
	DistNormal      = "normal"      // mean, std
	DistLognormal   = "lognormal"   // mu, sigma (of the underlying normal)
	DistUniform     = "uniform"     // min, max
	DistIntUniform  = "int_uniform" // min, max inclusive
	DistPoisson     = "poisson"     // lambda
	DistCategorical = "categorical" // values, weights, ordinal
	DistBernoulli   = "bernoulli"   // p
	DistEmpirical   = "empirical"   // quantiles (what fit-from-sample writes)
)

// kindTypes lists the column types each distribution can feed, and the
// parameters it takes; both drive validation and its error messages.
var kindTypes = map[string]struct {
	types  []string
	params []string
}{
	DistNormal:      {[]string{ColumnInt, ColumnFloat}, []string{"mean", "std"}},
	DistLognormal:   {[]string{ColumnInt, ColumnFloat}, []string{"mu", "sigma"}},
	DistUniform:     {[]string{ColumnInt, ColumnFloat}, []string{"min", "max"}},
	DistIntUniform:  {[]string{ColumnInt}, []string{"min", "max"}},
	DistPoisson:     {[]string{ColumnInt}, []string{"lambda"}},
	DistCategorical: {[]string{ColumnCategory}, []string{"values", "weights", "ordinal"}},
	DistBernoulli:   {[]string{ColumnBool}, []string{"p"}},
	DistEmpirical:   {[]string{ColumnInt, ColumnFloat}, []string{"quantiles"}},
}

// Limits that keep a spec's compiled tables and rows small.
const (
	maxTabularColumns    = 256
	maxCategoryValues    = 4096
	maxPoissonLambda     = 1e4
	maxEmpiricalQuantile = 100001
	maxSpecBytes         = 4 << 20
)

// reservedColumns are written by the generator itself.
var reservedColumns = []string{"id", "twin_of", "flipped_attribute"}

// TabularSpec declares a synthetic table: its columns, their marginal
// distributions, a Gaussian copula over numeric and ordinal columns, and the
// protected attributes that get counterfactual twins. It is the YAML
// document users write (see schemas/credit-applicant.yaml).
type TabularSpec struct {
	// Name is the dataset name ([a-z0-9_-]).
	Name string `yaml:"name"`
	// Description is free text for humans.
	Description string `yaml:"description,omitempty"`
	// Seed is the default seed; callers may override it.
	Seed uint64 `yaml:"seed"`
	// Columns in output order.
	Columns []ColumnSpec `yaml:"columns"`
	// Correlations are latent (Gaussian copula) correlations between pairs
	// of numeric, bool or ordinal category columns; unlisted pairs are 0.
	Correlations []CorrelationSpec `yaml:"correlations,omitempty"`
	// Protected names category or bool columns; each row gets one twin per
	// alternative value of each protected attribute.
	Protected []string `yaml:"protected,omitempty"`
}

// ColumnSpec is one generated column.
type ColumnSpec struct {
	Name         string           `yaml:"name"`
	Type         string           `yaml:"type"`
	Distribution DistributionSpec `yaml:"distribution"`
	// Clip bounds int and float values after rounding.
	Clip *ClipSpec `yaml:"clip,omitempty"`
	// Round is the number of decimals kept for float columns (nil: all).
	Round *int `yaml:"round,omitempty"`
	// Description is free text for humans (documentation of the column).
	Description string `yaml:"description,omitempty"`
}

// ClipSpec bounds a numeric column; either side may be omitted.
type ClipSpec struct {
	Min *float64 `yaml:"min,omitempty"`
	Max *float64 `yaml:"max,omitempty"`
}

// DistributionSpec holds the parameters of every kind; validation rejects
// parameters that do not belong to Kind, so a typo cannot be silently
// ignored. Pointers distinguish "absent" from zero.
type DistributionSpec struct {
	Kind      string    `yaml:"kind"`
	Mean      *float64  `yaml:"mean,omitempty"`
	Std       *float64  `yaml:"std,omitempty"`
	Mu        *float64  `yaml:"mu,omitempty"`
	Sigma     *float64  `yaml:"sigma,omitempty"`
	Min       *float64  `yaml:"min,omitempty"`
	Max       *float64  `yaml:"max,omitempty"`
	Lambda    *float64  `yaml:"lambda,omitempty"`
	P         *float64  `yaml:"p,omitempty"`
	Values    []string  `yaml:"values,omitempty"`
	Weights   []float64 `yaml:"weights,omitempty"`
	Ordinal   bool      `yaml:"ordinal,omitempty"`
	Quantiles []float64 `yaml:"quantiles,omitempty,flow"`
}

// CorrelationSpec is one latent correlation between columns A and B.
type CorrelationSpec struct {
	A   string  `yaml:"a"`
	B   string  `yaml:"b"`
	Rho float64 `yaml:"rho"`
}

//go:embed schemas/*.yaml
var bundledSchemas embed.FS

// BundledTabularSpecs lists the names of the specs shipped with sandgate.
func BundledTabularSpecs() []string {
	entries, err := bundledSchemas.ReadDir("schemas")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	return names
}

// BundledTabularSpec parses a bundled spec by name ("credit-applicant").
func BundledTabularSpec(name string) (*TabularSpec, error) {
	b, err := bundledSchemas.ReadFile("schemas/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("datasets: no bundled tabular spec %q; bundled: %s", name, strings.Join(BundledTabularSpecs(), ", "))
	}
	return ParseTabularSpec(b)
}

// ParseTabularSpec decodes a YAML spec strictly (unknown fields are errors,
// so a misspelt key cannot silently fall back to a default) and validates it.
func ParseTabularSpec(b []byte) (*TabularSpec, error) {
	if len(b) > maxSpecBytes {
		return nil, fmt.Errorf("tabular spec: %d bytes is over the %d-byte limit", len(b), maxSpecBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s TabularSpec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("tabular spec: empty document; start with name:, columns:")
		}
		strict := fmt.Errorf("tabular spec: %s (the fields are listed in the datasets package doc)", yamlFieldNames.Replace(err.Error()))
		// Decode again leniently so the user also sees the semantic
		// problems (an unknown kind usually comes with unknown parameters).
		var loose TabularSpec
		if yaml.Unmarshal(b, &loose) == nil {
			if verr := loose.Validate(); verr != nil {
				return nil, errors.Join(strict, verr)
			}
		}
		return nil, strict
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("tabular spec: more than one YAML document; keep one spec per file")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// MarshalYAML-free encoding: Encode renders the spec as YAML that
// ParseTabularSpec reads back (fit-from-sample uses it to save a model).
func (s *TabularSpec) Encode() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("tabular spec: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("tabular spec: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Validate returns every problem found, each naming the field and the fix.
// It also proves the correlation matrix is positive semi-definite.
func (s *TabularSpec) Validate() error {
	_, err := compileTabular(s)
	return err
}

// yamlFieldNames turns Go type names in decoder errors into the places a
// user sees in the YAML.
var yamlFieldNames = strings.NewReplacer(
	"in type datasets.TabularSpec", "at the top level (name, description, seed, columns, correlations, protected)",
	"in type datasets.ColumnSpec", "in a column (name, type, distribution, clip, round, description)",
	"in type datasets.DistributionSpec", "in a distribution (kind, mean, std, mu, sigma, min, max, lambda, p, values, weights, ordinal, quantiles)",
	"in type datasets.ClipSpec", "in clip (min, max)",
	"in type datasets.CorrelationSpec", "in a correlation (a, b, rho)",
)

// specErrors collects problems so a user fixes a spec in one pass.
type specErrors []error

func (e *specErrors) add(format string, args ...any) {
	*e = append(*e, fmt.Errorf("tabular spec: "+format, args...))
}

func (e specErrors) err() error { return errors.Join(e...) }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// validateColumn checks one column; it returns false when the column is too
// broken to compile.
func validateColumn(errs *specErrors, i int, c ColumnSpec) bool {
	at := fmt.Sprintf("columns[%d] (%s)", i, c.Name)
	ok := true
	bad := func(format string, args ...any) {
		errs.add(at+": "+format, args...)
		ok = false
	}
	switch c.Type {
	case ColumnInt, ColumnFloat, ColumnCategory, ColumnBool:
	case "":
		bad("type is missing; use one of int, float, category, bool")
	default:
		bad("type %q is unknown; use one of int, float, category, bool", c.Type)
	}
	d := c.Distribution
	info, known := kindTypes[d.Kind]
	if !known {
		kinds := make([]string, 0, len(kindTypes))
		for k := range kindTypes {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		if d.Kind == "" {
			bad("distribution.kind is missing; use one of %s", strings.Join(kinds, ", "))
		} else {
			bad("distribution.kind %q is unknown; use one of %s", d.Kind, strings.Join(kinds, ", "))
		}
		return false
	}
	if c.Type != "" && !slices.Contains(info.types, c.Type) {
		bad("distribution %s cannot generate a %s column; it generates %s", d.Kind, c.Type, strings.Join(info.types, " or "))
	}
	// Every parameter that is set must belong to the kind.
	set := map[string]bool{
		"mean": d.Mean != nil, "std": d.Std != nil, "mu": d.Mu != nil, "sigma": d.Sigma != nil,
		"min": d.Min != nil, "max": d.Max != nil, "lambda": d.Lambda != nil, "p": d.P != nil,
		"values": d.Values != nil, "weights": d.Weights != nil, "ordinal": d.Ordinal, "quantiles": d.Quantiles != nil,
	}
	for _, p := range []string{"mean", "std", "mu", "sigma", "min", "max", "lambda", "p", "values", "weights", "ordinal", "quantiles"} {
		if set[p] && !slices.Contains(info.params, p) {
			bad("distribution.%s is not a parameter of %s; %s takes %s", p, d.Kind, d.Kind, strings.Join(info.params, ", "))
		}
	}
	need := func(name string, v *float64) (float64, bool) {
		if v == nil {
			bad("distribution.%s is required for %s", name, d.Kind)
			return 0, false
		}
		if !finite(*v) {
			bad("distribution.%s must be a finite number", name)
			return 0, false
		}
		return *v, true
	}
	switch d.Kind {
	case DistNormal:
		need("mean", d.Mean)
		if sd, ok := need("std", d.Std); ok && sd <= 0 {
			bad("distribution.std is %g; it must be > 0", sd)
		}
	case DistLognormal:
		if mu, ok := need("mu", d.Mu); ok && math.Abs(mu) > 700 {
			bad("distribution.mu %g overflows exp(); lognormal takes the mean of log(x), e.g. 10.8 for incomes near 50k", mu)
		}
		if sg, ok := need("sigma", d.Sigma); ok && (sg <= 0 || sg > 20) {
			bad("distribution.sigma is %g; it must be in (0, 20]", sg)
		}
	case DistUniform, DistIntUniform:
		lo, ok1 := need("min", d.Min)
		hi, ok2 := need("max", d.Max)
		if ok1 && ok2 && !(lo < hi || d.Kind == DistIntUniform && lo == hi) {
			bad("distribution.min %g must be below distribution.max %g", lo, hi)
		}
		if d.Kind == DistIntUniform && ok1 && ok2 && (lo != math.Trunc(lo) || hi != math.Trunc(hi) || math.Abs(lo) > 1<<53 || math.Abs(hi) > 1<<53) {
			bad("int_uniform bounds must be integers within ±2^53 (got %g, %g)", lo, hi)
		}
	case DistPoisson:
		if l, ok := need("lambda", d.Lambda); ok && (l <= 0 || l > maxPoissonLambda) {
			bad("distribution.lambda is %g; it must be in (0, %g] (use normal for larger counts)", l, maxPoissonLambda)
		}
	case DistBernoulli:
		if p, ok := need("p", d.P); ok && (p < 0 || p > 1) {
			bad("distribution.p is %g; it must be a probability in [0, 1]", p)
		}
	case DistCategorical:
		switch {
		case len(d.Values) == 0:
			bad("distribution.values is empty; list the categories, e.g. [female, male]")
		case len(d.Values) > maxCategoryValues:
			bad("distribution.values has %d categories; the limit is %d", len(d.Values), maxCategoryValues)
		}
		seen := map[string]bool{}
		for _, v := range d.Values {
			if seen[v] {
				bad("distribution.values lists %q twice", v)
			}
			seen[v] = true
		}
		if d.Weights != nil && len(d.Weights) != len(d.Values) {
			bad("distribution.weights has %d entries for %d values; give one weight per value or omit weights for equal ones", len(d.Weights), len(d.Values))
		}
		var sum float64
		for j, w := range d.Weights {
			if !finite(w) || w < 0 {
				bad("distribution.weights[%d] is %g; weights must be finite and >= 0", j, w)
			}
			sum += w
		}
		if d.Weights != nil && !(sum > 0) {
			bad("distribution.weights sum to %g; at least one must be > 0 (they are normalised)", sum)
		}
	case DistEmpirical:
		q := d.Quantiles
		switch {
		case len(q) < 2:
			bad("distribution.quantiles needs at least 2 values (equally spaced probabilities from 0 to 1)")
		case len(q) > maxEmpiricalQuantile:
			bad("distribution.quantiles has %d values; the limit is %d", len(q), maxEmpiricalQuantile)
		}
		for j, v := range q {
			if !finite(v) {
				bad("distribution.quantiles[%d] is not finite", j)
				break
			}
			if j > 0 && v < q[j-1] {
				bad("distribution.quantiles must be non-decreasing; [%d]=%g < [%d]=%g", j, v, j-1, q[j-1])
				break
			}
		}
	}
	if c.Clip != nil {
		if c.Type != ColumnInt && c.Type != ColumnFloat {
			bad("clip applies to int and float columns only")
		}
		if (c.Clip.Min != nil && !finite(*c.Clip.Min)) || (c.Clip.Max != nil && !finite(*c.Clip.Max)) {
			bad("clip bounds must be finite numbers")
		} else if c.Clip.Min != nil && c.Clip.Max != nil && *c.Clip.Min > *c.Clip.Max {
			bad("clip.min %g is above clip.max %g", *c.Clip.Min, *c.Clip.Max)
		}
	}
	if c.Round != nil {
		if c.Type != ColumnFloat {
			bad("round applies to float columns only (int columns are always whole numbers)")
		} else if *c.Round < 0 || *c.Round > 9 {
			bad("round is %d; use 0..9 decimals", *c.Round)
		}
	}
	return ok
}

// ordinalCapable reports whether a column has a natural order, so it can
// take part in the Gaussian copula.
func ordinalCapable(c ColumnSpec) bool {
	switch c.Type {
	case ColumnInt, ColumnFloat, ColumnBool:
		return true
	case ColumnCategory:
		// Two categories are always orderable (like a bool); more need the
		// user to assert that the listed order means something.
		return c.Distribution.Ordinal || len(c.Distribution.Values) == 2
	}
	return false
}

// correlationMatrix builds the latent correlation matrix over the columns
// named in correlations (in column order) and factorises it.
func correlationMatrix(errs *specErrors, s *TabularSpec, index map[string]int) (latent []int, chol *mat.TriDense) {
	latentOf := map[int]int{}
	type pair struct{ a, b int }
	rhos := map[pair]float64{}
	for i, c := range s.Correlations {
		at := fmt.Sprintf("correlations[%d] (%s~%s)", i, c.A, c.B)
		ia, okA := index[c.A]
		ib, okB := index[c.B]
		switch {
		case !okA || !okB:
			missing := c.A
			if okA {
				missing = c.B
			}
			errs.add("%s: no column named %q; correlations refer to columns by name", at, missing)
			continue
		case ia == ib:
			errs.add("%s: a column is perfectly correlated with itself; remove this entry", at)
			continue
		case !finite(c.Rho) || c.Rho < -1 || c.Rho > 1:
			errs.add("%s: rho %g must be in [-1, 1]", at, c.Rho)
			continue
		}
		okPair := true
		for _, j := range []int{ia, ib} {
			if !ordinalCapable(s.Columns[j]) {
				errs.add("%s: column %q is an unordered category with %d values; set distribution.ordinal: true if the listed order is meaningful, or drop the correlation",
					at, s.Columns[j].Name, len(s.Columns[j].Distribution.Values))
				okPair = false
			}
		}
		if !okPair {
			continue
		}
		p := pair{min(ia, ib), max(ia, ib)}
		if _, dup := rhos[p]; dup {
			errs.add("%s: this pair is listed twice; keep one entry", at)
			continue
		}
		rhos[p] = c.Rho
		latentOf[ia], latentOf[ib] = 0, 0
	}
	if len(rhos) == 0 {
		return nil, nil
	}
	for j := range s.Columns {
		if _, ok := latentOf[j]; ok {
			latentOf[j] = len(latent)
			latent = append(latent, j)
		}
	}
	k := len(latent)
	r := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		r.SetSym(i, i, 1)
	}
	for p, rho := range rhos {
		r.SetSym(latentOf[p.a], latentOf[p.b], rho)
	}
	chol, ok := choleskyPSD(r)
	if ok {
		return latent, chol
	}
	// Name the culprits: the pairs whose removal alone makes it valid, and
	// the most negative eigenvalue, so the user knows what to change.
	var culprits []string
	for p, rho := range rhos {
		t := mat.NewSymDense(k, nil)
		t.CopySym(r)
		t.SetSym(latentOf[p.a], latentOf[p.b], 0)
		if _, ok := choleskyPSD(t); ok {
			culprits = append(culprits, fmt.Sprintf("%s~%s (rho %g)", s.Columns[p.a].Name, s.Columns[p.b].Name, rho))
		}
	}
	slices.Sort(culprits)
	var eig mat.EigenSym
	minEig := math.NaN()
	if eig.Factorize(r, false) {
		minEig = slices.Min(eig.Values(nil))
	}
	names := make([]string, k)
	for i, j := range latent {
		names[i] = s.Columns[j].Name
	}
	msg := fmt.Sprintf("correlations: the correlation matrix over [%s] is not positive semi-definite (smallest eigenvalue %.4g), so no joint distribution has these correlations", strings.Join(names, ", "), minEig)
	if len(culprits) > 0 {
		msg += fmt.Sprintf("; the conflict goes away by lowering or removing any one of: %s", strings.Join(culprits, ", "))
	}
	msg += "; fix: make the correlations consistent (e.g. a~b 0.9 and b~c 0.9 imply a~c >= 0.62)"
	errs.add("%s", msg)
	return nil, nil
}

// choleskyPSD factorises a correlation matrix, accepting positive
// semi-definite (singular) ones by adding a tiny ridge: rho = ±1 is a legal,
// if degenerate, correlation.
func choleskyPSD(r *mat.SymDense) (*mat.TriDense, bool) {
	var c mat.Cholesky
	if !c.Factorize(r) {
		k, _ := r.Dims()
		ridge := mat.NewSymDense(k, nil)
		ridge.CopySym(r)
		for i := 0; i < k; i++ {
			ridge.SetSym(i, i, 1+1e-9)
		}
		if !c.Factorize(ridge) {
			return nil, false
		}
	}
	var l mat.TriDense
	c.LTo(&l)
	return &l, true
}
