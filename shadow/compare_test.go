package shadow

import (
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestComparators(t *testing.T) {
	tests := []struct {
		name    string
		a, b    string // a is the candidate for ROUGE-L, b the reference
		exact   bool
		jaccard float64
		rougeL  float64
	}{
		{"identical", "The cat sat.", "The cat sat.", true, 1, 1},
		{"whitespace only", "  The cat\n\tsat. ", "The cat sat.", true, 1, 1},
		{"case and punctuation differ", "the cat sat", "The cat sat!", false, 1, 1},
		// {the,cat,sat,on,mat} vs {the,cat,is,on,mat}: 4 shared of 6 → 2/3.
		// LCS "the cat on the mat" = 5 of 6 tokens each side → P = R = F1 = 5/6.
		{"one word differs", "the cat sat on the mat", "the cat is on the mat", false, 2.0 / 3, 5.0 / 6},
		// LCS of [a b c d] and [b d e]: "b d" = 2; P = 2/4, R = 2/3 → F1 = 4/7.
		// Sets {a,b,c,d} ∪ {b,d,e} = 5, ∩ = 2 → 0.4.
		{"partial overlap", "a b c d", "b d e", false, 0.4, 4.0 / 7},
		{"order matters for rouge only", "c b a", "a b c", false, 1, 1.0 / 3},
		{"disjoint", "yes", "no", false, 0, 0},
		{"both empty", "", " \n", true, 1, 1},
		{"one empty", "", "something", false, 0, 0},
		{"unicode", "Größe  café", "größe café", false, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExactMatch(tt.a, tt.b); got != tt.exact {
				t.Errorf("ExactMatch = %v, want %v", got, tt.exact)
			}
			if got := JaccardSimilarity(tt.a, tt.b); !near(got, tt.jaccard) {
				t.Errorf("JaccardSimilarity = %v, want %v", got, tt.jaccard)
			}
			if got := JaccardSimilarity(tt.b, tt.a); !near(got, tt.jaccard) {
				t.Errorf("JaccardSimilarity is not symmetric: %v", got)
			}
			if got := RougeLF1(tt.a, tt.b); !near(got, tt.rougeL) {
				t.Errorf("RougeLF1 = %v, want %v", got, tt.rougeL)
			}
		})
	}
}

func TestRougeLLong(t *testing.T) {
	// Long inputs must not need a quadratic table; this is 2000 × 1500 tokens.
	a := strings.Repeat("alpha beta gamma delta ", 500)
	b := strings.Repeat("alpha gamma delta ", 500)
	// Every token of b appears in order in a: LCS = 1500, P = 0.75, R = 1.
	want := 2 * 0.75 / 1.75
	if got := RougeLF1(a, b); !near(got, want) {
		t.Fatalf("RougeLF1 = %v, want %v", got, want)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	// The classic nearest-rank example: 15, 20, 35, 40, 50.
	xs := []float64{50, 15, 40, 20, 35}
	for _, tt := range []struct{ p, want float64 }{
		{0, 15}, {5, 15}, {30, 20}, {40, 20}, {50, 35}, {95, 50}, {100, 50},
	} {
		if got := Percentile(xs, tt.p); got != tt.want {
			t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if xs[0] != 50 {
		t.Error("Percentile sorted its input in place")
	}
	if got := Percentile(nil, 95); got != 0 {
		t.Errorf("empty sample: %v", got)
	}
}

func TestMannWhitneyU(t *testing.T) {
	tests := []struct {
		name  string
		a, b  []float64
		u, p  float64
		where string
	}{
		// scipy.stats.mannwhitneyu docs example (males vs females, method="asymptotic"):
		// statistic 17.0, pvalue 0.11134688653314041.
		{"scipy docs example", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, 17, 0.11134688653314041, "scipy"},
		// Full separation, n = 3 + 3: U1 = 0, z = (9 − 4.5 − 0.5)/sqrt(9/12·7) = 1.74574, p = 0.080856.
		{"separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.0808555983700523, "hand"},
		{"separated swapped", []float64{4, 5, 6}, []float64{1, 2, 3}, 9, 0.0808555983700523, "hand"},
		// Ties: ranks 1, 3, 3, 3, 5.5, 5.5, 7, 8; R1 = 12.5, U1 = 2.5;
		// Σ(t³−t) = 24 + 6; σ² = 16/12·(9 − 30/56) = 11.2857; z = 5/3.35942 = 1.48835; p = 0.136658.
		{"ties", []float64{1, 2, 2, 3}, []float64{2, 3, 4, 5}, 2.5, 0.13665824773814753, "hand"},
		{"all tied", []float64{7, 7}, []float64{7, 7, 7}, 3, 1, "degenerate"},
		{"empty", nil, []float64{1}, 0, 1, "degenerate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := MannWhitneyU(tt.a, tt.b)
			if !near(u, tt.u) || math.Abs(p-tt.p) > 1e-12 {
				t.Fatalf("MannWhitneyU = (%v, %.17g), want (%v, %.17g) [%s]", u, p, tt.u, tt.p, tt.where)
			}
		})
	}
}

func TestMannWhitneyUDetectsShift(t *testing.T) {
	var inc, cand []float64
	for i := range 200 {
		inc = append(inc, 100+float64(i%17))
		cand = append(cand, 130+float64(i%13))
	}
	if _, p := MannWhitneyU(cand, inc); p > 1e-6 {
		t.Fatalf("a 30 ms shift over 200 samples should be significant, p = %v", p)
	}
	if _, p := MannWhitneyU(inc, inc); p < 0.9 {
		t.Fatalf("identical samples should not differ, p = %v", p)
	}
}

func TestAccumulator(t *testing.T) {
	rows := []PairRow{
		{IncumbentStatus: "ok", CandidateStatus: "ok", IncumbentRepeatStatus: "ok", ExactMatch: true, Similarity: 1, RougeL: 1,
			NoiseExactMatch: true, NoiseSimilarity: 1, NoiseRougeL: 1, IncumbentLatencyMS: 10, CandidateLatencyMS: 20},
		{IncumbentStatus: "ok", CandidateStatus: "ok", IncumbentRepeatStatus: "ok", ExactMatch: false, Similarity: 0.5, RougeL: 0.4,
			NoiseExactMatch: true, NoiseSimilarity: 1, NoiseRougeL: 1, IncumbentLatencyMS: 30, CandidateLatencyMS: 40},
		{IncumbentStatus: "ok", CandidateStatus: "timeout", IncumbentRepeatStatus: "ok",
			NoiseExactMatch: false, NoiseSimilarity: 0.5, NoiseRougeL: 0.5, IncumbentLatencyMS: 20, CandidateLatencyMS: 5000},
		{IncumbentStatus: "http_500", CandidateStatus: "ok", IncumbentRepeatStatus: "skipped", CandidateLatencyMS: 30},
	}
	var whole Accumulator
	for _, r := range rows {
		whole.Add(r)
	}
	s := whole.Summary()
	checks := []struct {
		name      string
		got, want float64
	}{
		{"requests", float64(s.Requests), 4},
		{"candidate errors", float64(s.Errors), 1},
		{"incumbent errors", float64(s.IncumbentErrors), 1},
		{"compared", float64(s.Compared), 2},
		{"noise compared", float64(s.NoiseCompared), 3},
		{"agreement", s.ExactAgreement, 0.5},
		{"similarity", s.MeanSimilarity, 0.75},
		{"rouge", s.MeanRougeL, 0.7},
		{"noise agreement", s.NoiseFloorAgreement, 2.0 / 3},
		{"noise similarity", s.NoiseFloorSimilarity, 2.5 / 3},
		// Successful incumbent latencies 10, 20, 30; candidate 20, 30, 40 (the timeout is excluded).
		{"inc p50", s.IncumbentP50MS, 20},
		{"inc p95", s.IncumbentP95MS, 30},
		{"cand p50", s.CandidateP50MS, 30},
		{"cand p95", s.CandidateP95MS, 40},
		{"cand p99", s.CandidateP99MS, 40},
		{"p95 ratio", s.LatencyP95Ratio, 40.0 / 30},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	u, p := MannWhitneyU([]float64{20, 30, 40}, []float64{10, 20, 30})
	if s.LatencyMannWhitneyU != u || s.LatencyMannWhitneyP != p {
		t.Errorf("Mann-Whitney (%v, %v), want (%v, %v)", s.LatencyMannWhitneyU, s.LatencyMannWhitneyP, u, p)
	}

	// Merging shards gives the same summary as one accumulator.
	var a, b Accumulator
	a.Add(rows[0])
	a.Add(rows[1])
	b.Add(rows[2])
	b.Add(rows[3])
	a.Merge(&b)
	a.Merge(nil)
	if got := a.Summary(); got != s {
		t.Fatalf("merged summary\n%+v\nwant\n%+v", got, s)
	}
	if got := b.Summary(); got.Requests != 2 {
		t.Fatalf("Merge changed its argument: %+v", got)
	}

	var zero Accumulator
	if got := zero.Summary(); got.LatencyMannWhitneyP != 1 || got.Requests != 0 || got.LatencyP95Ratio != 0 {
		t.Fatalf("zero accumulator summary %+v", got)
	}
}
