package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Model types: which suites a release runs follows the type the model declares.
const (
	TypeChat       = "chat"       // LLM over OpenAI-compatible chat: red teaming, leak probes, shadow
	TypeClassifier = "classifier" // OIP v2 classifier: fairness, robustness, membership inference
	TypeRegressor  = "regressor"  // OIP v2 regressor: fairness for continuous outputs, robustness
)

// ProtocolOIP is the Open Inference Protocol v2 (KServe, Triton, MLServer).
const ProtocolOIP = "oip-v2"

// Fairness configures the fairness suite of a classifier or regressor: the
// model scores synthetic profiles with their counterfactual twins.
type Fairness struct {
	// Dataset is the synthetic population scored by the model.
	Dataset TabularData `yaml:"dataset" json:"dataset"`
	// Protected lists the protected attribute columns; each gets group
	// metrics, and twins flipped on it give counterfactual flip rates.
	Protected []string `yaml:"protected" json:"protected"`
	// Privileged names the privileged value of each protected attribute,
	// for the signed AIF360 metrics (disparate impact, statistical parity).
	Privileged map[string]string `yaml:"privileged,omitempty" json:"privileged,omitempty"`
	// Intersectional adds the observed cartesian product of all protected
	// attributes as one more grouping.
	Intersectional bool `yaml:"intersectional,omitempty" json:"intersectional,omitempty"`
	// LabelColumn is the ground truth in the dataset (needed for error-rate
	// metrics such as equalized odds); FavorableLabel is its favourable value.
	LabelColumn    string `yaml:"label_column,omitempty" json:"label_column,omitempty"`
	FavorableLabel string `yaml:"favorable_label,omitempty" json:"favorable_label,omitempty"`
	// Output is the index of the favourable class in a classifier's output
	// vector; decision = output[Output] > Threshold (strict, as TFMA).
	Output    int     `yaml:"output,omitempty" json:"output,omitempty"`
	Threshold float64 `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// MinGroupSize: smaller groups are listed with their size but get no metric.
	MinGroupSize int `yaml:"min_group_size,omitempty" json:"min_group_size,omitempty"`
	// Bootstrap is the number of bootstrap resamples for confidence intervals.
	Bootstrap int `yaml:"bootstrap,omitempty" json:"bootstrap,omitempty"`
	// Tolerance is the output change that counts as a counterfactual change
	// for a regressor, in output units.
	Tolerance float64 `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
}

// TabularData is a synthetic tabular population from a bundled schema.
type TabularData struct {
	Schema string `yaml:"schema" json:"schema"` // a bundled schema name, e.g. credit-applicant
	Rows   int    `yaml:"rows" json:"rows"`     // original rows; twins come on top
	// Seed defaults to the release seed.
	Seed uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// Robustness configures the robustness suite.
type Robustness struct {
	// Inputs is what the model takes: "images" (synthetic scans) or
	// "tabular" (the fairness dataset's schema).
	Inputs string `yaml:"inputs" json:"inputs"`
	// Samples is how many clean inputs are attacked with noise.
	Samples int `yaml:"samples,omitempty" json:"samples,omitempty"`
	// Epsilons are the L∞ noise budgets, as a fraction of the input range.
	Epsilons []float64 `yaml:"epsilons,omitempty" json:"epsilons,omitempty"`
	// Draws is the number of noise draws per input and epsilon.
	Draws int `yaml:"draws,omitempty" json:"draws,omitempty"`
	// PixelAttack runs the few-pixel attack (images only).
	PixelAttack *AttackBudget `yaml:"pixel_attack,omitempty" json:"pixel_attack,omitempty"`
	// HopSkipJump runs the label-only decision attack (images only).
	HopSkipJump *AttackBudget `yaml:"hop_skip_jump,omitempty" json:"hop_skip_jump,omitempty"`
	// MaxStep bounds a tabular perturbation, relative to each feature's range.
	MaxStep float64 `yaml:"max_step,omitempty" json:"max_step,omitempty"`
	// Tolerance is the output change that counts for a regressor.
	Tolerance float64 `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
	Seed      uint64  `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// AttackBudget bounds one attack.
type AttackBudget struct {
	Inputs     int `yaml:"inputs" json:"inputs"`                               // inputs attacked
	Pixels     int `yaml:"pixels,omitempty" json:"pixels,omitempty"`           // pixel attack: pixels changed
	MaxQueries int `yaml:"max_queries,omitempty" json:"max_queries,omitempty"` // per input
}

// Membership configures membership inference against a classifier: the
// records the model was trained on and records it never saw, as Parquet
// objects in the release bucket.
type Membership struct {
	Members     string `yaml:"members" json:"members"`         // S3 key (or s3://bucket/key) of the member records
	NonMembers  string `yaml:"non_members" json:"non_members"` // S3 key of the non-member records
	LabelColumn string `yaml:"label_column" json:"label_column"`
	// LabelValues maps a label value (as text) to the class index of the
	// model's output; by default false/0 → 0 and true/1 → 1.
	LabelValues map[string]int `yaml:"label_values,omitempty" json:"label_values,omitempty"`
	// Alpha: ε lower bounds hold with confidence 1−Alpha.
	Alpha float64 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	Delta float64 `yaml:"delta,omitempty" json:"delta,omitempty"`
	// Shadows is the number of LiRA shadow models trained from the model's
	// recipe (0 = no LiRA); only the bundled reference models have one.
	Shadows int `yaml:"shadows,omitempty" json:"shadows,omitempty"`
}

func (r *Release) predictiveDefaults() {
	if f := r.Suites.Fairness; f != nil {
		if f.Dataset.Seed == 0 {
			f.Dataset.Seed = r.Seed
		}
		if f.Threshold == 0 {
			f.Threshold = 0.5
		}
		if f.MinGroupSize == 0 {
			f.MinGroupSize = 30
		}
		if f.Bootstrap == 0 {
			f.Bootstrap = 200
		}
		if f.Tolerance == 0 {
			f.Tolerance = 0.05
		}
		if f.Output == 0 && r.Model.Type == TypeClassifier {
			f.Output = 1
		}
	}
	if rb := r.Suites.Robustness; rb != nil {
		if rb.Seed == 0 {
			rb.Seed = r.Seed
		}
		if rb.Samples == 0 {
			rb.Samples = 200
		}
		if len(rb.Epsilons) == 0 {
			rb.Epsilons = []float64{2.0 / 255, 4.0 / 255, 8.0 / 255}
		}
		if rb.Draws == 0 {
			rb.Draws = 8
		}
		if rb.MaxStep == 0 {
			rb.MaxStep = 0.05
		}
		if rb.Tolerance == 0 {
			rb.Tolerance = 0.05
		}
		for _, b := range []*AttackBudget{rb.PixelAttack, rb.HopSkipJump} {
			if b != nil && b.MaxQueries == 0 {
				b.MaxQueries = 2000
			}
		}
		if rb.PixelAttack != nil && rb.PixelAttack.Pixels == 0 {
			rb.PixelAttack.Pixels = 3
		}
	}
	if m := r.Suites.Membership; m != nil {
		if m.Alpha == 0 {
			m.Alpha = 0.05
		}
		if m.Delta == 0 {
			m.Delta = 1e-5
		}
	}
}

func (r *Release) validatePredictive(add func(path, format string, args ...any)) {
	s := r.Suites
	if r.Model.Type == TypeChat {
		for name, set := range map[string]bool{"fairness": s.Fairness != nil, "robustness": s.Robustness != nil, "membership": s.Membership != nil} {
			if set {
				add("suites."+name, "applies to classifier and regressor models; this model's type is %q (set model.type)", r.Model.Type)
			}
		}
		return
	}
	if s.Fairness == nil && s.Robustness == nil && s.Membership == nil {
		add("suites", "a %s release needs at least one of fairness, robustness, membership", r.Model.Type)
	}
	if f := s.Fairness; f != nil {
		if f.Dataset.Schema == "" {
			add("suites.fairness.dataset.schema", "is missing; name a bundled schema such as \"credit-applicant\"")
		}
		if f.Dataset.Rows < 50 || f.Dataset.Rows > 1_000_000 {
			add("suites.fairness.dataset.rows", "is %d; set 50 to 1000000", f.Dataset.Rows)
		}
		if len(f.Protected) == 0 {
			add("suites.fairness.protected", "is empty; list the protected attribute columns, e.g. [sex, race]")
		}
		for i, p := range f.Protected {
			if p == "" || slices.Index(f.Protected, p) != i {
				add(fmt.Sprintf("suites.fairness.protected[%d]", i), "%q is empty or repeated", p)
			}
		}
		for attr := range f.Privileged {
			if !slices.Contains(f.Protected, attr) {
				add("suites.fairness.privileged."+attr, "is not in suites.fairness.protected (%s)", strings.Join(f.Protected, ", "))
			}
		}
		if (f.LabelColumn == "") != (f.FavorableLabel == "") {
			add("suites.fairness.favorable_label", "label_column and favorable_label go together; set both or neither")
		}
		if r.Model.Type == TypeClassifier && !(f.Threshold > 0 && f.Threshold < 1) {
			add("suites.fairness.threshold", "is %v; set a probability in (0, 1)", f.Threshold)
		}
		if f.Output < 0 {
			add("suites.fairness.output", "is %d; give the index of the favourable class in the model's output", f.Output)
		}
		if f.MinGroupSize < 1 {
			add("suites.fairness.min_group_size", "is %d; set at least 1", f.MinGroupSize)
		}
		if f.Bootstrap < 0 || f.Bootstrap > 10000 {
			add("suites.fairness.bootstrap", "is %d; set 0 to 10000 resamples", f.Bootstrap)
		}
	}
	if rb := s.Robustness; rb != nil {
		switch rb.Inputs {
		case "images":
		case "tabular":
			if s.Fairness == nil {
				add("suites.robustness.inputs", "\"tabular\" perturbs the fairness dataset; configure suites.fairness.dataset too")
			}
			if rb.PixelAttack != nil || rb.HopSkipJump != nil {
				add("suites.robustness", "pixel_attack and hop_skip_jump apply to images; remove them for tabular inputs")
			}
		default:
			add("suites.robustness.inputs", "is %q; use \"images\" or \"tabular\"", rb.Inputs)
		}
		if rb.Samples < 1 || rb.Samples > 100_000 {
			add("suites.robustness.samples", "is %d; set 1 to 100000", rb.Samples)
		}
		for i, e := range rb.Epsilons {
			if !(e > 0 && e <= 1) {
				add(fmt.Sprintf("suites.robustness.epsilons[%d]", i), "is %v; set a fraction of the input range in (0, 1], e.g. 0.0314 for 8/255", e)
			}
		}
		if rb.Draws < 1 || rb.Draws > 1000 {
			add("suites.robustness.draws", "is %d; set 1 to 1000", rb.Draws)
		}
		if !(rb.MaxStep > 0 && rb.MaxStep <= 1) {
			add("suites.robustness.max_step", "is %v; set a fraction of each feature's range in (0, 1]", rb.MaxStep)
		}
		for name, b := range map[string]*AttackBudget{"pixel_attack": rb.PixelAttack, "hop_skip_jump": rb.HopSkipJump} {
			if b == nil {
				continue
			}
			if b.Inputs < 1 || b.Inputs > 10_000 {
				add("suites.robustness."+name+".inputs", "is %d; set 1 to 10000", b.Inputs)
			}
			if b.MaxQueries < 10 {
				add("suites.robustness."+name+".max_queries", "is %d; set at least 10 queries per input", b.MaxQueries)
			}
		}
		if b := rb.PixelAttack; b != nil && (b.Pixels < 1 || b.Pixels > 64) {
			add("suites.robustness.pixel_attack.pixels", "is %d; set 1 to 64", b.Pixels)
		}
	}
	if m := s.Membership; m != nil {
		if r.Model.Type != TypeClassifier {
			add("suites.membership", "membership inference needs class probabilities; it applies to classifiers")
		}
		if m.Members == "" {
			add("suites.membership.members", "is missing; give the S3 key of the training (member) records as Parquet")
		}
		if m.NonMembers == "" {
			add("suites.membership.non_members", "is missing; give the S3 key of records the model never saw, as Parquet")
		}
		if m.Members != "" && m.Members == m.NonMembers {
			add("suites.membership.non_members", "is the same object as members; membership inference needs two disjoint sets")
		}
		if m.LabelColumn == "" {
			add("suites.membership.label_column", "is missing; name the column holding each record's true class")
		}
		if !(m.Alpha > 0 && m.Alpha < 0.5) {
			add("suites.membership.alpha", "is %v; set a significance level in (0, 0.5), e.g. 0.05", m.Alpha)
		}
		if !(m.Delta >= 0 && m.Delta < 1) || math.IsNaN(m.Delta) {
			add("suites.membership.delta", "is %v; set δ in [0, 1), e.g. 1e-5", m.Delta)
		}
		if m.Shadows < 0 || m.Shadows > 64 {
			add("suites.membership.shadows", "is %d; set 0 (no LiRA) to 64", m.Shadows)
		}
	}
}
