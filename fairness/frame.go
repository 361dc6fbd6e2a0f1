package fairness

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Frame is the columnar input of a classifier fairness evaluation: one entry
// per row in every column.
type Frame struct {
	// YTrue and YPred are the true label and the model's decision, 0 or 1.
	YTrue []int
	YPred []int
	// Score is optional (nil): the model's score for class 1. It is only
	// validated and averaged per group; decisions come from YPred.
	Score []float64
	// Weight is optional (nil = every row weighs 1): sample weights applied
	// to every rate, as fairlearn's sample_weight.
	Weight []float64
	// Protected maps a protected attribute's column name to its values.
	// Values are labels ("female", "65+"); an empty string is refused so
	// missing data cannot form a silent group of its own.
	Protected map[string][]string
}

// Rows is the number of rows of the frame (the length of YTrue).
func (f Frame) Rows() int { return len(f.YTrue) }

// ErrEmptyFrame is returned for a frame without rows.
var ErrEmptyFrame = errors.New("fairness: empty frame: y_true has no rows")

func (f Frame) validate() error {
	n := len(f.YTrue)
	if n == 0 {
		return ErrEmptyFrame
	}
	if len(f.YPred) != n {
		return fmt.Errorf("fairness: column y_pred has %d rows, y_true has %d: columns must be the same length", len(f.YPred), n)
	}
	if f.Score != nil && len(f.Score) != n {
		return fmt.Errorf("fairness: column score has %d rows, y_true has %d: pass one score per row or none", len(f.Score), n)
	}
	if err := checkBinary("y_true", f.YTrue); err != nil {
		return err
	}
	if err := checkBinary("y_pred", f.YPred); err != nil {
		return err
	}
	if err := checkFinite("score", f.Score); err != nil {
		return err
	}
	if err := checkWeights(f.Weight, n); err != nil {
		return err
	}
	return checkProtected(f.Protected, n)
}

func checkBinary(col string, v []int) error {
	for i, x := range v {
		if x != 0 && x != 1 {
			return fmt.Errorf("fairness: column %s row %d: value %d, want 0 or 1 (map class labels to 0/1 first)", col, i, x)
		}
	}
	return nil
}

func checkFinite(col string, v []float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("fairness: column %s row %d: %v: drop the row or impute a finite value", col, i, x)
		}
	}
	return nil
}

func checkWeights(w []float64, n int) error {
	if w == nil {
		return nil
	}
	if len(w) != n {
		return fmt.Errorf("fairness: column weight has %d rows, want %d: pass one weight per row or none", len(w), n)
	}
	if err := checkFinite("weight", w); err != nil {
		return err
	}
	for i, x := range w {
		if x < 0 {
			return fmt.Errorf("fairness: column weight row %d: negative weight %v: weights must be ≥ 0", i, x)
		}
	}
	return nil
}

func checkProtected(p map[string][]string, n int) error {
	if len(p) == 0 {
		return errors.New("fairness: no protected attribute columns: set Frame.Protected")
	}
	for _, name := range sortedKeys(p) {
		if name == "" || strings.Contains(name, setSep) {
			return fmt.Errorf("fairness: protected column name %q: must be non-empty and must not contain %q", name, setSep)
		}
		col := p[name]
		if len(col) != n {
			return fmt.Errorf("fairness: protected column %s has %d rows, want %d", name, len(col), n)
		}
		for i, v := range col {
			if v == "" {
				return fmt.Errorf("fairness: protected column %s row %d: empty value: label missing data explicitly (e.g. \"unknown\")", name, i)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
