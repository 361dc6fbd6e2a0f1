package fairness

import (
	"context"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

func TestClopperPearson(t *testing.T) {
	// reference/metrics.md Nasr vector: 0 of 500 at a = 0.025 → 0.0073506.
	if _, hi := ClopperPearson(0, 500, 0.025); !near(hi, 0.0073506, 5e-8) {
		t.Errorf("ub(0,500) = %v, want 0.0073506", hi)
	}
	if lo, hi := ClopperPearson(10, 10, 0.025); hi != 1 || !near(lo, math.Pow(0.025, 0.1), 1e-15) {
		t.Errorf("CP(10/10) = [%v, %v]", lo, hi)
	}
	// Interior bounds are Beta quantiles: check against gonum's Beta CDF.
	lo, hi := ClopperPearson(7, 40, 0.025)
	if p := (distuv.Beta{Alpha: 8, Beta: 33}).CDF(hi); !near(p, 0.975, 1e-9) {
		t.Errorf("ub(7,40) = %v has Beta(8,33) CDF %v, want 0.975", hi, p)
	}
	if p := (distuv.Beta{Alpha: 7, Beta: 34}).CDF(lo); !near(p, 0.025, 1e-9) {
		t.Errorf("lb(7,40) = %v has Beta(7,34) CDF %v, want 0.025", lo, p)
	}
	if lo, hi := ClopperPearson(0, 0, 0.025); lo != 0 || hi != 1 {
		t.Errorf("CP(0/0) = [%v, %v], want [0, 1]", lo, hi)
	}
}

func TestCounterfactualFlips(t *testing.T) {
	twins := []Twin{
		// r1: score exactly at the threshold is a 0 decision (strict >).
		{"r1", "sex", "m", "f", 0.5, 0.51}, // 0 → 1 flip
		{"r1", "race", "w", "b", 0.5, 0.4}, // no flip
		{"r2", "sex", "m", "f", 0.9, 0.2},  // 1 → 0 flip
		{"r2", "race", "w", "b", 0.9, 0.8}, // no flip
		{"r3", "sex", "f", "m", 0.1, 0.2},  // no flip
		{"r3", "race", "b", "w", 0.1, 0.5}, // no flip (0.5 is not > 0.5)
	}
	rep, err := CounterfactualFlips(context.Background(), twins, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Convention, "TFMA") {
		t.Errorf("convention = %q", rep.Convention)
	}
	sex := rep.ByAttribute[1]
	if sex.Key != "sex" || sex.Pairs != 3 || sex.Flips != 2 || sex.NegToPos != 1 || sex.PosToNeg != 1 {
		t.Errorf("sex = %+v", sex)
	}
	if race := rep.ByAttribute[0]; race.Flips != 0 || race.Rate != 0 || race.Lo != 0 || !near(race.Hi, 1-math.Pow(0.025, 1.0/3), 1e-15) {
		t.Errorf("race = %+v", race)
	}
	if rep.AnyFlip.Pairs != 3 || rep.AnyFlip.Flips != 2 {
		t.Errorf("any flip = %+v, want 2 of 3 originals", rep.AnyFlip)
	}
	var mf *FlipRate
	for i := range rep.ByPair {
		if rep.ByPair[i].Key == "sex:m->f" {
			mf = &rep.ByPair[i]
		}
	}
	if mf == nil || mf.Pairs != 2 || mf.Flips != 2 || mf.Rate != 1 {
		t.Errorf("pair sex:m->f = %+v", mf)
	}
	m := rep.Metrics()
	if m["fairness.counterfactual_flip_rate.sex"] != 2.0/3 || m["fairness.counterfactual_any_flip_rate"] != 2.0/3 {
		t.Errorf("metrics = %v", m)
	}
	if m["fairness.counterfactual_flip_rate_upper.sex:m->f"] != 1 {
		t.Errorf("upper bound of 2/2 = %v, want 1", m["fairness.counterfactual_flip_rate_upper.sex:m->f"])
	}
	for _, bad := range []struct {
		tw   Twin
		want string
	}{
		{Twin{"", "sex", "m", "f", 0, 0}, "original is empty"},
		{Twin{"r", "sex", "m", "m", 0, 0}, "a twin must change"},
		{Twin{"r", "sex", "m", "f", math.NaN(), 0}, "original_score is NaN"},
	} {
		if _, err := CounterfactualFlips(context.Background(), []Twin{bad.tw}, 0.5); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("twin %+v: err = %v, want %q", bad.tw, err, bad.want)
		}
	}
}

func TestCounterfactualOutputChange(t *testing.T) {
	twins := []Twin{
		{"r1", "sex", "m", "f", 10, 10.5},
		{"r2", "sex", "m", "f", 20, 17},
		{"r1", "age", "30", "70", 10, 10},
	}
	rep, err := CounterfactualOutputChange(context.Background(), twins, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.All.Pairs != 3 || !near(rep.All.MeanAbsChange, 3.5/3, 1e-12) || rep.All.MaxAbsChange != 3 || !near(rep.All.ShareAboveTol, 1.0/3, 1e-12) {
		t.Errorf("all = %+v", rep.All)
	}
	sex := rep.ByAttribute[1]
	if sex.Key != "sex" || sex.MeanAbsChange != 1.75 || sex.ShareAboveTol != 0.5 {
		t.Errorf("sex = %+v", sex)
	}
	if rep.Metrics()["fairness.counterfactual_output_change_max.sex"] != 3 {
		t.Errorf("metrics = %v", rep.Metrics())
	}
}

func TestEvaluateRegression(t *testing.T) {
	f := RegressionFrame{
		YTrue:     []float64{1, 2, 3, 4, 10, 10, 10, 10, 5},
		YPred:     []float64{1, 2, 3, 6, 12, 8, 12, 8, 100},
		Protected: map[string][]string{"g": {"a", "a", "a", "a", "b", "b", "b", "b", "c"}},
	}
	rep, err := EvaluateRegression(context.Background(), f, Config{MinGroupSize: 2, Bootstrap: Bootstrap{NBoot: 50, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Sets[0]
	// a: mean 3, MAE 0.5, RMSE 1; b: mean 10, MAE 2, RMSE 2; c too small.
	if s.MeanPredictionGap != 7 || s.WorstMAE != 2 || s.WorstMAEGroup != "b" || s.WorstRMSE != 2 || s.WorstRMSEGroup != "b" {
		t.Errorf("set = %+v", s)
	}
	if len(s.BelowMinSize) != 1 || s.BelowMinSize[0].Group != "c" {
		t.Errorf("below min size = %v, want c", s.BelowMinSize)
	}
	if rep.Groups[0].RMSE != 1 || rep.Groups[0].MAE != 0.5 {
		t.Errorf("group a = %+v", rep.Groups[0])
	}
	if _, ok := rep.Summary.Intervals["fairness.worst_group_mae.g"]; !ok {
		t.Errorf("no bootstrap interval for worst_group_mae: %v", rep.Summary.Intervals)
	}
	f.YPred[3] = math.Inf(1)
	if _, err := EvaluateRegression(context.Background(), f, Config{}); err == nil || !strings.Contains(err.Error(), "column y_pred row 3") {
		t.Errorf("inf prediction: err = %v", err)
	}
}
