package activities

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/fairness"
	"github.com/sandgate/sandgate/modelapi"
)

// PredictionRow is one scored profile of the fairness suite
// (results/fairness/predictions/): originals and their counterfactual twins.
type PredictionRow struct {
	ID               int64   `parquet:"id"`
	TwinOf           int64   `parquet:"twin_of"`                // -1 for originals
	FlippedAttribute string  `parquet:"flipped_attribute,dict"` // "" for originals
	Score            float64 `parquet:"score"`                  // classifier: p(favourable class); regressor: the output
	Decision         bool    `parquet:"decision"`               // classifier: score > threshold
}

// FairnessSuite scores the synthetic population (originals and twins)
// through the model's OIP endpoint and computes group and counterfactual
// fairness; per-group tables and every prediction go to
// results/fairness/ as Parquet.
func (a *Activities) FairnessSuite(ctx context.Context, in SuiteInput) (SuiteResult, error) {
	f := in.Fairness
	if f == nil || in.Tabular == nil {
		return SuiteResult{}, badInput("fairness suite: no suites.fairness config or dataset")
	}
	client, meta, err := a.oip(ctx, in)
	if err != nil {
		return SuiteResult{}, err
	}
	inputs := inputNames(meta)
	pop, err := a.readPopulation(ctx, *in.Tabular, inputs, extraColumns(f))
	if err != nil {
		return SuiteResult{}, err
	}
	outputs, stats, err := client.PredictTable(ctx, pop.Features)
	if err != nil {
		return SuiteResult{}, fmt.Errorf("score %d profiles: %w", pop.Features.Len(), err)
	}
	scores := make([]float64, len(outputs))
	for i, o := range outputs {
		idx := f.Output
		if in.ModelType == config.TypeRegressor {
			idx = 0
		}
		if idx >= len(o) {
			return SuiteResult{}, badInput("suites.fairness.output is %d but the model returns %d values per row", f.Output, len(o))
		}
		scores[i] = o[idx]
	}

	files, err := a.newSuiteFiles(in.ReleaseID, SuiteFairness, f.Dataset.Seed)
	if err != nil {
		return SuiteResult{}, err
	}
	preds := make([]PredictionRow, len(scores))
	for i := range scores {
		preds[i] = PredictionRow{ID: pop.ID[i], TwinOf: pop.TwinOf[i], FlippedAttribute: pop.Flipped[i], Score: scores[i],
			Decision: in.ModelType == config.TypeClassifier && scores[i] > f.Threshold}
	}
	if err := writeTable(ctx, files, "predictions", preds); err != nil {
		return SuiteResult{}, err
	}

	// Group metrics are over the originals; twins feed the counterfactual metrics.
	var orig []int
	for i, tw := range pop.TwinOf {
		if tw < 0 {
			orig = append(orig, i)
		}
	}
	protected := map[string][]string{}
	for _, attr := range f.Protected {
		col, ok := pop.Extra.Column(attr)
		if !ok {
			return SuiteResult{}, badInput("suites.fairness.protected: column %q is not in the dataset", attr)
		}
		vals := make([]string, len(orig))
		for j, i := range orig {
			vals[j] = text(col, i)
		}
		protected[attr] = vals
	}
	cfg := fairness.Config{
		AttributeSets: attributeSets(f), Privileged: f.Privileged, MinGroupSize: f.MinGroupSize,
		Bootstrap: fairness.Bootstrap{NBoot: f.Bootstrap, Seed: in.Seed},
	}
	twins := twinsOf(pop, scores)

	res := SuiteResult{Suite: SuiteFairness, Metrics: map[string]float64{}, Queries: stats.Rows}
	sec := audit.SuiteSection{Name: SuiteFairness}
	if in.ModelType == config.TypeRegressor {
		err = a.regressionFairness(ctx, in, pop, orig, scores, protected, cfg, twins, files, &res, &sec)
	} else {
		err = a.classifierFairness(ctx, in, pop, orig, scores, protected, cfg, twins, files, &res, &sec)
	}
	if err != nil {
		return SuiteResult{}, err
	}
	res.ManifestKey, res.Rows, err = files.finish(ctx)
	if err != nil {
		return SuiteResult{}, err
	}
	sec.Metrics = res.Metrics
	res.Section = sec
	return res, nil
}

func (a *Activities) classifierFairness(ctx context.Context, in SuiteInput, pop population, orig []int, scores []float64,
	protected map[string][]string, cfg fairness.Config, twins []fairness.Twin, files *suiteFiles, res *SuiteResult, sec *audit.SuiteSection) error {
	f := in.Fairness
	frame := fairness.Frame{YTrue: make([]int, len(orig)), YPred: make([]int, len(orig)), Score: make([]float64, len(orig)), Protected: protected}
	label, hasLabel := pop.Extra.Column(f.LabelColumn)
	for j, i := range orig {
		frame.Score[j] = scores[i]
		if scores[i] > f.Threshold {
			frame.YPred[j] = 1
		}
		if hasLabel && text(label, i) == f.FavorableLabel {
			frame.YTrue[j] = 1
		}
	}
	if !hasLabel {
		// Without ground truth only selection-rate metrics mean anything;
		// y_true = y_pred keeps the package's checks and its error-rate
		// metrics are dropped below.
		copy(frame.YTrue, frame.YPred)
	}
	rep, err := fairness.Evaluate(ctx, frame, cfg)
	if err != nil {
		return badInput("fairness: %v", err)
	}
	for k, v := range rep.Summary.Metrics {
		if !hasLabel && (strings.Contains(k, "equal_opportunity") || strings.Contains(k, "odds")) {
			continue
		}
		res.Metrics[k] = v
	}
	if err := writeTable(ctx, files, "groups", rep.Groups); err != nil {
		return err
	}
	flips, err := fairness.CounterfactualFlips(ctx, twins, f.Threshold)
	if err != nil {
		return badInput("counterfactual flips: %v", err)
	}
	for k, v := range flips.Metrics() {
		res.Metrics[k] = v
	}
	addWorstCases(res.Metrics, f)
	sec.Notes = append(sec.Notes, rep.Summary.Warnings...)
	sec.Notes = append(sec.Notes,
		"Conventions: group metrics as fairlearn (differences ≥ 0, ratios ≤ 1) and AIF360 (signed, unprivileged − privileged); "+flips.Convention+".",
		fmt.Sprintf("Groups smaller than %d profiles are listed but not measured.", f.MinGroupSize))
	sec.Tables = append(sec.Tables, groupTable(rep.Groups), flipTable(flips))
	dir := res.Metrics["fairness.disparate_impact_ratio"]
	sec.Summary = fmt.Sprintf("Fairness: %d applicants and %d counterfactual twins scored; lowest disparate impact ratio %.3f; %.2f%% of applicants change decision when only a protected attribute changes.",
		len(orig), len(twins), dir, 100*flips.AnyFlip.Rate)
	return nil
}

func (a *Activities) regressionFairness(ctx context.Context, in SuiteInput, pop population, orig []int, scores []float64,
	protected map[string][]string, cfg fairness.Config, twins []fairness.Twin, files *suiteFiles, res *SuiteResult, sec *audit.SuiteSection) error {
	f := in.Fairness
	frame := fairness.RegressionFrame{YTrue: make([]float64, len(orig)), YPred: make([]float64, len(orig)), Protected: protected}
	label, hasLabel := pop.Extra.Column(f.LabelColumn)
	for j, i := range orig {
		frame.YPred[j] = scores[i]
		frame.YTrue[j] = scores[i]
		if hasLabel && label.Type != modelapi.String {
			frame.YTrue[j] = label.Float(i)
		}
	}
	hasLabel = hasLabel && label.Type != modelapi.String
	rep, err := fairness.EvaluateRegression(ctx, frame, cfg)
	if err != nil {
		return badInput("fairness: %v", err)
	}
	for k, v := range rep.Summary.Metrics {
		if !hasLabel && strings.Contains(k, "worst_group") {
			continue
		}
		res.Metrics[k] = v
	}
	if err := writeTable(ctx, files, "groups", rep.Groups); err != nil {
		return err
	}
	change, err := fairness.CounterfactualOutputChange(ctx, twins, f.Tolerance)
	if err != nil {
		return badInput("counterfactual output change: %v", err)
	}
	for k, v := range change.Metrics() {
		res.Metrics[k] = v
	}
	addWorstCases(res.Metrics, f)
	sec.Notes = append(sec.Notes, rep.Summary.Warnings...)
	sec.Summary = fmt.Sprintf("Fairness (regression): %d profiles and %d twins scored; largest group mean gap %.4g; mean output change under a protected-attribute flip %.4g (%.1f%% of twins move more than %.4g).",
		len(orig), len(twins), res.Metrics["fairness.mean_prediction_gap"], change.All.MeanAbsChange, 100*change.All.ShareAboveTol, f.Tolerance)
	return nil
}

// attributeSets: each protected attribute alone, then all of them together
// when intersectional groups are asked for.
func attributeSets(f *config.Fairness) [][]string {
	var sets [][]string
	for _, p := range f.Protected {
		sets = append(sets, []string{p})
	}
	if f.Intersectional && len(f.Protected) > 1 {
		sets = append(sets, slices.Clone(f.Protected))
	}
	return sets
}

// twinsOf pairs each twin with its original by id.
func twinsOf(p population, scores []float64) []fairness.Twin {
	byID := indexOf(p.ID)
	var out []fairness.Twin
	for i, tw := range p.TwinOf {
		if tw < 0 {
			continue
		}
		o, ok := byID[tw]
		if !ok {
			continue
		}
		attr := p.Flipped[i]
		from, to := "", ""
		if c, ok := p.Extra.Column(attr); ok {
			from, to = text(c, o), text(c, i)
		}
		out = append(out, fairness.Twin{Original: strconv.FormatInt(tw, 10), Attribute: attr, From: from, To: to,
			OriginalScore: scores[o], TwinScore: scores[i]})
	}
	return out
}

// addWorstCases adds the gate's aliases: per-attribute names use the
// protected column (the intersectional set is "intersectional"), and the
// bare name is the worst case over attributes.
func addWorstCases(m map[string]float64, f *config.Fairness) {
	inter := strings.Join(f.Protected, "&")
	type rule struct {
		from, to string
		worst    func(a, b float64) bool // true when a is worse than b
	}
	lower := func(a, b float64) bool { return a < b }
	higher := func(a, b float64) bool { return a > b }
	absHigher := func(a, b float64) bool { return math.Abs(a) > math.Abs(b) }
	rules := []rule{
		{"fairness.demographic_parity_difference.", "fairness.demographic_parity_difference", higher},
		{"fairness.demographic_parity_ratio.", "fairness.demographic_parity_ratio", lower},
		{"fairness.disparate_impact_ratio.", "fairness.disparate_impact_ratio", lower},
		{"fairness.statistical_parity_difference.", "fairness.statistical_parity_difference", lower},
		{"fairness.equal_opportunity_difference.", "fairness.equal_opportunity_difference", higher},
		{"fairness.equalized_odds_difference.", "fairness.equalized_odds_difference", higher},
		{"fairness.average_odds_difference.", "fairness.average_odds_difference", absHigher},
		{"fairness.mean_prediction_gap.", "fairness.mean_prediction_gap", higher},
		{"fairness.worst_group_mae.", "fairness.worst_group_mae", higher},
		{"fairness.counterfactual_flip_rate.", "fairness.flip_rate", higher},
		{"fairness.counterfactual_flip_rate_upper.", "fairness.flip_rate_upper", higher},
		{"fairness.counterfactual_output_change_mean.", "fairness.counterfactual_change", higher},
		{"fairness.counterfactual_output_change_share.", "fairness.counterfactual_change_rate", higher},
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, r := range rules {
		var worst float64
		found := false
		for _, k := range keys {
			set, ok := strings.CutPrefix(k, r.from)
			if !ok || strings.Contains(set, ":") || strings.HasSuffix(set, ".ci_lo") || strings.HasSuffix(set, ".ci_hi") {
				continue
			}
			v := m[k]
			switch set {
			case inter:
				set = "intersectional"
			case "all":
				set = "any"
			}
			if strings.Contains(set, "&") {
				continue
			}
			m[r.to+"."+set] = v
			if set == "any" {
				continue
			}
			if !found || r.worst(v, worst) {
				worst, found = v, true
			}
		}
		if found {
			m[r.to] = worst
		}
	}
	if v, ok := m["fairness.counterfactual_any_flip_rate"]; ok {
		m["fairness.flip_rate.any"] = v
		m["fairness.flip_rate_upper.any"] = m["fairness.counterfactual_any_flip_rate_upper"]
	}
}

func groupTable(rows []fairness.GroupRow) audit.Table {
	t := audit.Table{Title: "Selection rate by group (measured groups)", Columns: []string{"attributes", "group", "size", "selection rate", "TPR", "FPR", "SR / privileged"}}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	for _, r := range rows {
		if !r.Measured || strings.Contains(r.Attributes, "&") {
			continue
		}
		t.Rows = append(t.Rows, []string{r.Attributes, r.Group, strconv.FormatInt(r.Size, 10), f(r.SelectionRate), f(r.TPR), f(r.FPR), f(r.SRDisparity)})
	}
	return t
}

func flipTable(r *fairness.FlipReport) audit.Table {
	t := audit.Table{Title: "Counterfactual flip rate (decision changes when only the attribute changes)", Columns: []string{"attribute", "pairs", "flips", "rate", "95% upper"}}
	for _, f := range append(slices.Clone(r.ByAttribute), r.AnyFlip) {
		t.Rows = append(t.Rows, []string{f.Key, strconv.Itoa(f.Pairs), strconv.Itoa(f.Flips), strconv.FormatFloat(f.Rate, 'f', 4, 64), strconv.FormatFloat(f.Hi, 'f', 4, 64)})
	}
	return t
}
