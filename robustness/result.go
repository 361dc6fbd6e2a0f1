package robustness

import (
	"math"
	"slices"
)

// Outcome of an attack on one input (TextAttack's result kinds).
type Outcome string

const (
	// Succeeded: the attack changed the prediction, argmax f(x_adv) ≠ argmax f(x) (ART).
	Succeeded Outcome = "succeeded"
	// Failed: the input was attacked and its prediction held.
	Failed Outcome = "failed"
	// Skipped: the input was misclassified before any attack (TextAttack).
	Skipped Outcome = "skipped"
)

// Example is the attack on one input.
type Example struct {
	Index           int // position in the inputs
	Label           int // true label (the clean prediction when no labels were given)
	OriginalPred    int
	AdversarialPred int // prediction on Adversarial; OriginalPred when none
	Outcome         Outcome
	// Adversarial is the perturbed input that flipped the prediction
	// (nil unless Succeeded), for the caller to store as PNG or a row.
	Adversarial []float64
	// Perturbation is ‖x_adv − x‖₂ / ‖x‖₂ (‖x_adv − x‖₂ when x = 0); NaN
	// when no adversarial input was found.
	Perturbation float64
	// Queries are the model queries spent on this input, the clean one
	// included.
	Queries int
	// BudgetExhausted: the per-input query budget ended the attack.
	BudgetExhausted bool
}

// AttackSummary counts outcomes with TextAttack's conventions.
type AttackSummary struct {
	Attack     string
	Convention string
	Total      int
	Succeeded  int
	Failed     int
	Skipped    int
	// SuccessRate = Succeeded / (Succeeded + Failed); 0 when both are 0.
	SuccessRate float64
	// AccuracyUnderAttack = Failed / Total.
	AccuracyUnderAttack float64
	// Queries is the number of model queries (inputs evaluated) the attack used.
	Queries int
	// MedianPerturbation is the median relative L2 perturbation of the
	// succeeded examples; 0 when none succeeded.
	MedianPerturbation float64
}

// AttackResult is what every attack returns.
type AttackResult struct {
	Summary  AttackSummary
	Examples []Example
}

const textAttackConvention = "TextAttack: skipped = misclassified before the attack; success rate = succeeded/(succeeded+failed); accuracy under attack = failed/total; success = argmax changes (ART, untargeted)"

// Tally computes the TextAttack rates from outcome counts.
func Tally(attack string, succeeded, failed, skipped int) AttackSummary {
	s := AttackSummary{Attack: attack, Convention: textAttackConvention,
		Total: succeeded + failed + skipped, Succeeded: succeeded, Failed: failed, Skipped: skipped}
	if succeeded+failed > 0 {
		s.SuccessRate = float64(succeeded) / float64(succeeded+failed)
	}
	if s.Total > 0 {
		s.AccuracyUnderAttack = float64(failed) / float64(s.Total)
	}
	return s
}

// summarize tallies examples; queries is the attack's total.
func summarize(attack string, ex []Example, queries int) AttackSummary {
	var n [3]int
	var norms []float64
	for _, e := range ex {
		switch e.Outcome {
		case Succeeded:
			n[0]++
			norms = append(norms, e.Perturbation)
		case Failed:
			n[1]++
		case Skipped:
			n[2]++
		}
	}
	s := Tally(attack, n[0], n[1], n[2])
	s.Queries = queries
	s.MedianPerturbation = median(norms)
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// Metrics flattens the summary for a policy gate:
// robustness.<attack>.success_rate, .accuracy_under_attack, .succeeded,
// .failed, .skipped, .queries, .median_perturbation (only when some
// input succeeded).
func (s AttackSummary) Metrics() map[string]float64 {
	p := "robustness." + s.Attack + "."
	m := map[string]float64{
		p + "success_rate":          s.SuccessRate,
		p + "accuracy_under_attack": s.AccuracyUnderAttack,
		p + "succeeded":             float64(s.Succeeded),
		p + "failed":                float64(s.Failed),
		p + "skipped":               float64(s.Skipped),
		p + "queries":               float64(s.Queries),
	}
	if s.Succeeded > 0 {
		m[p+"median_perturbation"] = s.MedianPerturbation
	}
	return m
}

// relL2 is ‖a − x‖₂ / ‖x‖₂, or ‖a − x‖₂ when x is all zeros.
func relL2(x, a []float64) float64 {
	var d, n float64
	for i := range x {
		d += (a[i] - x[i]) * (a[i] - x[i])
		n += x[i] * x[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

func clip(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
