package redteam

import (
	"math"
	"testing"
)

func TestRegressCounts(t *testing.T) {
	// 10/100 → 20/100: pooled p = 0.15, se = sqrt(.15·.85·.02) = 0.050498,
	// z = 1.98030, one-sided p = 0.023835.
	r := RegressCounts("LLM01", Counts{Breached: 10, Defended: 90, Errored: 50}, Counts{Breached: 20, Defended: 80, Errored: 7}, 0.05)
	if math.Abs(r.Z-1.98030) > 1e-4 || math.Abs(r.P-0.023835) > 1e-5 || !r.Regressed || math.Abs(r.Diff-0.1) > 1e-12 {
		t.Fatalf("%+v", r)
	}
	// Errored attempts never enter the test: same judged counts, same z.
	r2 := RegressCounts("LLM01", Counts{Breached: 10, Defended: 90}, Counts{Breached: 20, Defended: 80}, 0.05)
	if r2.Z != r.Z {
		t.Fatalf("errored changed z: %v vs %v", r2.Z, r.Z)
	}
	if r := RegressCounts("x", Counts{Breached: 10, Defended: 90}, Counts{Breached: 12, Defended: 88}, 0.05); r.Regressed {
		t.Fatalf("10%%→12%% on 100 each flagged: %+v", r)
	}
	if r := RegressCounts("x", Counts{Breached: 20, Defended: 80}, Counts{Breached: 5, Defended: 95}, 0.05); r.Regressed || r.Z >= 0 {
		t.Fatalf("an improvement flagged: %+v", r)
	}
	if r := RegressCounts("x", Counts{}, Counts{Breached: 5}, 0.05); r.Regressed || r.P != 1 {
		t.Fatalf("empty baseline: %+v", r)
	}
}

func TestRegress(t *testing.T) {
	var base, cand Tally
	add := func(tl *Tally, cat string, o Outcome, n int) {
		for range n {
			tl.Add(AttemptRow{Category: cat, Outcome: o})
		}
	}
	add(&base, "LLM01", Breached, 5)
	add(&base, "LLM01", Defended, 95)
	add(&cand, "LLM01", Breached, 30)
	add(&cand, "LLM01", Defended, 70)
	add(&cand, "LLM07", Breached, 1)
	rs := Regress(base, cand, 0)
	if len(rs) != 2 || rs[0].Key != "LLM01" || !rs[0].Regressed || rs[1].Key != "LLM07" || rs[1].Regressed {
		t.Fatalf("%+v", rs)
	}
}
