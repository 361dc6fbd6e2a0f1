package predictive

import (
	"context"
	"fmt"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/privacy/dp"
)

// CreditDP is the credit scorer trained with DP-SGD: a logistic regression
// whose training carries a differential-privacy guarantee (ε, δ) computed
// by an RDP accountant. Membership inference against it must not find an
// empirical ε above that guarantee.
const CreditDP = "dp"

// Seeds of the DP scorer's data. Its standardisation is fitted on public
// synthetic rows (dpPublicSeed), never on the private training rows, so the
// accountant's ε covers the whole training pipeline.
const (
	DPTrainSeed  uint64 = 7004
	dpPublicSeed uint64 = 7005
	dpMemberRows        = 1000
	dpPublicRows        = 2000
)

// DPOptions are the DP-SGD hyperparameters of the DP scorer.
func DPOptions() dp.Options {
	return dp.Options{ClipNorm: 1, NoiseMultiplier: 1.5, SampleRate: 0.05, Steps: 400, LearningRate: 1, Delta: 1e-5, Seed: DPTrainSeed}
}

// DPMembers is the DP scorer's training set; DPNonMembers a disjoint set
// from the same distribution.
func DPMembers() RowRange { return RowRange{Seed: DPTrainSeed, Offset: 0, N: dpMemberRows} }
func DPNonMembers() RowRange {
	return RowRange{Seed: DPTrainSeed, Offset: dpMemberRows, N: dpMemberRows}
}

type dpModel struct {
	enc *encoder
	m   dp.Model
}

func (m *dpModel) Predict(t modelapi.Table) ([][]float64, error) {
	x, err := m.enc.encode(t)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, t.Len())
	for i := range out {
		p := m.m.Prob(x[i*m.enc.dim : (i+1)*m.enc.dim])
		out[i] = []float64{1 - p, p}
	}
	return out, nil
}

// NewDPCreditScorer trains the DP scorer and returns it with the
// accountant's report (ε at δ, orders, sampling).
func NewDPCreditScorer(ctx context.Context) (Classifier, dp.Report, error) {
	enc, err := newEncoder(FairFeatures())
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	pub, err := LoadCredit(RowRange{Seed: dpPublicSeed, N: dpPublicRows})
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: public rows: %w", err)
	}
	if _, err := enc.fit(pub.Table); err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	d, err := LoadCredit(DPMembers())
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	y, err := HistoricalApprovals(d, false)
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	flat, err := enc.encode(d.Table)
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	x := make([][]float64, d.Len())
	for i := range x {
		x[i] = flat[i*enc.dim : (i+1)*enc.dim]
	}
	m, rep, err := dp.Train(ctx, x, y, DPOptions())
	if err != nil {
		return nil, dp.Report{}, fmt.Errorf("dp credit scorer: %w", err)
	}
	return &dpModel{enc: enc, m: m}, rep, nil
}

// Records are the member or non-member records of a reference scorer as a
// membership audit reads them: the model's input columns plus "approved",
// the label it was trained on.
func Records(variant string, members bool) (modelapi.Table, error) {
	var r RowRange
	switch {
	case variant == CreditOverfit && members:
		r = OverfitMembers()
	case variant == CreditOverfit:
		r = OverfitNonMembers()
	case variant == CreditDP && members:
		r = DPMembers()
	case variant == CreditDP:
		r = DPNonMembers()
	default:
		return modelapi.Table{}, fmt.Errorf("records: variant %q has no published training set; use %s or %s", variant, CreditOverfit, CreditDP)
	}
	d, err := LoadCredit(r)
	if err != nil {
		return modelapi.Table{}, err
	}
	y, err := HistoricalApprovals(d, false)
	if err != nil {
		return modelapi.Table{}, err
	}
	approved := make([]bool, len(y))
	for i, v := range y {
		approved[i] = v == 1
	}
	var t modelapi.Table
	for _, name := range FairFeatures() {
		c, ok := d.Table.Column(name)
		if !ok {
			return modelapi.Table{}, fmt.Errorf("records: column %s missing", name)
		}
		t.Columns = append(t.Columns, c)
	}
	t.Columns = append(t.Columns, modelapi.BoolColumn("approved", approved))
	return t, nil
}
