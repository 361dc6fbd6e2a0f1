package fairness

import (
	"context"
	"fmt"
	"math"
)

// RegressionFrame is the columnar input of a regression fairness
// evaluation.
type RegressionFrame struct {
	YTrue, YPred []float64
	Weight       []float64 // optional sample weights
	Protected    map[string][]string
}

func (f RegressionFrame) validate() error {
	n := len(f.YTrue)
	if n == 0 {
		return fmt.Errorf("fairness: empty frame: y_true has no rows")
	}
	if len(f.YPred) != n {
		return fmt.Errorf("fairness: column y_pred has %d rows, y_true has %d: columns must be the same length", len(f.YPred), n)
	}
	if err := checkFinite("y_true", f.YTrue); err != nil {
		return err
	}
	if err := checkFinite("y_pred", f.YPred); err != nil {
		return err
	}
	if err := checkWeights(f.Weight, n); err != nil {
		return err
	}
	return checkProtected(f.Protected, n)
}

// RegressionGroupRow is one row of the regression per-group table (Parquet
// schema; metrics are NaN when measured is false):
//
//	attributes, group, size, weight, measured   as in GroupRow
//	mean_prediction   weighted mean of y_pred
//	mae               weighted mean |y_pred − y_true|
//	rmse              sqrt of the weighted mean (y_pred − y_true)²
type RegressionGroupRow struct {
	Attributes     string  `parquet:"attributes"`
	Group          string  `parquet:"group"`
	Size           int64   `parquet:"size"`
	Weight         float64 `parquet:"weight"`
	Measured       bool    `parquet:"measured"`
	MeanPrediction float64 `parquet:"mean_prediction"`
	MAE            float64 `parquet:"mae"`
	RMSE           float64 `parquet:"rmse"`
}

// RegressionSet holds the headline metrics of one attribute set; NaN and
// empty group names when fewer than two groups are measured.
type RegressionSet struct {
	Attributes   []string
	Name         string
	Groups       int
	BelowMinSize []GroupSize
	// MeanPredictionGap is max_g − min_g of the group mean prediction
	// (fairlearn mean_prediction, between_groups).
	MeanPredictionGap float64
	WorstMAE          float64 // highest group MAE
	WorstMAEGroup     string
	WorstRMSE         float64 // highest group RMSE
	WorstRMSEGroup    string
}

// RegressionReport is the result of EvaluateRegression.
type RegressionReport struct {
	Sets    []RegressionSet
	Groups  []RegressionGroupRow
	Summary Summary
}

// EvaluateRegression computes group fairness of a regressor's continuous
// outputs: the mean-prediction gap and the worst group's MAE and RMSE.
func EvaluateRegression(ctx context.Context, f RegressionFrame, cfg Config) (*RegressionReport, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Bootstrap.validate(); err != nil {
		return nil, err
	}
	n := len(f.YTrue)
	var gs []*grouping
	for _, attrs := range attributeSets(cfg.AttributeSets, f.Protected) {
		g, err := newGrouping(attrs, f.Protected, n)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	ms := minSize(cfg.MinGroupSize)
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	rep := &RegressionReport{Summary: newSummary()}
	for _, g := range gs {
		s, rows := evalRegressionSet(f, g, ms, all, &rep.Summary.Warnings)
		rep.Sets = append(rep.Sets, s)
		rep.Groups = append(rep.Groups, rows...)
		s.addMetrics(rep.Summary.Metrics)
	}
	for k := range rep.Summary.Metrics {
		rep.Summary.Conventions[baseName(k)] = regressionConventions[baseName(k)]
	}
	if cfg.Bootstrap.NBoot > 0 {
		stat := func(idx []int) map[string]float64 {
			m := map[string]float64{}
			for _, g := range gs {
				s, _ := evalRegressionSet(f, g, ms, idx, nil)
				s.addMetrics(m)
			}
			return m
		}
		if err := rep.Summary.bootstrap(ctx, n, cfg.Bootstrap, stat); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

var regressionConventions = map[string]string{
	"mean_prediction_gap":   "max_g − min_g of the weighted group mean prediction (fairlearn mean_prediction, between_groups)",
	"worst_group_mae":       "max_g of the weighted group mean absolute error",
	"worst_group_rmse":      "max_g of the weighted group root mean squared error",
	"groups":                "observed groups of the set (fairlearn: observed cartesian product)",
	"groups_below_min_size": "groups with fewer rows than MinGroupSize, listed but not measured",
}

func evalRegressionSet(f RegressionFrame, g *grouping, minN int, idx []int, warn *[]string) (RegressionSet, []RegressionGroupRow) {
	type acc struct {
		n               int
		w, pred, ae, se float64
	}
	as := make([]acc, len(g.labels))
	for _, i := range idx {
		w := 1.0
		if f.Weight != nil {
			w = f.Weight[i]
		}
		a := &as[g.of[i]]
		d := f.YPred[i] - f.YTrue[i]
		a.n++
		a.w += w
		a.pred += w * f.YPred[i]
		a.ae += w * math.Abs(d)
		a.se += w * d * d
	}
	nan := math.NaN()
	s := RegressionSet{Attributes: g.attrs, Name: g.name, Groups: len(g.labels),
		MeanPredictionGap: nan, WorstMAE: nan, WorstRMSE: nan}
	rows := make([]RegressionGroupRow, len(as))
	lo, hi := math.Inf(1), math.Inf(-1)
	measured := 0
	for gi, a := range as {
		r := RegressionGroupRow{Attributes: g.name, Group: g.labels[gi], Size: int64(a.n), Weight: a.w,
			Measured: a.n >= minN && a.w > 0, MeanPrediction: nan, MAE: nan, RMSE: nan}
		if !r.Measured {
			s.BelowMinSize = append(s.BelowMinSize, GroupSize{Group: g.labels[gi], Size: a.n})
			rows[gi] = r
			continue
		}
		measured++
		r.MeanPrediction, r.MAE, r.RMSE = a.pred/a.w, a.ae/a.w, math.Sqrt(a.se/a.w)
		lo, hi = min(lo, r.MeanPrediction), max(hi, r.MeanPrediction)
		if s.WorstMAEGroup == "" || r.MAE > s.WorstMAE {
			s.WorstMAE, s.WorstMAEGroup = r.MAE, r.Group
		}
		if s.WorstRMSEGroup == "" || r.RMSE > s.WorstRMSE {
			s.WorstRMSE, s.WorstRMSEGroup = r.RMSE, r.Group
		}
		rows[gi] = r
	}
	if warn != nil && len(s.BelowMinSize) > 0 {
		*warn = append(*warn, fmt.Sprintf("%s: %d group(s) below the minimum size %d (or of zero weight) are listed but not measured: %v", g.name, len(s.BelowMinSize), minN, s.BelowMinSize))
	}
	if measured >= 2 {
		s.MeanPredictionGap = hi - lo
	} else if warn != nil {
		*warn = append(*warn, fmt.Sprintf("%s: %d measured group(s), need 2: mean prediction gap omitted", g.name, measured))
	}
	return s, rows
}

func (s RegressionSet) addMetrics(m map[string]float64) {
	put := func(name string, v float64) {
		if !math.IsNaN(v) {
			m["fairness."+name+"."+s.Name] = v
		}
	}
	put("mean_prediction_gap", s.MeanPredictionGap)
	put("worst_group_mae", s.WorstMAE)
	put("worst_group_rmse", s.WorstRMSE)
	put("groups", float64(s.Groups))
	put("groups_below_min_size", float64(len(s.BelowMinSize)))
}
