package predictive

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// CreditSpecName is the bundled tabular spec every credit model reads.
const CreditSpecName = "credit-applicant"

// LabelColumn is the ground-truth column of credit-applicant; it is not a
// model input.
const LabelColumn = "defaulted"

// ProtectedColumns are the credit-applicant spec's protected attributes.
func ProtectedColumns() []string { return []string{"sex", "race", "foreign_worker"} }

// RowRange names a reproducible slice of generated credit-applicant rows:
// original rows Offset..Offset+N-1 of Seed, with their counterfactual
// twins when Twins is set. Loading the same range always yields the same
// rows, which is how a privacy audit re-derives a model's training set.
type RowRange struct {
	Seed   uint64
	Offset int64
	N      int64
	Twins  bool
}

// CreditData is a loaded RowRange: the model inputs as a Table (every
// spec column except defaulted, in spec order) plus row identity and the
// ground truth.
type CreditData struct {
	Table modelapi.Table
	// ID, TwinOf and Flipped are the generator's row identity (TwinOf is
	// -1 and Flipped "" for original rows).
	ID        []int64
	TwinOf    []int64
	Flipped   []string
	Defaulted []bool
}

// Len is the number of rows.
func (d CreditData) Len() int { return len(d.ID) }

// CreditInputs is the OIP input schema shared by every credit model (the
// credit scorer and the credit-limit regressor, all variants): one input
// per credit-applicant column except defaulted, shape [-1, 1], with
// int → INT64, float → FP64, category → BYTES, bool → BOOL. Variants read
// different subsets but accept the same request, so one harness drives all.
func CreditInputs() ([]modelapi.TensorMetadata, error) {
	spec, err := datasets.BundledTabularSpec(CreditSpecName)
	if err != nil {
		return nil, fmt.Errorf("credit inputs: %w", err)
	}
	var out []modelapi.TensorMetadata
	for _, c := range spec.Columns {
		if c.Name == LabelColumn {
			continue
		}
		out = append(out, modelapi.TensorMetadata{Name: c.Name, Datatype: datatypeOf(c.Type), Shape: []int64{-1, 1}})
	}
	return out, nil
}

func datatypeOf(colType string) string {
	switch colType {
	case datasets.ColumnInt:
		return modelapi.DatatypeINT64
	case datasets.ColumnFloat:
		return modelapi.DatatypeFP64
	case datasets.ColumnCategory:
		return modelapi.DatatypeBYTES
	default:
		return modelapi.DatatypeBOOL
	}
}

// LoadCredit generates r from the bundled credit-applicant spec.
func LoadCredit(r RowRange) (CreditData, error) {
	spec, err := datasets.BundledTabularSpec(CreditSpecName)
	if err != nil {
		return CreditData{}, fmt.Errorf("load credit rows: %w", err)
	}
	if r.N < 0 || r.Offset < 0 {
		return CreditData{}, fmt.Errorf("load credit rows: RowRange offset %d and n %d must be ≥ 0", r.Offset, r.N)
	}
	g, err := datasets.NewTabular(spec, datasets.TabularOptions{NoTwins: !r.Twins})
	if err != nil {
		return CreditData{}, fmt.Errorf("load credit rows: %w", err)
	}
	cols := make([]modelapi.Column, 0, len(spec.Columns))
	label := -1
	for j, c := range spec.Columns {
		if c.Name == LabelColumn {
			label = j
			continue
		}
		var t modelapi.ColumnType
		switch c.Type {
		case datasets.ColumnInt:
			t = modelapi.Int64
		case datasets.ColumnFloat:
			t = modelapi.Float64
		case datasets.ColumnCategory:
			t = modelapi.String
		default:
			t = modelapi.Bool
		}
		cols = append(cols, modelapi.Column{Name: c.Name, Type: t})
	}
	if label < 0 {
		return CreditData{}, fmt.Errorf("load credit rows: spec %s has no %q column", CreditSpecName, LabelColumn)
	}
	var d CreditData
	for row := range g.Rows(r.Seed, r.Offset, r.N) {
		d.ID = append(d.ID, row.ID)
		d.TwinOf = append(d.TwinOf, row.TwinOf)
		d.Flipped = append(d.Flipped, row.FlippedAttribute)
		k := 0
		for j, v := range row.Values {
			if j == label {
				d.Defaulted = append(d.Defaulted, v.(bool))
				continue
			}
			c := &cols[k]
			switch x := v.(type) {
			case int64:
				c.Ints = append(c.Ints, x)
			case float64:
				c.Floats = append(c.Floats, x)
			case string:
				c.Strings = append(c.Strings, x)
			case bool:
				c.Bools = append(c.Bools, x)
			}
			k++
		}
	}
	d.Table = modelapi.Table{Columns: cols}
	return d, nil
}

// creditworthiness is the latent score behind the historical lending
// decisions the credit models learn: better credit score, lower debt
// ratio, higher income relative to the loan, steady employment and no
// default raise it. Weights are on standardised scales so each term
// matters about as much as its coefficient says.
func creditworthiness(t modelapi.Table, i int, defaulted bool) (float64, error) {
	get := func(name string) (float64, error) {
		c, ok := t.Column(name)
		if !ok || c.Type == modelapi.String {
			return 0, fmt.Errorf("column %q is missing or not numeric", name)
		}
		return c.Float(i), nil
	}
	var v [6]float64
	for k, name := range []string{"credit_score", "debt_to_income", "annual_income", "loan_amount", "employment_years", "home_owner"} {
		x, err := get(name)
		if err != nil {
			return 0, err
		}
		v[k] = x
	}
	z := 1.2*(v[0]-690)/70 - 0.9*(v[1]-0.32)/0.12 + 0.6*(math.Log(v[2])-10.9)/0.55 -
		0.5*(math.Log(v[3])-9.6)/0.8 + 0.15*(v[4]-7)/2.6 + 0.3*v[5]
	if defaulted {
		z -= 2
	}
	return z, nil
}

// Penalties the biased historical decisions apply, on the scale of the
// creditworthiness score (whose standard deviation is about 2).
const (
	biasBlack         = 2.0
	biasFemale        = 1.5
	biasForeignWorker = 1.0
)

// HistoricalApprovals are the labels the credit scorers learn: 1 where a
// past lender approved the application, 0 where it denied it. Approval is
// creditworthiness plus per-row noise (seeded by the row ID, so a twin
// shares its original's noise) above 0; with biased, the lender also
// subtracted penalties for race = black, sex = female and foreign workers,
// the discrimination the biased variant learns.
func HistoricalApprovals(d CreditData, biased bool) ([]int, error) {
	out := make([]int, d.Len())
	race, _ := d.Table.Column("race")
	sex, _ := d.Table.Column("sex")
	fw, _ := d.Table.Column("foreign_worker")
	if biased && (race.Type != modelapi.String || sex.Type != modelapi.String || fw.Type != modelapi.Bool) {
		return nil, fmt.Errorf("historical approvals: biased labels need string race and sex and bool foreign_worker columns")
	}
	for i := range out {
		z, err := creditworthiness(d.Table, i, d.Defaulted[i])
		if err != nil {
			return nil, fmt.Errorf("historical approvals: %w", err)
		}
		z += rowNoise(d, i, 0x617070726f766531)
		if biased {
			if race.Strings[i] == "black" {
				z -= biasBlack
			}
			if sex.Strings[i] == "female" {
				z -= biasFemale
			}
			if fw.Bools[i] {
				z -= biasForeignWorker
			}
		}
		if z > 0 {
			out[i] = 1
		}
	}
	return out, nil
}

// rowNoise is a standard normal draw fixed by the original row's ID and a
// stream, so labels are reproducible and twins share their original's.
func rowNoise(d CreditData, i int, stream uint64) float64 {
	id := d.ID[i]
	if d.TwinOf[i] >= 0 {
		id = d.TwinOf[i]
	}
	return rand.New(rand.NewPCG(uint64(id), stream)).NormFloat64()
}

// categoriesOf lists the allowed values of a category column in spec
// order, used for one-hot encoding.
func categoriesOf(spec *datasets.TabularSpec, name string) []string {
	for _, c := range spec.Columns {
		if c.Name == name {
			return slices.Clone(c.Distribution.Values)
		}
	}
	return nil
}
