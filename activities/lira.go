package activities

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/refmodel/predictive"
)

// liraScores runs LiRA offline (Carlini et al. 2022, one-sided test): it
// trains shadows models with the candidate's own training recipe on random
// halves of the audit pool (members and non-members together), so each
// record has OUT models that never saw it; the candidate's logit statistic
// φ of a record, compared with the OUT models' φ of the same record, gives
// its membership score. Only the bundled reference models publish a
// recipe ("credit/<variant>"); ok is false for any other model.
func liraScores(ctx context.Context, recipe string, shadows int, seed uint64, pool modelapi.Table, labels []int, target []float64) (scores []float64, ok bool, err error) {
	kind, variant, _ := strings.Cut(recipe, "/")
	if kind != predictive.KindCredit || shadows < 2 {
		return nil, false, nil
	}
	var opt predictive.Options
	switch variant {
	case predictive.CreditOverfit:
		opt = predictive.OverfitOptions()
	case predictive.CreditFair:
		opt = predictive.Options{Method: predictive.Logistic, Features: predictive.FairFeatures()}
	case predictive.CreditBiased:
		opt = predictive.Options{Method: predictive.Logistic, Features: predictive.AllFeatures()}
	default:
		return nil, false, nil // the DP recipe is not reproduced here
	}
	n := pool.Len()
	out := make([][]float64, n)
	// Each record is IN exactly half of the shadow models (the paper's
	// balanced design), so every record has shadows/2 OUT models.
	rng := rand.New(rand.NewPCG(seed, 0x6c697261))
	inModel := make([][]bool, shadows)
	for s := range inModel {
		inModel[s] = make([]bool, n)
	}
	for i := range n {
		for j, s := range rng.Perm(shadows) {
			if j < shadows/2 {
				inModel[s][i] = true
			}
		}
	}
	for s := 0; s < shadows; s++ {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		in := inModel[s]
		var idx []int
		for i, ok := range in {
			if ok {
				idx = append(idx, i)
			}
		}
		train := pool.Take(idx)
		ys := make([]int, len(idx))
		for j, i := range idx {
			ys[j] = labels[i]
		}
		m, err := predictive.Train(train, ys, opt)
		if err != nil {
			return nil, false, fmt.Errorf("lira shadow %d: %w", s, err)
		}
		probs, err := m.Predict(pool)
		if err != nil {
			return nil, false, fmt.Errorf("lira shadow %d: %w", s, err)
		}
		st, err := privacy.StatsFromProbs(probs, labels)
		if err != nil {
			return nil, false, fmt.Errorf("lira shadow %d: %w", s, err)
		}
		for i := range n {
			if !in[i] {
				out[i] = append(out[i], st[i].Logit)
			}
		}
	}
	res, err := privacy.LiRAOffline(target, out, privacy.LiRAOptions{Method: privacy.LiRAOneSided})
	if err != nil {
		return nil, false, fmt.Errorf("lira: %w", err)
	}
	return res.Score, true, nil
}
