package predictive

import (
	"fmt"
)

// Credit scorer variants.
const (
	CreditFair    = "fair"
	CreditBiased  = "biased"
	CreditOverfit = "overfit"
)

// Training seeds. Each variant's training rows are a RowRange of the
// credit-applicant spec with one of these seeds, so anyone can regenerate
// them.
const (
	CreditTrainSeed   uint64 = 7001
	OverfitTrainSeed  uint64 = 7002
	creditTrainRows          = 3000
	overfitMemberRows        = 400
)

// CreditTrainingSet is the RowRange the fair and biased scorers (and the
// credit-limit regressors) are trained on.
func CreditTrainingSet() RowRange {
	return RowRange{Seed: CreditTrainSeed, Offset: 0, N: creditTrainRows}
}

// OverfitMembers is the exact training set of the overfit scorer:
// original rows 0..399 of seed 7002, no twins. Its labels are
// HistoricalApprovals(…, false).
func OverfitMembers() RowRange {
	return RowRange{Seed: OverfitTrainSeed, Offset: 0, N: overfitMemberRows}
}

// OverfitNonMembers is a disjoint set from the same distribution (rows
// 400..799 of seed 7002): the non-members of a membership-inference audit.
func OverfitNonMembers() RowRange {
	return RowRange{Seed: OverfitTrainSeed, Offset: overfitMemberRows, N: overfitMemberRows}
}

// OverfitOptions is the recipe of the overfit scorer, for training LiRA
// shadow models the same way on other subsets.
func OverfitOptions() Options {
	return Options{Method: Kernel, Features: FairFeatures(), Gamma: 20, Prior: 0.02}
}

// NewCreditScorer trains the credit scorer variant: fair (logistic
// regression on FairFeatures, unbiased historical labels), biased
// (logistic regression on AllFeatures, labels with penalties against
// race = black, sex = female and foreign workers) or overfit (the Kernel
// recipe on OverfitMembers). Output per row: [p(deny), p(approve)].
func NewCreditScorer(variant string) (Classifier, error) {
	var (
		rows   RowRange
		biased bool
		opt    Options
	)
	switch variant {
	case CreditFair:
		rows, opt = CreditTrainingSet(), Options{Method: Logistic, Features: FairFeatures()}
	case CreditBiased:
		rows, biased, opt = CreditTrainingSet(), true, Options{Method: Logistic, Features: AllFeatures()}
	case CreditOverfit:
		rows, opt = OverfitMembers(), OverfitOptions()
	default:
		return nil, fmt.Errorf("credit scorer: unknown variant %q; use %s, %s or %s", variant, CreditFair, CreditBiased, CreditOverfit)
	}
	d, err := LoadCredit(rows)
	if err != nil {
		return nil, fmt.Errorf("credit scorer %s: %w", variant, err)
	}
	y, err := HistoricalApprovals(d, biased)
	if err != nil {
		return nil, fmt.Errorf("credit scorer %s: %w", variant, err)
	}
	m, err := Train(d.Table, y, opt)
	if err != nil {
		return nil, fmt.Errorf("credit scorer %s: %w", variant, err)
	}
	return m, nil
}
