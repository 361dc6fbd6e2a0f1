package fairness

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// fairlearnFrame is the published fairlearn documentation example
// (reference/metrics.md, test vectors).
func fairlearnFrame() Frame {
	return Frame{
		YTrue: []int{0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1},
		YPred: []int{0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0},
		Protected: map[string][]string{
			"group": strings.Split("b,b,a,b,b,c,c,c,a,a,c,a,b,c,c,b,c,c", ","),
		},
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestFairlearnVector(t *testing.T) {
	rep, err := Evaluate(context.Background(), fairlearnFrame(), Config{
		Privileged:   map[string]string{"group": "b"},
		MinGroupSize: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Summary.Metrics
	for name, want := range map[string]float64{
		"fairness.demographic_parity_difference.group": 0.25,
		"fairness.demographic_parity_ratio.group":      0.6667,
		"fairness.equalized_odds_difference.group":     1.0,
		"fairness.equalized_odds_ratio.group":          0.0,
		// Hand-computed: SR a=3/4 b=3/6 c=4/8; TPR a=1/2 b=3/5 c=2/5;
		// FPR a=2/2 b=0/1 c=2/3; unprivileged pooled {a,c}: SR 7/12,
		// TPR 3/7, FPR 4/5.
		"fairness.equal_opportunity_difference.group":        0.2,
		"fairness.statistical_parity_difference.group":       7.0/12 - 0.5,
		"fairness.disparate_impact_ratio.group":              (7.0 / 12) / 0.5,
		"fairness.equal_opportunity_difference_aif360.group": 3.0/7 - 0.6,
		"fairness.average_odds_difference.group":             ((0.8 - 0) + (3.0/7 - 0.6)) / 2,
		"fairness.disparity_tolerance_pass.group":            0, // a: 0.75/0.5 = 1.5 > 1.25
		"fairness.groups.group":                              3,
	} {
		tol := 1e-12
		if name == "fairness.demographic_parity_ratio.group" {
			tol = 5e-5
		}
		got, ok := m[name]
		if !ok || !near(got, want, tol) {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if rep.Summary.Conventions["demographic_parity_difference"] == "" || !strings.Contains(rep.Summary.Conventions["disparate_impact_ratio"], "AIF360") {
		t.Errorf("conventions not reported: %v", rep.Summary.Conventions)
	}
	if len(rep.Groups) != 3 {
		t.Fatalf("got %d group rows, want 3", len(rep.Groups))
	}
	a := rep.Groups[0]
	if a.Group != "a" || a.Size != 4 || a.SelectionRate != 0.75 || a.SRDisparity != 1.5 || a.DisparityPass {
		t.Errorf("group a row = %+v", a)
	}
	if !rep.Groups[1].Privileged || !rep.Groups[1].DisparityPass {
		t.Errorf("group b row = %+v, want privileged and passing", rep.Groups[1])
	}
}

func TestWeightedSelectionRate(t *testing.T) {
	got, err := SelectionRate([]int{0, 1, 1, 0, 0, 0, 0, 0}, []float64{1, 2, 3, 4, 1, 2, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if got != 0.3125 {
		t.Errorf("weighted selection rate = %v, want 0.3125", got)
	}
	// The same through Evaluate: one group, weights applied per row.
	f := Frame{
		YTrue: make([]int, 8), YPred: []int{0, 1, 1, 0, 0, 0, 0, 0},
		Weight:    []float64{1, 2, 3, 4, 1, 2, 1, 2},
		Protected: map[string][]string{"g": strings.Split("x,x,x,x,x,x,x,x", ",")},
	}
	rep, err := Evaluate(context.Background(), f, Config{Privileged: map[string]string{"g": "x"}, MinGroupSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Groups[0].SelectionRate != 0.3125 || rep.Groups[0].Weight != 16 {
		t.Errorf("group row = %+v, want selection rate 0.3125 over weight 16", rep.Groups[0])
	}
}

func TestDisparateImpactZeroPrivileged(t *testing.T) {
	f := Frame{
		YTrue:     []int{1, 0, 1, 0},
		YPred:     []int{0, 0, 1, 0},
		Protected: map[string][]string{"sex": {"m", "m", "f", "f"}},
	}
	rep, err := Evaluate(context.Background(), f, Config{Privileged: map[string]string{"sex": "m"}, MinGroupSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rep.Summary.Metrics["fairness.disparate_impact_ratio.sex"]; !ok || v != 0 {
		t.Errorf("disparate impact = %v (present %v), want 0", v, ok)
	}
	if !hasWarning(rep.Summary.Warnings, "privileged selection rate is 0") {
		t.Errorf("no warning for SR_priv = 0: %v", rep.Summary.Warnings)
	}
}

func hasWarning(ws []string, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func TestIntersectionalMinGroupSize(t *testing.T) {
	// 3 × race, 2 × sex; (b, f) has 2 rows, every other combination 10.
	var f Frame
	f.Protected = map[string][]string{"race": nil, "sex": nil}
	add := func(race, sex string, n, pos int) {
		for i := range n {
			f.Protected["race"] = append(f.Protected["race"], race)
			f.Protected["sex"] = append(f.Protected["sex"], sex)
			f.YTrue = append(f.YTrue, i%2)
			p := 0
			if i < pos {
				p = 1
			}
			f.YPred = append(f.YPred, p)
		}
	}
	add("w", "m", 10, 5)
	add("w", "f", 10, 4)
	add("b", "m", 10, 3)
	add("b", "f", 2, 2) // selection rate 1, but too small to count
	rep, err := Evaluate(context.Background(), f, Config{
		AttributeSets: [][]string{{"race", "sex"}},
		Privileged:    map[string]string{"race": "w", "sex": "m"},
		MinGroupSize:  5,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Sets[0]
	if s.Name != "race&sex" || s.Privileged != "w&m" || s.Groups != 4 {
		t.Errorf("set = %+v", s)
	}
	if !reflect.DeepEqual(s.BelowMinSize, []GroupSize{{"b&f", 2}}) {
		t.Errorf("below min size = %v, want [{b&f 2}]", s.BelowMinSize)
	}
	// The small group's SR of 1 must not enter max/min: 0.5 − 0.3.
	if got := rep.Summary.Metrics["fairness.demographic_parity_difference.race&sex"]; !near(got, 0.2, 1e-12) {
		t.Errorf("DPD = %v, want 0.2 (small group excluded)", got)
	}
	if rep.Summary.Metrics["fairness.groups_below_min_size.race&sex"] != 1 {
		t.Errorf("groups_below_min_size missing: %v", rep.Summary.Metrics)
	}
	for _, r := range rep.Groups {
		if r.Group == "b&f" && (r.Measured || r.Size != 2 || !math.IsNaN(r.SelectionRate)) {
			t.Errorf("small group row = %+v, want listed with size and no metrics", r)
		}
	}
	if !hasWarning(rep.Summary.Warnings, "below the minimum size 5") {
		t.Errorf("no warning for the small group: %v", rep.Summary.Warnings)
	}
}

func TestBootstrapDeterministic(t *testing.T) {
	f := fairlearnFrame()
	cfg := Config{Privileged: map[string]string{"group": "b"}, MinGroupSize: 1,
		Bootstrap: Bootstrap{NBoot: 200, Seed: 7, Quantiles: []float64{0.05, 0.5, 0.95}}}
	r1, err := Evaluate(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := Evaluate(context.Background(), f, cfg)
	if !reflect.DeepEqual(r1.Summary.Intervals, r2.Summary.Intervals) {
		t.Fatal("same seed gave different intervals")
	}
	iv, ok := r1.Summary.Intervals["fairness.demographic_parity_difference.group"]
	if !ok || iv.Replicates == 0 || len(iv.Values) != 3 {
		t.Fatalf("DPD interval = %+v", iv)
	}
	if !(iv.Values[0] <= iv.Values[1] && iv.Values[1] <= iv.Values[2]) || iv.Values[0] == iv.Values[2] {
		t.Errorf("interval not ordered or degenerate: %v", iv.Values)
	}
	flat := r1.Summary.Flat()
	if flat["fairness.demographic_parity_difference.group.ci_hi"] != iv.Values[2] {
		t.Errorf("Flat ci_hi = %v, want %v", flat["fairness.demographic_parity_difference.group.ci_hi"], iv.Values[2])
	}
	if _, ok := r1.Summary.Intervals["fairness.groups.group"]; ok {
		t.Error("a count got a bootstrap interval")
	}
	cfg.Bootstrap.Seed = 8
	r3, _ := Evaluate(context.Background(), f, cfg)
	if reflect.DeepEqual(r1.Summary.Intervals, r3.Summary.Intervals) {
		t.Error("different seeds gave identical intervals")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, f, cfg); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestQuantileLinear(t *testing.T) {
	d := []float64{1, 2, 3, 4}
	for q, want := range map[float64]float64{0: 1, 1: 4, 0.5: 2.5, 0.25: 1.75} {
		if got := quantile(d, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	priv := Config{Privileged: map[string]string{"group": "b"}}
	cases := []struct {
		name string
		mod  func(*Frame)
		cfg  Config
		want string
	}{
		{"empty", func(f *Frame) { *f = Frame{} }, priv, "empty frame"},
		{"length", func(f *Frame) { f.YPred = f.YPred[:3] }, priv, "column y_pred has 3 rows"},
		{"label", func(f *Frame) { f.YTrue[4] = 2 }, priv, "column y_true row 4: value 2"},
		{"pred", func(f *Frame) { f.YPred[1] = -1 }, priv, "column y_pred row 1"},
		{"nan score", func(f *Frame) { f.Score = make([]float64, 18); f.Score[6] = math.NaN() }, priv, "column score row 6: NaN"},
		{"weight", func(f *Frame) { f.Weight = make([]float64, 18); f.Weight[2] = -1 }, priv, "column weight row 2"},
		{"attr length", func(f *Frame) { f.Protected["group"] = f.Protected["group"][:5] }, priv, "protected column group has 5 rows"},
		{"attr empty", func(f *Frame) { f.Protected["group"][9] = "" }, priv, "protected column group row 9: empty value"},
		{"no privileged", func(*Frame) {}, Config{}, `attribute group: no privileged value`},
		{"privileged unseen", func(*Frame) {}, Config{Privileged: map[string]string{"group": "z"}}, `privileged value "z" is not observed`},
		{"unknown set column", func(*Frame) {}, Config{AttributeSets: [][]string{{"race"}}, Privileged: map[string]string{"group": "b"}}, `no protected column "race"`},
		{"bad quantile", func(*Frame) {}, Config{Privileged: map[string]string{"group": "b"}, Bootstrap: Bootstrap{Quantiles: []float64{1.5}}}, "Bootstrap.Quantiles"},
	}
	for _, c := range cases {
		f := fairlearnFrame()
		c.mod(&f)
		_, err := Evaluate(context.Background(), f, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestGroupRowParquet(t *testing.T) {
	rep, err := Evaluate(context.Background(), fairlearnFrame(), Config{Privileged: map[string]string{"group": "b"}, MinGroupSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[GroupRow](&buf)
	if _, err := w.Write(rep.Groups); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.Read[GroupRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Group != "b" || got[1].SelectionRate != 0.5 || got[0].Measured || !math.IsNaN(got[0].SelectionRate) {
		t.Errorf("read back %+v", got)
	}
	schema := parquet.SchemaOf(GroupRow{}).String()
	for _, col := range []string{"attributes", "group", "size", "selection_rate", "disparity_pass"} {
		if !strings.Contains(schema, col) {
			t.Errorf("schema lacks column %s:\n%s", col, schema)
		}
	}
}
