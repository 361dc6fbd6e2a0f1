package fairness

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Config configures Evaluate and EvaluateRegression. The zero value works
// for a frame with one protected column per set, except that the AIF360
// signed metrics of a classifier need Privileged.
type Config struct {
	// AttributeSets lists the attribute sets to evaluate; a set of several
	// columns forms intersectional groups (the observed cartesian product).
	// Nil means each protected column on its own.
	AttributeSets [][]string
	// Privileged is the privileged value of each protected column, the
	// reference of the AIF360 signed metrics and of the aequitas disparity
	// ratios. The privileged group of a set is the combination of its
	// columns' privileged values. Required by Evaluate for every column in
	// a set; ignored by EvaluateRegression.
	Privileged map[string]string
	// MinGroupSize is the fewest rows a group needs to be measured; smaller
	// groups are listed with their size and left out of every metric.
	// 0 means DefaultMinGroupSize.
	MinGroupSize int
	// Bootstrap adds percentile-bootstrap intervals to the headline metrics.
	Bootstrap Bootstrap
}

// conventions names the source convention of every headline metric, so a
// reader can match a number to fairlearn, AIF360 or aequitas. The entries of
// the metrics a report has are copied into Summary.Conventions.
var conventions = map[string]string{
	"selection_rate":                      "P(ŷ=1|A=g), sample-weighted (fairlearn selection_rate)",
	"demographic_parity_difference":       "max_g SR_g − min_g SR_g over measured groups (fairlearn, method=between_groups)",
	"demographic_parity_ratio":            "min_g SR_g / max_g SR_g (fairlearn, method=between_groups)",
	"statistical_parity_difference":       "SR_unpriv − SR_priv, unprivileged = all rows outside the privileged group (AIF360)",
	"disparate_impact_ratio":              "SR_unpriv / SR_priv, 0 with a warning when SR_priv = 0 (AIF360; four-fifths rule flags < 0.8)",
	"equal_opportunity_difference":        "max_g TPR_g − min_g TPR_g (fairlearn convention)",
	"equal_opportunity_difference_aif360": "TPR_unpriv − TPR_priv, signed (AIF360 convention)",
	"equalized_odds_difference":           "max(ΔTPR, ΔFPR), worst case between groups (fairlearn default)",
	"equalized_odds_ratio":                "min(TPR ratio, FPR ratio), each min_g/max_g (fairlearn default)",
	"average_odds_difference":             "[(FPR_u−FPR_p)+(TPR_u−TPR_p)]/2 (AIF360)",
	"disparity_tolerance_pass":            "1 iff every measured group has 0.8 ≤ SR_g/SR_priv ≤ 1.25 (aequitas impact parity, tau 0.8)",
	"groups":                              "observed groups of the set (fairlearn: observed cartesian product)",
	"groups_below_min_size":               "groups with fewer rows than MinGroupSize, listed but not measured",
}

// SetResult holds the headline metrics of one attribute set. A metric that
// is undefined (too few measured groups, no positives, …) is NaN here,
// absent from Summary.Metrics, and explained in Summary.Warnings.
type SetResult struct {
	Attributes []string // the set's columns
	Name       string   // columns joined by "&", the suffix of its metric names
	Privileged string   // privileged group label (values joined by "&")

	Groups       int         // observed groups
	BelowMinSize []GroupSize // groups listed but not measured

	// fairlearn between_groups conventions (≥ 0 differences, ≤ 1 ratios).
	DemographicParityDifference float64
	DemographicParityRatio      float64
	EqualOpportunityDifference  float64 // max TPR − min TPR
	EqualizedOddsDifference     float64
	EqualizedOddsRatio          float64

	// AIF360 conventions: signed, unprivileged pooled vs privileged.
	StatisticalParityDifference      float64
	DisparateImpactRatio             float64
	EqualOpportunityDifferenceAIF360 float64 // TPR_u − TPR_p
	AverageOddsDifference            float64

	// DisparityTolerancePass is aequitas' 0.8 ≤ SR_g/SR_priv ≤ 1.25 for
	// every measured group.
	DisparityTolerancePass bool
}

// GroupSize names a group that was too small to measure.
type GroupSize struct {
	Group string
	Size  int
}

// GroupRow is one row of the per-group table: one row per (attribute set,
// group), every observed group included. It is the Parquet schema notebooks
// read (column names are the parquet tags):
//
//	attributes        attribute set, columns joined by "&" ("race&sex")
//	group             group label, values joined by "&" ("black&female")
//	privileged        the set's privileged (reference) group
//	size              rows in the group (unweighted)
//	weight            sum of the group's sample weights (= size without weights)
//	measured          false: below MinGroupSize; every metric below is NaN
//	selection_rate    P(ŷ=1), weighted
//	tpr, fpr          true/false positive rate, weighted; NaN without positives/negatives
//	accuracy          P(ŷ=y), weighted
//	mean_score        weighted mean score; NaN when the frame has no score
//	sr_disparity      selection_rate / the privileged group's (aequitas pprev disparity)
//	tpr_disparity     tpr / the privileged group's
//	fpr_disparity     fpr / the privileged group's
//	disparity_pass    0.8 ≤ sr_disparity ≤ 1.25 (aequitas disparity tolerance)
type GroupRow struct {
	Attributes    string  `parquet:"attributes"`
	Group         string  `parquet:"group"`
	Privileged    bool    `parquet:"privileged"`
	Size          int64   `parquet:"size"`
	Weight        float64 `parquet:"weight"`
	Measured      bool    `parquet:"measured"`
	SelectionRate float64 `parquet:"selection_rate"`
	TPR           float64 `parquet:"tpr"`
	FPR           float64 `parquet:"fpr"`
	Accuracy      float64 `parquet:"accuracy"`
	MeanScore     float64 `parquet:"mean_score"`
	SRDisparity   float64 `parquet:"sr_disparity"`
	TPRDisparity  float64 `parquet:"tpr_disparity"`
	FPRDisparity  float64 `parquet:"fpr_disparity"`
	DisparityPass bool    `parquet:"disparity_pass"`
}

// Report is the result of Evaluate.
type Report struct {
	Sets    []SetResult
	Groups  []GroupRow
	Summary Summary
}

// Aequitas disparity tolerance: a ratio to the reference group passes iff
// it lies in [DisparityLow, DisparityHigh].
const (
	DisparityLow  = 0.8
	DisparityHigh = 1.25
)

// Evaluate computes group fairness metrics of a binary classifier for every
// attribute set of cfg.
func Evaluate(ctx context.Context, f Frame, cfg Config) (*Report, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Bootstrap.validate(); err != nil {
		return nil, err
	}
	n := f.Rows()
	sets := attributeSets(cfg.AttributeSets, f.Protected)
	gs := make([]*grouping, len(sets))
	refs := make([]int, len(sets))
	for i, attrs := range sets {
		g, err := newGrouping(attrs, f.Protected, n)
		if err != nil {
			return nil, err
		}
		ref, err := privilegedGroup(g, cfg.Privileged, f.Protected)
		if err != nil {
			return nil, err
		}
		gs[i], refs[i] = g, ref
	}
	ms := minSize(cfg.MinGroupSize)
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	rep := &Report{Summary: newSummary()}
	for i, g := range gs {
		sr, rows := evalSet(f, g, refs[i], ms, all, &rep.Summary.Warnings)
		rep.Sets = append(rep.Sets, sr)
		rep.Groups = append(rep.Groups, rows...)
		sr.addMetrics(rep.Summary.Metrics)
	}
	for k := range rep.Summary.Metrics {
		rep.Summary.Conventions[baseName(k)] = conventions[baseName(k)]
	}
	if cfg.Bootstrap.NBoot > 0 {
		stat := func(idx []int) map[string]float64 {
			m := map[string]float64{}
			for i, g := range gs {
				sr, _ := evalSet(f, g, refs[i], ms, idx, nil)
				sr.addMetrics(m)
			}
			return m
		}
		if err := rep.Summary.bootstrap(ctx, n, cfg.Bootstrap, stat); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func privilegedGroup(g *grouping, priv map[string]string, protected map[string][]string) (int, error) {
	vals := make([]string, len(g.attrs))
	for j, a := range g.attrs {
		v, ok := priv[a]
		if !ok {
			return 0, fmt.Errorf("fairness: attribute %s: no privileged value: set Config.Privileged[%q] to the reference group of the AIF360 metrics", a, a)
		}
		if !slices.Contains(protected[a], v) {
			return 0, fmt.Errorf("fairness: attribute %s: privileged value %q is not observed in the column: fix Config.Privileged[%q]", a, v, a)
		}
		vals[j] = v
	}
	label := strings.Join(vals, setSep)
	for i, l := range g.labels {
		if l == label {
			return i, nil
		}
	}
	return 0, fmt.Errorf("fairness: attribute set %s: privileged group %q does not occur in the data: no row has all privileged values", g.name, label)
}

// counts are the weighted confusion counts of one group.
type counts struct {
	n              int
	w, wPred       float64
	tp, fn, fp, tn float64
	scoreW         float64 // Σ w·score
}

func (c *counts) add(o counts) {
	c.n += o.n
	c.w += o.w
	c.wPred += o.wPred
	c.tp += o.tp
	c.fn += o.fn
	c.fp += o.fp
	c.tn += o.tn
	c.scoreW += o.scoreW
}

func (c counts) sr() float64  { return ratio(c.wPred, c.w) }
func (c counts) tpr() float64 { return ratio(c.tp, c.tp+c.fn) }
func (c counts) fpr() float64 { return ratio(c.fp, c.fp+c.tn) }
func (c counts) acc() float64 { return ratio(c.tp+c.tn, c.w) }

// ratio is a/b, NaN when b is 0 (the rate is undefined, not zero).
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func tally(f Frame, g *grouping, idx []int) []counts {
	cs := make([]counts, len(g.labels))
	for _, i := range idx {
		w := 1.0
		if f.Weight != nil {
			w = f.Weight[i]
		}
		c := &cs[g.of[i]]
		c.n++
		c.w += w
		if f.Score != nil {
			c.scoreW += w * f.Score[i]
		}
		p, t := f.YPred[i], f.YTrue[i]
		if p == 1 {
			c.wPred += w
		}
		switch {
		case t == 1 && p == 1:
			c.tp += w
		case t == 1:
			c.fn += w
		case p == 1:
			c.fp += w
		default:
			c.tn += w
		}
	}
	return cs
}

// evalSet computes one set's metrics over the rows idx (all rows, or a
// bootstrap resample). warn is nil during bootstrap replicates.
func evalSet(f Frame, g *grouping, ref, minN int, idx []int, warn *[]string) (SetResult, []GroupRow) {
	warnf := func(format string, a ...any) {
		if warn != nil {
			*warn = append(*warn, fmt.Sprintf("%s: ", g.name)+fmt.Sprintf(format, a...))
		}
	}
	nan := math.NaN()
	sr := SetResult{
		Attributes: g.attrs, Name: g.name, Privileged: g.labels[ref], Groups: len(g.labels),
		DemographicParityDifference: nan, DemographicParityRatio: nan,
		EqualOpportunityDifference: nan, EqualizedOddsDifference: nan, EqualizedOddsRatio: nan,
		StatisticalParityDifference: nan, DisparateImpactRatio: nan,
		EqualOpportunityDifferenceAIF360: nan, AverageOddsDifference: nan,
	}
	cs := tally(f, g, idx)
	var measured []int
	for gi, c := range cs {
		if c.n >= minN {
			measured = append(measured, gi)
		} else {
			sr.BelowMinSize = append(sr.BelowMinSize, GroupSize{Group: g.labels[gi], Size: c.n})
		}
	}
	if len(sr.BelowMinSize) > 0 {
		warnf("%d group(s) below the minimum size %d are listed but not measured: %v", len(sr.BelowMinSize), minN, sr.BelowMinSize)
	}

	// fairlearn between_groups: extremes over measured groups whose rate
	// is defined.
	spread := func(rate func(counts) float64, what string) (lo, hi float64, ok bool) {
		lo, hi = math.Inf(1), math.Inf(-1)
		k := 0
		for _, gi := range measured {
			r := rate(cs[gi])
			if math.IsNaN(r) {
				warnf("%s undefined for group %s (no rows of that kind): left out of the between-groups %s metrics", what, g.labels[gi], what)
				continue
			}
			lo, hi = min(lo, r), max(hi, r)
			k++
		}
		if k < 2 {
			warnf("%s defined for %d measured group(s), need 2: between-groups %s metrics omitted", what, k, what)
			return 0, 0, false
		}
		return lo, hi, true
	}
	betweenRatio := func(lo, hi float64, what string) float64 {
		if hi == 0 {
			warnf("every measured group has %s 0: the %s ratio is 0/0 and is omitted", what, what)
			return nan
		}
		return lo / hi
	}
	if lo, hi, ok := spread(counts.sr, "selection rate"); ok {
		sr.DemographicParityDifference = hi - lo
		sr.DemographicParityRatio = betweenRatio(lo, hi, "selection rate")
	}
	tLo, tHi, tOK := spread(counts.tpr, "TPR")
	fLo, fHi, fOK := spread(counts.fpr, "FPR")
	if tOK {
		sr.EqualOpportunityDifference = tHi - tLo
	}
	if tOK && fOK {
		sr.EqualizedOddsDifference = max(tHi-tLo, fHi-fLo)
		rt, rf := betweenRatio(tLo, tHi, "TPR"), betweenRatio(fLo, fHi, "FPR")
		switch {
		case math.IsNaN(rt):
			sr.EqualizedOddsRatio = rf
		case math.IsNaN(rf):
			sr.EqualizedOddsRatio = rt
		default:
			sr.EqualizedOddsRatio = min(rt, rf)
		}
	}

	// AIF360: privileged group vs all other rows pooled (small groups are
	// still people and stay in the pool).
	p := cs[ref]
	var u counts
	for gi, c := range cs {
		if gi != ref {
			u.add(c)
		}
	}
	switch {
	case p.n < minN:
		warnf("privileged group %s has %d rows, below the minimum %d: AIF360 signed metrics and disparity ratios omitted", g.labels[ref], p.n, minN)
	case u.n < minN:
		warnf("unprivileged rows number %d, below the minimum %d: AIF360 signed metrics omitted", u.n, minN)
	default:
		sr.StatisticalParityDifference = u.sr() - p.sr()
		if p.sr() == 0 {
			warnf("privileged selection rate is 0: disparate impact ratio reported as 0 (AIF360 convention)")
			sr.DisparateImpactRatio = 0
		} else {
			sr.DisparateImpactRatio = u.sr() / p.sr()
		}
		sr.EqualOpportunityDifferenceAIF360 = u.tpr() - p.tpr()
		sr.AverageOddsDifference = ((u.fpr() - p.fpr()) + (u.tpr() - p.tpr())) / 2
		if math.IsNaN(sr.AverageOddsDifference) {
			warnf("TPR or FPR undefined for the privileged or unprivileged rows: equal opportunity/average odds (AIF360) omitted")
		}
	}

	rows := make([]GroupRow, len(cs))
	refMeasured := p.n >= minN
	sr.DisparityTolerancePass = refMeasured
	for gi, c := range cs {
		r := GroupRow{
			Attributes: g.name, Group: g.labels[gi], Privileged: gi == ref,
			Size: int64(c.n), Weight: c.w, Measured: c.n >= minN,
			SelectionRate: nan, TPR: nan, FPR: nan, Accuracy: nan, MeanScore: nan,
			SRDisparity: nan, TPRDisparity: nan, FPRDisparity: nan,
		}
		if r.Measured {
			r.SelectionRate, r.TPR, r.FPR, r.Accuracy = c.sr(), c.tpr(), c.fpr(), c.acc()
			if f.Score != nil {
				r.MeanScore = ratio(c.scoreW, c.w)
			}
			if refMeasured {
				r.SRDisparity = ratio(r.SelectionRate, p.sr())
				r.TPRDisparity = ratio(r.TPR, p.tpr())
				r.FPRDisparity = ratio(r.FPR, p.fpr())
				r.DisparityPass = r.SRDisparity >= DisparityLow && r.SRDisparity <= DisparityHigh
				if !r.DisparityPass {
					sr.DisparityTolerancePass = false
				}
			}
		}
		rows[gi] = r
	}
	if refMeasured && p.sr() == 0 {
		warnf("privileged selection rate is 0: selection-rate disparities are undefined and fail the tolerance")
	}
	return sr, rows
}

func (s SetResult) addMetrics(m map[string]float64) {
	put := func(name string, v float64) {
		if !math.IsNaN(v) {
			m["fairness."+name+"."+s.Name] = v
		}
	}
	put("demographic_parity_difference", s.DemographicParityDifference)
	put("demographic_parity_ratio", s.DemographicParityRatio)
	put("equal_opportunity_difference", s.EqualOpportunityDifference)
	put("equalized_odds_difference", s.EqualizedOddsDifference)
	put("equalized_odds_ratio", s.EqualizedOddsRatio)
	put("statistical_parity_difference", s.StatisticalParityDifference)
	put("disparate_impact_ratio", s.DisparateImpactRatio)
	put("equal_opportunity_difference_aif360", s.EqualOpportunityDifferenceAIF360)
	put("average_odds_difference", s.AverageOddsDifference)
	pass := 0.0
	if s.DisparityTolerancePass {
		pass = 1
	}
	put("disparity_tolerance_pass", pass)
	put("groups", float64(s.Groups))
	put("groups_below_min_size", float64(len(s.BelowMinSize)))
}

// SelectionRate is P(ŷ=1), weighted by w when w is not nil (fairlearn
// selection_rate with sample_weight).
func SelectionRate(yPred []int, w []float64) (float64, error) {
	if len(yPred) == 0 {
		return 0, fmt.Errorf("fairness: selection rate: y_pred is empty")
	}
	if err := checkBinary("y_pred", yPred); err != nil {
		return 0, err
	}
	if err := checkWeights(w, len(yPred)); err != nil {
		return 0, err
	}
	var num, den float64
	for i, p := range yPred {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		num += wi * float64(p)
		den += wi
	}
	if den == 0 {
		return 0, fmt.Errorf("fairness: selection rate: weights sum to 0")
	}
	return num / den, nil
}
