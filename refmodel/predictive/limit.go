package predictive

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/sandgate/sandgate/modelapi"
)

// Credit-limit regressor variants.
const (
	LimitFair   = "fair"
	LimitBiased = "biased"
)

// Multiplicative penalties of the biased historical credit limits.
const (
	limitPenaltyFemale = 0.70
	limitPenaltyBlack  = 0.65
)

// HistoricalLimits are the credit limits (currency units) the regressors
// learn: a quarter of annual income, scaled down by the debt ratio and up
// by the credit score, with seeded log-normal noise per row (shared by
// twins). biased also cuts limits by 30% for women and 35% for black
// applicants.
func HistoricalLimits(d CreditData, biased bool) ([]float64, error) {
	income, ok1 := d.Table.Column("annual_income")
	dti, ok2 := d.Table.Column("debt_to_income")
	score, ok3 := d.Table.Column("credit_score")
	sex, ok4 := d.Table.Column("sex")
	race, ok5 := d.Table.Column("race")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || sex.Type != modelapi.String || race.Type != modelapi.String {
		return nil, fmt.Errorf("historical limits: need annual_income, debt_to_income, credit_score, sex and race columns")
	}
	out := make([]float64, d.Len())
	for i := range out {
		l := 0.25 * income.Float(i) * (1 - min(dti.Float(i), 0.8)) * math.Exp(0.5*(score.Float(i)-690)/70)
		l *= math.Exp(0.1 * rowNoise(d, i, 0x6c696d6974303031))
		if biased {
			if sex.Strings[i] == "female" {
				l *= limitPenaltyFemale
			}
			if race.Strings[i] == "black" {
				l *= limitPenaltyBlack
			}
		}
		out[i] = l
	}
	return out, nil
}

// Regressor predicts one value per row (a credit limit).
type Regressor interface {
	Predict(t modelapi.Table) ([]float64, error)
}

// NewCreditLimit trains the credit-limit regressor variant on
// CreditTrainingSet: ridge regression of log(limit) on FairFeatures
// (fair, unbiased limits) or AllFeatures (biased limits). Output per row:
// the predicted limit in currency units.
func NewCreditLimit(variant string) (Regressor, error) {
	var (
		biased bool
		feats  []string
	)
	switch variant {
	case LimitFair:
		feats = FairFeatures()
	case LimitBiased:
		biased, feats = true, AllFeatures()
	default:
		return nil, fmt.Errorf("credit limit: unknown variant %q; use %s or %s", variant, LimitFair, LimitBiased)
	}
	d, err := LoadCredit(CreditTrainingSet())
	if err != nil {
		return nil, fmt.Errorf("credit limit %s: %w", variant, err)
	}
	y, err := HistoricalLimits(d, biased)
	if err != nil {
		return nil, fmt.Errorf("credit limit %s: %w", variant, err)
	}
	enc, err := newEncoder(feats)
	if err != nil {
		return nil, fmt.Errorf("credit limit %s: %w", variant, err)
	}
	x, err := enc.fit(d.Table)
	if err != nil {
		return nil, fmt.Errorf("credit limit %s: %w", variant, err)
	}
	w, err := fitRidge(x, enc.dim, y, 1)
	if err != nil {
		return nil, fmt.Errorf("credit limit %s: %w", variant, err)
	}
	return &ridgeModel{enc: enc, w: w}, nil
}

// fitRidge solves the ridge normal equations for log(y); the last weight
// is the unpenalised intercept.
func fitRidge(x []float64, dim int, y []float64, l2 float64) ([]float64, error) {
	d := dim + 1
	a := mat.NewSymDense(d, nil)
	b := mat.NewVecDense(d, nil)
	xi := make([]float64, d)
	for i, yi := range y {
		copy(xi, x[i*dim:(i+1)*dim])
		xi[dim] = 1
		ly := math.Log(yi)
		for j := range d {
			b.SetVec(j, b.AtVec(j)+xi[j]*ly)
			for k := j; k < d; k++ {
				a.SetSym(j, k, a.At(j, k)+xi[j]*xi[k])
			}
		}
	}
	for j := range dim {
		a.SetSym(j, j, a.At(j, j)+l2)
	}
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, fmt.Errorf("ridge regression: normal equations are singular")
	}
	var w mat.VecDense
	if err := ch.SolveVecTo(&w, b); err != nil {
		return nil, fmt.Errorf("ridge regression: %w", err)
	}
	return w.RawVector().Data, nil
}

type ridgeModel struct {
	enc *encoder
	w   []float64
}

func (m *ridgeModel) Predict(t modelapi.Table) ([]float64, error) {
	x, err := m.enc.encode(t)
	if err != nil {
		return nil, err
	}
	dim := m.enc.dim
	out := make([]float64, t.Len())
	for i := range out {
		z := m.w[dim]
		for j, v := range x[i*dim : (i+1)*dim] {
			z += m.w[j] * v
		}
		out[i] = math.Exp(z)
	}
	return out, nil
}
