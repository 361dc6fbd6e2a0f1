package privacy

import (
	"fmt"
	"math"
)

// MIAStats holds the membership-inference statistics of one example, with
// the conventions of TensorFlow Privacy's advanced MIA
// (privacy_tests/membership_inference_attack "calculate_statistic"):
//
//	Confidence  p_y, the model's probability of the true label
//	Loss        cross-entropy −ln p_y
//	Logit       φ = ln p_y − ln Σ_{y′≠y} p_y′ (the statistic LiRA fits)
//	Hinge       z_y − max_{y′≠y} z_y′ on logits
//
// Members tend to have high Confidence, Logit and Hinge and low Loss;
// AttackScore turns any of them into a score where higher ⇒ member.
type MIAStats struct {
	Confidence float64 `json:"confidence"`
	Loss       float64 `json:"loss"`
	Logit      float64 `json:"logit"`
	Hinge      float64 `json:"hinge"`
}

// Statistic names one MIAStats field.
type Statistic string

// The statistics MIAStats carries.
const (
	StatConfidence Statistic = "confidence"
	StatLoss       Statistic = "loss"
	StatLogit      Statistic = "logit"
	StatHinge      Statistic = "hinge"
)

// AttackScore returns the statistic oriented so that higher ⇒ member, the
// convention ROC, AUC and the ε bounds of this package assume: the loss is
// negated, the others are returned as they are.
func (s MIAStats) AttackScore(stat Statistic) (float64, error) {
	switch stat {
	case StatConfidence:
		return s.Confidence, nil
	case StatLoss:
		return -s.Loss, nil
	case StatLogit:
		return s.Logit, nil
	case StatHinge:
		return s.Hinge, nil
	}
	return 0, fmt.Errorf("unknown statistic %q: use confidence, loss, logit or hinge", stat)
}

// AttackScores applies AttackScore to every example.
func AttackScores(stats []MIAStats, stat Statistic) ([]float64, error) {
	out := make([]float64, len(stats))
	for i, s := range stats {
		v, err := s.AttackScore(stat)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// MinProb is the floor applied to probabilities before taking logarithms,
// the same small value TensorFlow Privacy uses (1e-30), so a model that is
// certain and wrong gets a large finite loss instead of +Inf.
const MinProb = 1e-30

// StatsFromLogits computes MIAStats from raw logits (one row per example,
// at least two classes) and integer labels in [0, classes). Everything is
// derived with log-sum-exp, so logits of any magnitude give finite results:
// ln p_y = z_y − LSE(z) and φ = z_y − LSE_{y′≠y}(z).
func StatsFromLogits(logits [][]float64, labels []int) ([]MIAStats, error) {
	if err := checkMatrix("logits", logits, labels); err != nil {
		return nil, err
	}
	out := make([]MIAStats, len(logits))
	for i, z := range logits {
		y := labels[i]
		all := logSumExp(z, -1)
		others := logSumExp(z, y)
		lp := z[y] - all
		maxOther := math.Inf(-1)
		for j, v := range z {
			if j != y && v > maxOther {
				maxOther = v
			}
		}
		out[i] = MIAStats{
			Confidence: math.Exp(lp),
			Loss:       -lp,
			Logit:      z[y] - others,
			Hinge:      z[y] - maxOther,
		}
	}
	return out, nil
}

// StatsFromProbs computes MIAStats from predicted probabilities (one row per
// example, at least two classes, each entry in [0, 1]). Probabilities are
// floored at MinProb before logarithms. Hinge is computed on ln p, which
// equals the logit hinge when the probabilities are a softmax (softmax
// logits are ln p up to a constant per row).
func StatsFromProbs(probs [][]float64, labels []int) ([]MIAStats, error) {
	if err := checkMatrix("probs", probs, labels); err != nil {
		return nil, err
	}
	out := make([]MIAStats, len(probs))
	for i, p := range probs {
		for j, v := range p {
			if v < 0 || v > 1 {
				return nil, fmt.Errorf("probs[%d][%d] = %g is not a probability: pass logits to StatsFromLogits or softmax the row first", i, j, v)
			}
		}
		y := labels[i]
		py := math.Max(p[y], MinProb)
		var rest float64
		maxOther := math.Inf(-1)
		for j, v := range p {
			if j == y {
				continue
			}
			rest += v
			maxOther = math.Max(maxOther, math.Log(math.Max(v, MinProb)))
		}
		rest = math.Max(rest, MinProb)
		out[i] = MIAStats{
			Confidence: p[y],
			Loss:       -math.Log(py),
			Logit:      math.Log(py) - math.Log(rest),
			Hinge:      math.Log(py) - maxOther,
		}
	}
	return out, nil
}

// logSumExp returns ln Σ_j e^{z_j} over j ≠ skip (skip < 0 keeps all).
func logSumExp(z []float64, skip int) float64 {
	m := math.Inf(-1)
	for j, v := range z {
		if j != skip && v > m {
			m = v
		}
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for j, v := range z {
		if j != skip {
			s += math.Exp(v - m)
		}
	}
	return m + math.Log(s)
}

func checkMatrix(field string, rows [][]float64, labels []int) error {
	if len(rows) == 0 {
		return fmt.Errorf("%s is empty: need one row per example", field)
	}
	if len(rows) != len(labels) {
		return fmt.Errorf("%s has %d rows but labels has %d: pass one label per row", field, len(rows), len(labels))
	}
	k := len(rows[0])
	if k < 2 {
		return fmt.Errorf("%s[0] has %d classes: membership statistics need at least 2", field, k)
	}
	for i, r := range rows {
		if len(r) != k {
			return fmt.Errorf("%s[%d] has %d classes, %s[0] has %d: every row needs the same number", field, i, len(r), field, k)
		}
		for j, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s[%d][%d] is %g: drop or fix the row", field, i, j, v)
			}
		}
		if labels[i] < 0 || labels[i] >= k {
			return fmt.Errorf("labels[%d] = %d is out of range [0, %d): labels must index a class column", i, labels[i], k)
		}
	}
	return nil
}
