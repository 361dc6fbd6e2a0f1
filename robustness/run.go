package robustness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// found is what an attack on one input produced.
type found struct {
	adv     []float64 // best adversarial input, nil when none
	pred    int       // prediction on adv
	success bool      // adv counts as a success (e.g. within a norm bound)
}

// attackFn attacks one correctly classified input x of class label.
type attackFn func(ctx context.Context, q *querier, x []float64, label int, rng *rand.Rand) (found, error)

// cleanBatch bounds the inputs of one clean-prediction call.
const cleanBatch = 256

func validateInputs(inputs [][]float64, labels []int) error {
	if len(inputs) == 0 {
		return errors.New("robustness: no inputs: pass at least one")
	}
	if labels != nil && len(labels) != len(inputs) {
		return fmt.Errorf("robustness: %d labels for %d inputs: pass one label per input, or nil to attack the clean predictions", len(labels), len(inputs))
	}
	d := len(inputs[0])
	for i, x := range inputs {
		if len(x) == 0 || len(x) != d {
			return fmt.Errorf("robustness: input %d has %d features, input 0 has %d: inputs must share one non-zero dimension", i, len(x), d)
		}
		for j, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("robustness: input %d feature %d is %v: want finite values", i, j, v)
			}
		}
	}
	for i, l := range labels {
		if l < 0 {
			return fmt.Errorf("robustness: label %d is %d: want a class index ≥ 0", i, l)
		}
	}
	return nil
}

// cleanPredictions predicts every input once, in chunks.
func cleanPredictions(ctx context.Context, q *querier, inputs [][]float64) ([]int, error) {
	out := make([]int, 0, len(inputs))
	for s := 0; s < len(inputs); s += cleanBatch {
		ls, err := q.labels(ctx, inputs[s:min(s+cleanBatch, len(inputs))])
		if err != nil {
			return nil, fmt.Errorf("robustness: clean predictions: %w", err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

// runAttack predicts every input, skips the misclassified ones (TextAttack)
// and attacks the rest one by one with fn, each from its own seeded stream
// so that results do not depend on the order or number of inputs. On an
// error (context, total budget, model failure) it returns the examples
// finished so far together with the error.
func runAttack(ctx context.Context, name string, clf Classifier, inputs [][]float64, labels []int, perInput int, seed uint64, fn attackFn) (*AttackResult, error) {
	if err := validateInputs(inputs, labels); err != nil {
		return nil, err
	}
	if perInput < 0 {
		return nil, fmt.Errorf("robustness: %s: QueryBudget = %d: want ≥ 0 (0 = unlimited)", name, perInput)
	}
	q := &querier{clf: clf}
	res := &AttackResult{}
	finish := func(err error) (*AttackResult, error) {
		res.Summary = summarize(name, res.Examples, q.total)
		return res, err
	}
	preds, err := cleanPredictions(ctx, q, inputs)
	if err != nil {
		return finish(fmt.Errorf("robustness: %s: %w", name, err))
	}
	q.perInput = perInput
	for i, x := range inputs {
		label := preds[i]
		if labels != nil {
			label = labels[i]
		}
		e := Example{Index: i, Label: label, OriginalPred: preds[i], AdversarialPred: preds[i], Perturbation: math.NaN(), Queries: 1}
		if preds[i] != label {
			e.Outcome = Skipped
			res.Examples = append(res.Examples, e)
			continue
		}
		q.startInput()
		f, err := fn(ctx, q, x, label, rand.New(rand.NewPCG(seed, uint64(i))))
		e.Queries += q.input
		switch {
		case errors.Is(err, errInputBudget):
			e.BudgetExhausted = true
		case err != nil:
			return finish(fmt.Errorf("robustness: %s: input %d: %w", name, i, err))
		}
		e.Outcome = Failed
		if f.adv != nil {
			e.Perturbation = relL2(x, f.adv)
			if f.success {
				e.Outcome, e.Adversarial, e.AdversarialPred = Succeeded, f.adv, f.pred
			}
		}
		res.Examples = append(res.Examples, e)
	}
	return finish(nil)
}
