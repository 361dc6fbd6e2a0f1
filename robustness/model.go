package robustness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Classifier is a black-box classifier: for each input it returns class
// probabilities (one slice per input, the same number of classes for all).
// Attacks only query it; they never see its internals.
type Classifier interface {
	Predict(ctx context.Context, batch [][]float64) ([][]float64, error)
}

// Regressor is a black-box regressor returning one value per input.
type Regressor interface {
	Predict(ctx context.Context, batch [][]float64) ([]float64, error)
}

// ErrBudgetExhausted is matched (errors.Is) by every *BudgetError.
var ErrBudgetExhausted = errors.New("robustness: query budget exhausted")

// BudgetError is returned when a batch would take the queries used past a
// budget; the batch is refused whole and nothing of it is evaluated.
type BudgetError struct {
	Budget    int // the limit
	Used      int // queries used before the refused batch
	Requested int // inputs in the refused batch
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("robustness: query budget exhausted: %d of %d queries used, a batch of %d refused", e.Used, e.Budget, e.Requested)
}

// Is makes errors.Is(err, ErrBudgetExhausted) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }

// Budget counts queries (inputs evaluated, not calls) across every model it
// wraps and refuses any batch that would exceed its limit. It is safe for
// concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit queries; limit ≤ 0 means unlimited
// (queries are still counted).
func NewBudget(limit int) *Budget { return &Budget{limit: int64(limit)} }

// Used is the number of queries evaluated so far.
func (b *Budget) Used() int { return int(b.used.Load()) }

// Limit is the budget's limit (≤ 0: unlimited).
func (b *Budget) Limit() int { return int(b.limit) }

// take reserves n queries or refuses them all.
func (b *Budget) take(n int) error {
	for {
		u := b.used.Load()
		if b.limit > 0 && u+int64(n) > b.limit {
			return &BudgetError{Budget: int(b.limit), Used: int(u), Requested: n}
		}
		if b.used.CompareAndSwap(u, u+int64(n)) {
			return nil
		}
	}
}

// Classifier wraps c so that its queries draw on b.
func (b *Budget) Classifier(c Classifier) Classifier { return budgetedClassifier{b, c} }

// Regressor wraps r so that its queries draw on b.
func (b *Budget) Regressor(r Regressor) Regressor { return budgetedRegressor{b, r} }

type budgetedClassifier struct {
	b *Budget
	c Classifier
}

func (w budgetedClassifier) Predict(ctx context.Context, batch [][]float64) ([][]float64, error) {
	if err := w.b.take(len(batch)); err != nil {
		return nil, err
	}
	return w.c.Predict(ctx, batch)
}

type budgetedRegressor struct {
	b *Budget
	r Regressor
}

func (w budgetedRegressor) Predict(ctx context.Context, batch [][]float64) ([]float64, error) {
	if err := w.b.take(len(batch)); err != nil {
		return nil, err
	}
	return w.r.Predict(ctx, batch)
}

// errInputBudget ends the attack on one input when its own query budget
// (TextAttack's per-example query_budget) is spent: the input has failed.
var errInputBudget = errors.New("robustness: per-input query budget spent")

// querier is one attack's view of the model: it counts queries, applies the
// per-input budget, checks the context and the shape of every answer.
type querier struct {
	clf      Classifier
	total    int
	perInput int // 0: unlimited
	input    int // queries spent on the current input
}

func (q *querier) startInput() { q.input = 0 }

// probs returns the class probabilities of batch.
func (q *querier) probs(ctx context.Context, batch [][]float64) ([][]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.perInput > 0 && q.input+len(batch) > q.perInput {
		return nil, errInputBudget
	}
	out, err := q.clf.Predict(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("robustness: predict a batch of %d: %w", len(batch), err)
	}
	q.total += len(batch)
	q.input += len(batch)
	if len(out) != len(batch) {
		return nil, fmt.Errorf("robustness: classifier returned %d outputs for %d inputs", len(out), len(batch))
	}
	for i, p := range out {
		if len(p) < 2 {
			return nil, fmt.Errorf("robustness: classifier output %d has %d classes, want ≥ 2 probabilities", i, len(p))
		}
		for _, v := range p {
			if math.IsNaN(v) {
				return nil, fmt.Errorf("robustness: classifier output %d is NaN", i)
			}
		}
	}
	return out, nil
}

// labels returns the predicted class (argmax) of each input of batch.
func (q *querier) labels(ctx context.Context, batch [][]float64) ([]int, error) {
	ps, err := q.probs(ctx, batch)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = argmax(p)
	}
	return out, nil
}

// argmax returns the first index of the largest value (ties go to the
// lower class, as numpy's argmax).
func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}
