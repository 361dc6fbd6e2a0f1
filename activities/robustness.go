package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"slices"
	"strconv"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/robustness"
)

// ExampleRow is one attacked input of the robustness suite
// (results/robustness/examples/): what the model said before and after,
// and the adversarial input itself (PNG for images, the perturbed feature
// values as JSON for tabular rows) so a person can look at it.
type ExampleRow struct {
	Attack          string  `parquet:"attack,dict"` // noise_eps<k>, pixel, hop_skip_jump, tabular
	Index           int64   `parquet:"index"`       // position among the attacked inputs
	InputID         string  `parquet:"input_id"`    // image id or profile id
	Label           int32   `parquet:"label"`
	OriginalPred    int32   `parquet:"original_pred"`
	AdversarialPred int32   `parquet:"adversarial_pred"`
	Outcome         string  `parquet:"outcome,dict"` // succeeded | failed | skipped
	Perturbation    float64 `parquet:"perturbation"` // ‖x_adv − x‖₂ / ‖x‖₂; NaN when none found
	Queries         int64   `parquet:"queries"`
	PNG             []byte  `parquet:"png,optional"`
	Values          string  `parquet:"values,optional"` // tabular: perturbed features as JSON
}

// AttackRow is one attack's TextAttack-style tally (results/robustness/attacks/).
type AttackRow struct {
	Attack              string  `parquet:"attack,dict"`
	Epsilon             float64 `parquet:"epsilon"`
	Inputs              int64   `parquet:"inputs"`
	Succeeded           int64   `parquet:"succeeded"`
	Failed              int64   `parquet:"failed"`
	Skipped             int64   `parquet:"skipped"`
	SuccessRate         float64 `parquet:"success_rate"`
	AccuracyUnderAttack float64 `parquet:"accuracy_under_attack"`
	FlipRate            float64 `parquet:"flip_rate"`       // noise: flips / (inputs × draws)
	FlipRateUpper       float64 `parquet:"flip_rate_upper"` // one-sided Clopper–Pearson, 95%
	Queries             int64   `parquet:"queries"`
	MedianPerturbation  float64 `parquet:"median_perturbation"`
	Convention          string  `parquet:"convention"`
}

// RobustnessSuite attacks the model through its OIP endpoint with a query
// budget: L∞ noise at several ε, a few-pixel attack and HopSkipJump on
// images; bounded feature perturbations on tabular profiles (decision flips
// for classifiers, output change for regressors).
func (a *Activities) RobustnessSuite(ctx context.Context, in SuiteInput) (SuiteResult, error) {
	rc := in.Robustness
	if rc == nil {
		return SuiteResult{}, badInput("robustness suite: no suites.robustness config")
	}
	client, meta, err := a.oip(ctx, in)
	if err != nil {
		return SuiteResult{}, err
	}
	files, err := a.newSuiteFiles(in.ReleaseID, SuiteRobustness, rc.Seed)
	if err != nil {
		return SuiteResult{}, err
	}
	res := SuiteResult{Suite: SuiteRobustness, Metrics: map[string]float64{}}
	sec := audit.SuiteSection{Name: SuiteRobustness}
	switch rc.Inputs {
	case "images":
		err = a.imageRobustness(ctx, in, client, meta, files, &res, &sec)
	default:
		err = a.tabularRobustness(ctx, in, client, meta, files, &res, &sec)
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

// imageModel adapts the OIP endpoint to robustness.Classifier: one FP32
// input [n, H, W], pixels in [0, 1].
type imageModel struct {
	c     *modelapi.OIPClient
	input string
	h, w  int
	ctx   context.Context
}

func (m *imageModel) Predict(ctx context.Context, batch [][]float64) ([][]float64, error) {
	data := make([]float32, 0, len(batch)*m.h*m.w)
	for _, x := range batch {
		if len(x) != m.h*m.w {
			return nil, fmt.Errorf("image has %d pixels, want %d", len(x), m.h*m.w)
		}
		for _, v := range x {
			data = append(data, float32(v))
		}
	}
	out, _, err := m.c.PredictTensor(ctx, m.input, []int{len(batch), m.h, m.w}, data)
	activity.RecordHeartbeat(m.ctx, "attacking")
	return out, err
}

func (a *Activities) imageRobustness(ctx context.Context, in SuiteInput, client *modelapi.OIPClient, meta modelapi.ModelMetadata,
	files *suiteFiles, res *SuiteResult, sec *audit.SuiteSection) error {
	rc := in.Robustness
	side := datasets.DefaultImageSide
	opt := datasets.ImageOptions{Epsilons: []float64{}, PixelCounts: []int{}}
	var inputs [][]float64
	var labels []int
	var ids []string
	for row := range datasets.Images(rc.Seed, rc.Samples, opt) {
		px, err := decodeGray(row.PNG, side)
		if err != nil {
			return fmt.Errorf("decode %s: %w", row.ID, err)
		}
		inputs = append(inputs, px)
		labels = append(labels, int(row.LabelID))
		ids = append(ids, row.ID)
	}
	model := &imageModel{c: client, input: meta.Inputs[0].Name, h: side, w: side, ctx: ctx}
	budget := robustness.NewBudget(0)
	clf := budget.Classifier(model)

	clean, err := clf.Predict(ctx, inputs)
	if err != nil {
		return fmt.Errorf("clean predictions: %w", err)
	}
	correct := 0
	for i, p := range clean {
		if argmax(p) == labels[i] {
			correct++
		}
	}
	res.Metrics["robustness.clean_accuracy"] = float64(correct) / float64(len(inputs))

	var attacks []AttackRow
	var examples []ExampleRow
	noise, err := robustness.NoiseFlipRate(ctx, clf, inputs, labels, robustness.NoiseConfig{
		Epsilons: rc.Epsilons, Draws: rc.Draws, Lo: 0, Hi: 1, Seed: rc.Seed,
	})
	if err != nil {
		return fmt.Errorf("noise flip rate: %w", err)
	}
	worstUpper, worstAcc := 0.0, 1.0
	for _, lv := range noise.Levels {
		name := "noise_eps" + strconv.Itoa(int(math.Round(lv.Epsilon*255))) + "_255"
		attacks = append(attacks, AttackRow{Attack: name, Epsilon: lv.Epsilon, Inputs: int64(lv.Inputs + lv.Skipped),
			Succeeded: int64(lv.Attack.Summary.Succeeded), Failed: int64(lv.Attack.Summary.Failed), Skipped: int64(lv.Skipped),
			SuccessRate: lv.Attack.Summary.SuccessRate, AccuracyUnderAttack: lv.Attack.Summary.AccuracyUnderAttack,
			FlipRate: lv.Rate, FlipRateUpper: lv.Upper, Queries: int64(lv.Attack.Summary.Queries), Convention: noise.Convention})
		examples = append(examples, imageExamples(name, lv.Attack.Examples, ids, side, 3)...)
		worstUpper = max(worstUpper, lv.Upper)
		worstAcc = min(worstAcc, lv.Attack.Summary.AccuracyUnderAttack)
	}
	if n := len(noise.Levels); n > 0 {
		last := noise.Levels[n-1]
		res.Metrics["robustness.noise_flip_rate"] = last.Rate
		res.Metrics["robustness.noise_flip_rate_upper"] = worstUpper
	}
	summary := fmt.Sprintf("Robustness: %d scans, clean accuracy %.3f; noise flip rate %.4f at ε = %.0f/255 (95%% upper bound over all ε %.4f)",
		len(inputs), res.Metrics["robustness.clean_accuracy"], res.Metrics["robustness.noise_flip_rate"], rc.Epsilons[len(rc.Epsilons)-1]*255, worstUpper)

	if b := rc.PixelAttack; b != nil {
		n := min(b.Inputs, len(inputs))
		r, err := robustness.PixelAttack(ctx, clf, inputs[:n], labels[:n], robustness.PixelConfig{
			Height: side, Width: side, Pixels: b.Pixels, Population: 40, Iterations: 30, Seed: rc.Seed, QueryBudget: b.MaxQueries,
		})
		if err != nil {
			return fmt.Errorf("pixel attack: %w", err)
		}
		attacks = append(attacks, attackRow("pixel", r.Summary))
		examples = append(examples, imageExamples("pixel", r.Examples, ids, side, 5)...)
		res.Metrics["robustness.pixel_attack_success_rate"] = r.Summary.SuccessRate
		worstAcc = min(worstAcc, r.Summary.AccuracyUnderAttack)
		summary += fmt.Sprintf("; %d-pixel attack succeeded on %d of %d scans", b.Pixels, r.Summary.Succeeded, r.Summary.Succeeded+r.Summary.Failed)
	}
	if b := rc.HopSkipJump; b != nil {
		n := min(b.Inputs, len(inputs))
		r, err := robustness.HopSkipJump(ctx, clf, inputs[:n], labels[:n], robustness.HSJConfig{
			MaxIter: 10, MaxEval: 200, InitEval: 20, InitSize: 50, Lo: 0, Hi: 1, Seed: rc.Seed, QueryBudget: b.MaxQueries,
		})
		if err != nil {
			return fmt.Errorf("HopSkipJump: %w", err)
		}
		attacks = append(attacks, attackRow("hop_skip_jump", r.Summary))
		examples = append(examples, imageExamples("hop_skip_jump", r.Examples, ids, side, 5)...)
		res.Metrics["robustness.hsj_success_rate"] = r.Summary.SuccessRate
		if r.Summary.Succeeded > 0 {
			res.Metrics["robustness.hsj_median_perturbation"] = r.Summary.MedianPerturbation
		}
		worstAcc = min(worstAcc, r.Summary.AccuracyUnderAttack)
		summary += fmt.Sprintf("; HopSkipJump median relative L2 perturbation %.3f", r.Summary.MedianPerturbation)
	}
	res.Metrics["robustness.accuracy_under_attack"] = worstAcc
	res.Queries = int64(budget.Used())
	if err := writeTable(ctx, files, "attacks", attacks); err != nil {
		return err
	}
	if err := writeTable(ctx, files, "examples", examples); err != nil {
		return err
	}
	sec.Summary = summary + fmt.Sprintf(". %d model queries.", res.Queries)
	sec.Notes = append(sec.Notes,
		"Conventions: success = the predicted class changes (ART, untargeted); inputs misclassified before the attack are skipped (TextAttack); "+noise.Convention+".",
		"Every attack ran within its per-input query budget; queries used are in results/robustness/attacks/.")
	sec.Tables = append(sec.Tables, attackTable(attacks))
	sec.Examples = append(sec.Examples, audit.Artifact{Name: "adversarial scans (PNG in the png column)", Key: files.key("examples"), Rows: int64(len(examples))})
	return nil
}

func attackRow(name string, s robustness.AttackSummary) AttackRow {
	return AttackRow{Attack: name, Inputs: int64(s.Total), Succeeded: int64(s.Succeeded), Failed: int64(s.Failed), Skipped: int64(s.Skipped),
		SuccessRate: s.SuccessRate, AccuracyUnderAttack: s.AccuracyUnderAttack, Queries: int64(s.Queries),
		MedianPerturbation: s.MedianPerturbation, Convention: s.Convention}
}

func attackTable(rows []AttackRow) audit.Table {
	t := audit.Table{Title: "Attacks", Columns: []string{"attack", "succeeded", "failed", "skipped", "success rate", "flip rate (95% upper)", "queries"}}
	for _, r := range rows {
		flip := ""
		if r.Epsilon > 0 {
			flip = fmt.Sprintf("%.4f (%.4f)", r.FlipRate, r.FlipRateUpper)
		}
		t.Rows = append(t.Rows, []string{r.Attack, strconv.FormatInt(r.Succeeded, 10), strconv.FormatInt(r.Failed, 10), strconv.FormatInt(r.Skipped, 10),
			fmt.Sprintf("%.3f", r.SuccessRate), flip, strconv.FormatInt(r.Queries, 10)})
	}
	return t
}

// imageExamples keeps every succeeded example (its PNG) and up to keep
// others, so the file stays small on a robust model.
func imageExamples(attack string, exs []robustness.Example, ids []string, side, keep int) []ExampleRow {
	var out []ExampleRow
	kept := 0
	for _, e := range exs {
		if e.Outcome != robustness.Succeeded {
			if kept >= keep {
				continue
			}
			kept++
		}
		row := ExampleRow{Attack: attack, Index: int64(e.Index), InputID: ids[e.Index], Label: int32(e.Label),
			OriginalPred: int32(e.OriginalPred), AdversarialPred: int32(e.AdversarialPred), Outcome: string(e.Outcome),
			Perturbation: e.Perturbation, Queries: int64(e.Queries)}
		if e.Adversarial != nil {
			row.PNG = encodeGray(e.Adversarial, side)
		}
		out = append(out, row)
	}
	return out
}

func decodeGray(b []byte, side int) ([]float64, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	r := img.Bounds()
	if r.Dx() != side || r.Dy() != side {
		return nil, fmt.Errorf("scan is %dx%d, want %dx%d", r.Dx(), r.Dy(), side, side)
	}
	out := make([]float64, 0, side*side)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
			out = append(out, float64(g.Y)/255)
		}
	}
	return out, nil
}

func encodeGray(px []float64, side int) []byte {
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i, v := range px {
		img.Pix[i] = uint8(math.Round(255 * min(1, max(0, v))))
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// tabularModel adapts the OIP endpoint to the robustness attacks for one
// profile: the attack sees the numeric features scaled to [0, 1] by their
// observed range; categorical and boolean columns keep the profile's values.
type tabularModel struct {
	c       *modelapi.OIPClient
	ctx     context.Context
	base    modelapi.Table // the one profile, all model inputs
	numeric []int          // indexes of numeric columns in base
	lo, hi  []float64      // observed range per numeric column
}

func (m *tabularModel) table(batch [][]float64) modelapi.Table {
	// len(batch) copies of the profile, then the attack's numeric values.
	t := m.base.Take(make([]int, len(batch)))
	for bi, x := range batch {
		for k, ci := range m.numeric {
			v := m.lo[k] + x[k]*(m.hi[k]-m.lo[k])
			c := &t.Columns[ci]
			if c.Type == modelapi.Int64 {
				c.Ints[bi] = int64(math.Round(v))
			} else {
				c.Floats[bi] = v
			}
		}
	}
	return t
}

func (m *tabularModel) Predict(ctx context.Context, batch [][]float64) ([][]float64, error) {
	out, _, err := m.c.PredictTable(ctx, m.table(batch))
	activity.RecordHeartbeat(m.ctx, "attacking")
	return out, err
}

// regressorModel is tabularModel for a one-output regressor.
type regressorModel struct{ *tabularModel }

func (m regressorModel) Predict(ctx context.Context, batch [][]float64) ([]float64, error) {
	out, err := m.tabularModel.Predict(ctx, batch)
	if err != nil {
		return nil, err
	}
	vals := make([]float64, len(out))
	for i, o := range out {
		if len(o) == 0 {
			return nil, errors.New("the regressor returned an empty output row")
		}
		vals[i] = o[0]
	}
	return vals, nil
}

func (a *Activities) tabularRobustness(ctx context.Context, in SuiteInput, client *modelapi.OIPClient, meta modelapi.ModelMetadata,
	files *suiteFiles, res *SuiteResult, sec *audit.SuiteSection) error {
	rc := in.Robustness
	if in.Tabular == nil || in.Fairness == nil {
		return badInput("suites.robustness.inputs: tabular needs suites.fairness.dataset")
	}
	pop, err := a.readPopulation(ctx, *in.Tabular, inputNames(meta), extraColumns(in.Fairness))
	if err != nil {
		return err
	}
	var orig []int
	for i, tw := range pop.TwinOf {
		if tw < 0 {
			orig = append(orig, i)
		}
	}
	if len(orig) == 0 {
		return badInput("suites.fairness.dataset has no original profiles")
	}
	var numeric []int
	var lo, hi []float64
	for ci, c := range pop.Features.Columns {
		if c.Type != modelapi.Float64 && c.Type != modelapi.Int64 || slices.Contains(in.Fairness.Protected, c.Name) {
			continue
		}
		l, h := math.Inf(1), math.Inf(-1)
		for _, i := range orig {
			v := c.Float(i)
			l, h = min(l, v), max(h, v)
		}
		if h > l {
			numeric = append(numeric, ci)
			lo, hi = append(lo, l), append(hi, h)
		}
	}
	if len(numeric) == 0 {
		return badInput("the model's inputs have no numeric, non-protected feature to perturb")
	}
	features := make([]robustness.Feature, len(numeric))
	for k, ci := range numeric {
		features[k] = robustness.Feature{Name: pop.Features.Columns[ci].Name, Lo: 0, Hi: 1, MaxRelStep: rc.MaxStep}
	}
	n := min(rc.Samples, len(orig))
	budget := robustness.NewBudget(0)
	var examples []ExampleRow
	succeeded, failed, skipped := 0, 0, 0
	var changes []float64
	above, trials := 0, 0
	for j := 0; j < n; j++ {
		i := orig[j]
		m := &tabularModel{c: client, ctx: ctx, base: pop.Features.Slice(i, i+1), numeric: numeric, lo: lo, hi: hi}
		x := make([]float64, len(numeric))
		for k, ci := range numeric {
			x[k] = (pop.Features.Columns[ci].Float(i) - lo[k]) / (hi[k] - lo[k])
		}
		if in.ModelType == config.TypeRegressor {
			r, err := robustness.RegressorNoise(ctx, budget.Regressor(regressorModel{m}), [][]float64{x}, robustness.RegressorConfig{
				Epsilon: rc.MaxStep, Draws: rc.Draws, Lo: 0, Hi: 1, Tolerance: rc.Tolerance, Seed: rc.Seed + uint64(j),
			})
			if err != nil {
				return fmt.Errorf("profile %d: %w", pop.ID[i], err)
			}
			changes = append(changes, r.MaxAbsChange)
			above += int(math.Round(r.ShareAboveTolerance * float64(r.Trials)))
			trials += r.Trials
			continue
		}
		r, err := robustness.TabularAttack(ctx, budget.Classifier(m), [][]float64{x}, nil, robustness.TabularConfig{
			Features: features, Iterations: 10, Candidates: 16, Seed: rc.Seed + uint64(j), QueryBudget: 200,
		})
		if err != nil {
			return fmt.Errorf("profile %d: %w", pop.ID[i], err)
		}
		succeeded += r.Summary.Succeeded
		failed += r.Summary.Failed
		skipped += r.Summary.Skipped
		for _, e := range r.Examples {
			if e.Outcome == robustness.Succeeded && len(examples) < 50 {
				examples = append(examples, ExampleRow{Attack: "tabular", Index: int64(j), InputID: strconv.FormatInt(pop.ID[i], 10),
					Label: int32(e.Label), OriginalPred: int32(e.OriginalPred), AdversarialPred: int32(e.AdversarialPred),
					Outcome: string(e.Outcome), Perturbation: e.Perturbation, Queries: int64(e.Queries), Values: featureJSON(m, e.Adversarial)})
			}
		}
	}
	res.Queries = int64(budget.Used())
	var attacks []AttackRow
	if in.ModelType == config.TypeRegressor {
		maxChange := slices.Max(changes)
		res.Metrics["robustness.output_change_max"] = maxChange
		res.Metrics["robustness.output_change_rate"] = float64(above) / float64(trials)
		sec.Summary = fmt.Sprintf("Robustness (regression): %d profiles × %d perturbations of up to %.0f%% of each feature's range: largest output change %.4g; %.1f%% of perturbations moved the output more than %.4g.",
			n, rc.Draws, 100*rc.MaxStep, maxChange, 100*res.Metrics["robustness.output_change_rate"], rc.Tolerance)
	} else {
		s := robustness.Tally("tabular", succeeded, failed, skipped)
		s.Queries = int(res.Queries)
		attacks = append(attacks, attackRow("tabular", s))
		res.Metrics["robustness.tabular_flip_rate"] = s.SuccessRate
		res.Metrics["robustness.accuracy_under_attack"] = s.AccuracyUnderAttack
		sec.Summary = fmt.Sprintf("Robustness: perturbations of up to %.0f%% of each numeric feature's range flipped %d of %d decisions (%.1f%%), %d model queries.",
			100*rc.MaxStep, succeeded, succeeded+failed, 100*s.SuccessRate, res.Queries)
		sec.Tables = append(sec.Tables, attackTable(attacks))
	}
	if err := writeTable(ctx, files, "attacks", attacks); err != nil {
		return err
	}
	if err := writeTable(ctx, files, "examples", examples); err != nil {
		return err
	}
	sec.Notes = append(sec.Notes, "Protected attributes and categorical features are never perturbed; numeric features move within their observed range.")
	if len(examples) > 0 {
		sec.Examples = append(sec.Examples, audit.Artifact{Name: "profiles whose decision flipped (values column)", Key: files.key("examples"), Rows: int64(len(examples))})
	}
	return nil
}

func featureJSON(m *tabularModel, x []float64) string {
	if x == nil {
		return ""
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for k, ci := range m.numeric {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", m.base.Columns[ci].Name, strconv.FormatFloat(m.lo[k]+x[k]*(m.hi[k]-m.lo[k]), 'g', 6, 64))
	}
	b.WriteByte('}')
	return b.String()
}
