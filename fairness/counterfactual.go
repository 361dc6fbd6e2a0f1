package fairness

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Twin is one counterfactual pair: an original record and its twin with one
// protected attribute changed (A: From → To), both scored by the model.
type Twin struct {
	// Original identifies the original record; the twins of one record
	// share it and form one unit of the "any flip" rate.
	Original  string
	Attribute string
	From, To  string
	// OriginalScore and TwinScore are the model's outputs: a classifier's
	// score for class 1 (a decision model passes 0/1), or a regressor's
	// prediction.
	OriginalScore, TwinScore float64
}

func validateTwins(twins []Twin) error {
	if len(twins) == 0 {
		return fmt.Errorf("fairness: no counterfactual twins: pass at least one pair")
	}
	for i, t := range twins {
		switch {
		case t.Original == "":
			return fmt.Errorf("fairness: twin %d: original is empty: set an id shared by the twins of one record", i)
		case t.Attribute == "":
			return fmt.Errorf("fairness: twin %d: attribute is empty: name the protected column that was changed", i)
		case t.From == t.To:
			return fmt.Errorf("fairness: twin %d: from and to are both %q: a twin must change the attribute", i, t.From)
		case math.IsNaN(t.OriginalScore) || math.IsInf(t.OriginalScore, 0):
			return fmt.Errorf("fairness: twin %d: original_score is %v: want a finite score", i, t.OriginalScore)
		case math.IsNaN(t.TwinScore) || math.IsInf(t.TwinScore, 0):
			return fmt.Errorf("fairness: twin %d: twin_score is %v: want a finite score", i, t.TwinScore)
		}
	}
	return nil
}

// FlipRate is the share of pairs whose decision differs, with its two-sided
// 95% Clopper–Pearson interval.
type FlipRate struct {
	Key      string // attribute, "attribute:from->to", or "any"
	Pairs    int    // pairs (for "any": originals)
	Flips    int
	NegToPos int // original decision 0, twin 1 (TFMA negative_to_positive)
	PosToNeg int // original decision 1, twin 0 (TFMA positive_to_negative)
	Rate     float64
	Lo, Hi   float64
}

// FlipReport is the result of CounterfactualFlips.
type FlipReport struct {
	// Convention: TFMA BooleanFlipRates; decision = score > Threshold.
	Convention  string
	Threshold   float64
	Interval    string
	ByAttribute []FlipRate // sorted by attribute
	ByPair      []FlipRate // sorted by key
	// AnyFlip counts originals with at least one flipped twin.
	AnyFlip FlipRate
}

const flipConvention = "TFMA BooleanFlipRates: decision = score > threshold (strict); flip = decisions differ"

// CounterfactualFlips computes counterfactual flip rates per attribute, per
// a→a′ pair and "any flip" per original, deciding score > threshold
// strictly as TFMA does.
func CounterfactualFlips(ctx context.Context, twins []Twin, threshold float64) (*FlipReport, error) {
	if err := validateTwins(twins); err != nil {
		return nil, err
	}
	if math.IsNaN(threshold) {
		return nil, fmt.Errorf("fairness: flip threshold is NaN: want the decision threshold, e.g. 0.5")
	}
	type acc struct{ pairs, flips, n2p, p2n int }
	byAttr, byPair := map[string]*acc{}, map[string]*acc{}
	anyFlip := map[string]bool{}
	var any acc
	get := func(m map[string]*acc, k string) *acc {
		if m[k] == nil {
			m[k] = &acc{}
		}
		return m[k]
	}
	for i, t := range twins {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("fairness: counterfactual flips: %w", err)
			}
		}
		o, w := t.OriginalScore > threshold, t.TwinScore > threshold
		flip := o != w
		for _, a := range []*acc{get(byAttr, t.Attribute), get(byPair, pairKey(t))} {
			a.pairs++
			if flip {
				a.flips++
				if o {
					a.p2n++
				} else {
					a.n2p++
				}
			}
		}
		anyFlip[t.Original] = anyFlip[t.Original] || flip
	}
	for _, f := range anyFlip {
		any.pairs++
		if f {
			any.flips++
		}
	}
	rate := func(k string, a *acc) FlipRate {
		r := FlipRate{Key: k, Pairs: a.pairs, Flips: a.flips, NegToPos: a.n2p, PosToNeg: a.p2n}
		r.Rate = float64(a.flips) / float64(a.pairs)
		r.Lo, r.Hi = ci95(a.flips, a.pairs)
		return r
	}
	rep := &FlipReport{Convention: flipConvention, Threshold: threshold, Interval: "Clopper–Pearson two-sided 95%"}
	for _, k := range sortedKeys(byAttr) {
		rep.ByAttribute = append(rep.ByAttribute, rate(k, byAttr[k]))
	}
	for _, k := range sortedKeys(byPair) {
		rep.ByPair = append(rep.ByPair, rate(k, byPair[k]))
	}
	rep.AnyFlip = rate("any", &any)
	return rep, nil
}

func pairKey(t Twin) string { return t.Attribute + ":" + t.From + "->" + t.To }

// Metrics returns the flip rates under the names of the package doc.
func (r *FlipReport) Metrics() map[string]float64 {
	m := map[string]float64{
		"fairness.counterfactual_any_flip_rate":       r.AnyFlip.Rate,
		"fairness.counterfactual_any_flip_rate_upper": r.AnyFlip.Hi,
	}
	for _, f := range slices.Concat(r.ByAttribute, r.ByPair) {
		m["fairness.counterfactual_flip_rate."+f.Key] = f.Rate
		m["fairness.counterfactual_flip_rate_upper."+f.Key] = f.Hi
	}
	return m
}

// OutputChange summarises |f(x) − f(x′)| over counterfactual twins of a
// regression model.
type OutputChange struct {
	Key            string // attribute, or "all"
	Pairs          int
	MeanAbsChange  float64
	MaxAbsChange   float64
	ShareAboveTol  float64 // share of pairs with |Δ| > Tolerance
	AboveTolerance int
}

// OutputChangeReport is the result of CounterfactualOutputChange.
type OutputChangeReport struct {
	Tolerance   float64
	All         OutputChange
	ByAttribute []OutputChange
}

// CounterfactualOutputChange measures how much a regressor's output moves
// when only a protected attribute changes: mean and max |f(x) − f(x′)| and
// the share of twins moving by more than tolerance (strictly).
func CounterfactualOutputChange(ctx context.Context, twins []Twin, tolerance float64) (*OutputChangeReport, error) {
	if err := validateTwins(twins); err != nil {
		return nil, err
	}
	if !(tolerance >= 0) {
		return nil, fmt.Errorf("fairness: output-change tolerance %v: want ≥ 0", tolerance)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fairness: counterfactual output change: %w", err)
	}
	byAttr := map[string]*OutputChange{}
	all := &OutputChange{Key: "all"}
	for _, t := range twins {
		d := math.Abs(t.OriginalScore - t.TwinScore)
		a := byAttr[t.Attribute]
		if a == nil {
			a = &OutputChange{Key: t.Attribute}
			byAttr[t.Attribute] = a
		}
		for _, c := range []*OutputChange{a, all} {
			c.Pairs++
			c.MeanAbsChange += d
			c.MaxAbsChange = max(c.MaxAbsChange, d)
			if d > tolerance {
				c.AboveTolerance++
			}
		}
	}
	fin := func(c *OutputChange) OutputChange {
		c.MeanAbsChange /= float64(c.Pairs)
		c.ShareAboveTol = float64(c.AboveTolerance) / float64(c.Pairs)
		return *c
	}
	rep := &OutputChangeReport{Tolerance: tolerance, All: fin(all)}
	for _, k := range sortedKeys(byAttr) {
		rep.ByAttribute = append(rep.ByAttribute, fin(byAttr[k]))
	}
	return rep, nil
}

// Metrics returns the output changes under the names of the package doc.
func (r *OutputChangeReport) Metrics() map[string]float64 {
	m := map[string]float64{}
	for _, c := range append([]OutputChange{r.All}, r.ByAttribute...) {
		m["fairness.counterfactual_output_change_mean."+c.Key] = c.MeanAbsChange
		m["fairness.counterfactual_output_change_max."+c.Key] = c.MaxAbsChange
		m["fairness.counterfactual_output_change_share."+c.Key] = c.ShareAboveTol
	}
	return m
}
