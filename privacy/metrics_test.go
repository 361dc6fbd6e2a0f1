package privacy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// bruteAUC is the Mann-Whitney statistic by definition.
func bruteAUC(m, n []float64) float64 {
	var s float64
	for _, a := range m {
		for _, b := range n {
			switch {
			case a > b:
				s++
			case a == b:
				s += 0.5
			}
		}
	}
	return s / float64(len(m)*len(n))
}

func TestROCTiesAndAUC(t *testing.T) {
	members := []float64{3, 2, 2, 1}
	non := []float64{2, 1, 0}
	r, err := NewROC(members, non)
	if err != nil {
		t.Fatal(err)
	}
	// Thresholds +Inf, 3, 2, 1, 0: the three scores of 2 move together.
	want := []ROCPoint{
		{Threshold: math.Inf(1), FN: 4, TN: 3},
		{Threshold: 3, TP: 1, FN: 3, TN: 3, TPR: 0.25},
		{Threshold: 2, TP: 3, FP: 1, FN: 1, TN: 2, TPR: 0.75, FPR: 1.0 / 3},
		{Threshold: 1, TP: 4, FP: 2, TN: 1, TPR: 1, FPR: 2.0 / 3},
		{Threshold: 0, TP: 4, FP: 3, TPR: 1, FPR: 1},
	}
	if !slices.Equal(r.Points, want) {
		t.Fatalf("points\n%+v\nwant\n%+v", r.Points, want)
	}
	// Ties count ½: member 3 beats all three, each 2 beats two and ties
	// one, member 1 beats one and ties one: (3 + 2·2.5 + 1.5)/12.
	if got, b := r.AUC(), bruteAUC(members, non); math.Abs(got-b) > 1e-12 {
		t.Errorf("AUC %g, Mann-Whitney %g", got, b)
	}
	if got := r.AUC(); math.Abs(got-(3+2*2.5+1.5)/12) > 1e-12 {
		t.Errorf("AUC %g, want %g", got, (3+2*2.5+1.5)/12)
	}
	// Input order must not matter.
	r2, _ := NewROC([]float64{1, 2, 3, 2}, []float64{0, 2, 1})
	if !slices.Equal(r.Points, r2.Points) {
		t.Error("ROC depends on input order")
	}
}

func TestAUCRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		m := make([]float64, 1+rng.IntN(40))
		n := make([]float64, 1+rng.IntN(40))
		for i := range m {
			m[i] = float64(rng.IntN(6)) // many ties
		}
		for i := range n {
			n[i] = float64(rng.IntN(5))
		}
		r, err := NewROC(m, n)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.AUC(), bruteAUC(m, n); math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d: AUC %g, brute %g", trial, got, want)
		}
	}
	// Perfect separation and its reverse.
	r, _ := NewROC([]float64{5, 6}, []float64{1, 2})
	if r.AUC() != 1 {
		t.Errorf("separated AUC %g", r.AUC())
	}
	r, _ = NewROC([]float64{1, 2}, []float64{5, 6})
	if r.AUC() != 0 {
		t.Errorf("reversed AUC %g", r.AUC())
	}
}

func TestTPRAtFPR(t *testing.T) {
	// 1000 non-members 0..999, members: 5 above all non-members, then 50
	// between non-members 990..999.
	var m, n []float64
	for i := range 1000 {
		n = append(n, float64(i))
	}
	for i := range 5 {
		m = append(m, 2000+float64(i))
	}
	for i := range 50 {
		m = append(m, 989.5+float64(i%10)) // ties with nothing
	}
	for range 45 {
		m = append(m, -1)
	}
	r, err := NewROC(m, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.TPRAtFPR(0.001)
	if err != nil {
		t.Fatal(err)
	}
	// FPR ≤ 0.1% allows one false positive (score 999); the lowest such
	// threshold is 998.5 with TP = 5 + 5 (members at 998.5).
	if p.FP != 1 || p.Threshold != 998.5 || p.TP != 10 || p.TPR != 0.1 {
		t.Errorf("TPR@0.1%% point %+v", p)
	}
	p, _ = r.TPRAtFPR(0.01)
	// Ten false positives (990..999) allowed: threshold 989.5, TP = 55.
	if p.FP != 10 || p.Threshold != 989.5 || p.TP != 55 {
		t.Errorf("TPR@1%% point %+v", p)
	}
	p, _ = r.TPRAtFPR(0)
	if p.FP != 0 || p.TP != 5 {
		t.Errorf("TPR@0 point %+v", p)
	}
	if _, err := r.TPRAtFPR(1.5); err == nil {
		t.Error("FPR 1.5 accepted")
	}
}

func TestThin(t *testing.T) {
	m := make([]float64, 500)
	n := make([]float64, 500)
	for i := range m {
		m[i], n[i] = float64(i), float64(i)+0.5
	}
	r, _ := NewROC(m, n)
	th, err := r.Thin(50)
	if err != nil {
		t.Fatal(err)
	}
	if len(th) != 50 || th[0] != r.Points[0] || th[49] != r.Points[len(r.Points)-1] {
		t.Fatalf("thinned %d points, ends %+v %+v", len(th), th[0], th[len(th)-1])
	}
	for k := 1; k < len(th); k++ {
		if !(th[k].Threshold < th[k-1].Threshold) {
			t.Fatalf("thinned points out of order at %d", k)
		}
	}
	short, _ := r.Thin(5000)
	if len(short) != len(r.Points) {
		t.Error("short curve was thinned")
	}
	if _, err := r.Thin(1); err == nil {
		t.Error("Thin(1) accepted")
	}
	rows := r.Rows("rel-1", "loss", th)
	if len(rows) != 50 || rows[3].FPR != th[3].FPR || rows[3].Members != 500 || rows[0].Attack != "loss" {
		t.Errorf("rows %+v", rows[3])
	}
}

func TestClopperPearson(t *testing.T) {
	// Edge cases by the page's formulas.
	if ub, _ := ClopperPearsonUpper(10, 10, 0.05); ub != 1 {
		t.Errorf("ub(n,n) = %g", ub)
	}
	if ub, _ := ClopperPearsonUpper(0, 10, 0.05); math.Abs(ub-(1-math.Pow(0.05, 0.1))) > 1e-15 {
		t.Errorf("ub(0,n) = %g", ub)
	}
	if lb, _ := ClopperPearsonLower(0, 10, 0.05); lb != 0 {
		t.Errorf("lb(0,n) = %g", lb)
	}
	if lb, _ := ClopperPearsonLower(10, 10, 0.05); math.Abs(lb-math.Pow(0.05, 0.1)) > 1e-15 {
		t.Errorf("lb(n,n) = %g", lb)
	}
	// Interior: the binomial tail at the bound equals a. P[Bin(n, ub) ≤ k] = a.
	for _, c := range [][2]int{{1, 10}, {3, 20}, {50, 100}, {99, 100}} {
		k, n := c[0], c[1]
		ub, _ := ClopperPearsonUpper(k, n, 0.05)
		lb, _ := ClopperPearsonLower(k, n, 0.05)
		if tail := binomCDF(k, n, ub); math.Abs(tail-0.05) > 1e-9 {
			t.Errorf("P[Bin(%d, ub=%g) ≤ %d] = %g, want 0.05", n, ub, k, tail)
		}
		if tail := 1 - binomCDF(k-1, n, lb); math.Abs(tail-0.05) > 1e-9 {
			t.Errorf("P[Bin(%d, lb=%g) ≥ %d] = %g, want 0.05", n, lb, k, tail)
		}
		if !(lb < float64(k)/float64(n) && float64(k)/float64(n) < ub) {
			t.Errorf("k=%d n=%d: %g < %g < %g violated", k, n, lb, float64(k)/float64(n), ub)
		}
	}
	for _, c := range []struct {
		k, n int
		a    float64
	}{{-1, 5, 0.05}, {6, 5, 0.05}, {0, 0, 0.05}, {1, 5, 0}, {1, 5, 1}, {1, 5, math.NaN()}} {
		if _, err := ClopperPearsonUpper(c.k, c.n, c.a); err == nil {
			t.Errorf("ub(%d, %d, %g) accepted", c.k, c.n, c.a)
		}
		if _, err := ClopperPearsonLower(c.k, c.n, c.a); err == nil {
			t.Errorf("lb(%d, %d, %g) accepted", c.k, c.n, c.a)
		}
	}
}

func binomCDF(k, n int, p float64) float64 {
	var s float64
	for i := 0; i <= k; i++ {
		lc, _ := math.Lgamma(float64(n + 1))
		l1, _ := math.Lgamma(float64(i + 1))
		l2, _ := math.Lgamma(float64(n - i + 1))
		s += math.Exp(lc - l1 - l2 + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return s
}

func TestNasrSymmetricTerm(t *testing.T) {
	// An attack that is reliably wrong is as informative as one that is
	// right: the second term picks it up.
	a, _ := NasrEpsilon(0, 1000, 600, 1000, 0.05, 0)
	b, _ := NasrEpsilon(600, 1000, 0, 1000, 0.05, 0)
	if a.Epsilon <= 0 || math.Abs(a.Epsilon-b.Epsilon) > 1e-12 {
		t.Errorf("asymmetric: %g vs %g", a.Epsilon, b.Epsilon)
	}
	// A coin-flip attack proves nothing.
	c, _ := NasrEpsilon(500, 1000, 500, 1000, 0.05, 1e-5)
	if c.Epsilon != 0 {
		t.Errorf("coin flip ε = %g", c.Epsilon)
	}
}

func gauss(rng *rand.Rand, n int, mu float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = mu + rng.NormFloat64()
	}
	return out
}

func TestScanAndHeldOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 0))
	m, n := gauss(rng, 1000, 2.5), gauss(rng, 1000, 0)
	opt := ScanOptions{Alpha: 0.05, Delta: 1e-5}
	s, err := ScanEpsilon(m, n, opt)
	if err != nil {
		t.Fatal(err)
	}
	if s.Correction != CorrectionBonferroni || s.ThresholdsScanned != 2000 || s.AlphaPerTest != 0.05/2000 || s.Confidence != 0.95 {
		t.Errorf("scan metadata %+v", s)
	}
	// The reported threshold reproduces the reported counts.
	fp, fn := 0, 0
	for _, v := range n {
		if v >= s.Threshold {
			fp++
		}
	}
	for _, v := range m {
		if v < s.Threshold {
			fn++
		}
	}
	if fp != s.FP || fn != s.FN {
		t.Errorf("threshold %g gives FP %d FN %d, bound says %d %d", s.Threshold, fp, fn, s.FP, s.FN)
	}
	// Bonferroni costs something: fewer thresholds, looser per-test level.
	few, _ := ScanEpsilon(m, n, ScanOptions{Alpha: 0.05, Delta: 1e-5, MaxThresholds: 20})
	if few.ThresholdsScanned != 20 || few.AlphaPerTest != 0.05/20 {
		t.Errorf("thinned scan %+v", few)
	}
	if !(s.Epsilon > 1 && few.Epsilon > 1) {
		t.Errorf("separated Gaussians (d′ = 2.5): ε %g / %g, want > 1", s.Epsilon, few.Epsilon)
	}
	h, err := HeldOutEpsilon(m, n, opt, 42)
	if err != nil {
		t.Fatal(err)
	}
	if h.Correction != CorrectionHeldOut || h.AlphaPerTest != 0.05 || h.Members != 500 || h.NonMembers != 500 || !(h.Epsilon > 0.5) {
		t.Errorf("held-out %+v", h)
	}
	h2, _ := HeldOutEpsilon(m, n, opt, 42)
	if h2 != h {
		t.Error("held-out split not deterministic")
	}
	h3, _ := HeldOutEpsilon(m, n, opt, 43)
	if h3 == h {
		t.Error("seed does not change the split")
	}
	// Indistinguishable sets: the corrected bound must not claim leakage.
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 9))
		a, b := gauss(rng, 500, 0), gauss(rng, 500, 0)
		if s, _ := ScanEpsilon(a, b, opt); s.Epsilon > 0.5 {
			t.Errorf("seed %d: null scan ε %g", seed, s.Epsilon)
		}
	}
	for _, bad := range []ScanOptions{{Alpha: 0, Delta: 0}, {Alpha: 0.05, Delta: -1}, {Alpha: 0.05, MaxThresholds: 1}} {
		if _, err := ScanEpsilon(m, n, bad); err == nil {
			t.Errorf("options %+v accepted", bad)
		}
	}
}

func TestOneRunAudit(t *testing.T) {
	// 1000 canaries, half included; scores separate perfectly at the ends.
	rng := rand.New(rand.NewPCG(5, 5))
	const m = 1000
	scores := make([]float64, m)
	in := make([]bool, m)
	for i := range m {
		in[i] = rng.IntN(2) == 1
		scores[i] = rng.NormFloat64()
		if in[i] {
			scores[i] += 3
		}
	}
	res, err := OneRunAudit(scores, in, 50, 50, 0, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if res.R != 100 || res.V != 100 {
		t.Fatalf("expected all 100 extreme guesses right, got %+v", res)
	}
	want, _ := OneRunEpsilon(m, 100, 100, 0, 0.05)
	if res.Epsilon != want || math.Abs(want-3.4930) > 5e-5 {
		t.Errorf("ε %g, want %g", res.Epsilon, want)
	}
	// A random guesser: about half right, no leak proven.
	for i := range scores {
		scores[i] = rng.NormFloat64()
	}
	res, _ = OneRunAudit(scores, in, 200, 200, 1e-5, 0.05)
	if res.Epsilon > 0.3 {
		t.Errorf("random scores: ε %g (v=%d of %d)", res.Epsilon, res.V, res.R)
	}
	if _, err := OneRunAudit(scores, in[:10], 1, 1, 0, 0.05); err == nil || !strings.Contains(err.Error(), "included") {
		t.Errorf("length mismatch: %v", err)
	}
	if _, err := OneRunAudit(scores, in, 600, 600, 0, 0.05); err == nil || !strings.Contains(err.Error(), "k_plus") {
		t.Errorf("too many guesses: %v", err)
	}
	// Monotone in v: more correct guesses, larger ε.
	prev := -1.0
	for v := 50; v <= 100; v += 10 {
		e, _ := OneRunEpsilon(1000, 100, v, 1e-5, 0.05)
		if e < prev {
			t.Errorf("ε(v=%d) = %g < ε(v-10) = %g", v, e, prev)
		}
		prev = e
	}
}

func TestExposure(t *testing.T) {
	refs := []float64{5, 6, 7, 8, 9, 10, 11}
	e, rank, err := Exposure(1, refs)
	if err != nil {
		t.Fatal(err)
	}
	if rank != 1 || e != 3 { // |R| = 8, log₂8 − log₂1
		t.Errorf("likeliest canary: exposure %g rank %d", e, rank)
	}
	// A tie: the reference ranks first.
	e, rank, _ = Exposure(5, refs)
	if rank != 2 || math.Abs(e-2) > 1e-15 {
		t.Errorf("tied canary: exposure %g rank %d", e, rank)
	}
	e, rank, _ = Exposure(100, refs)
	if rank != 8 || e != 0 {
		t.Errorf("least likely canary: exposure %g rank %d", e, rank)
	}
	if _, _, err := Exposure(1, nil); err == nil || !strings.Contains(err.Error(), "reference set") {
		t.Errorf("no references: %v", err)
	}
	if _, _, err := Exposure(math.NaN(), refs); err == nil {
		t.Error("NaN canary accepted")
	}
}

func TestExtraction(t *testing.T) {
	cases := []struct {
		completion, suffix string
		exact, near        bool
		dist               float64
	}{
		{"jane.roe@example.org, +1-555-0100 and more", "jane.roe@example.org, +1-555-0100", true, true, 0},
		{"jane.roe@example.org, +1-555-0101", "jane.roe@example.org, +1-555-0100", false, true, 1.0 / 33},
		{"I cannot share that.", "jane.roe@example.org, +1-555-0100", false, false, -1},
		{"", "abc", false, false, 1},
		{"Zoë Ünal", "Zoë Ünal", true, true, 0}, // code points, not bytes
	}
	var ms []ExtractionMatch
	for _, c := range cases {
		m, err := MatchExtraction(c.completion, c.suffix, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		if m.Exact != c.exact || m.Near != c.near || (c.dist >= 0 && math.Abs(m.Distance-c.dist) > 1e-12) {
			t.Errorf("%q vs %q: %+v", c.completion, c.suffix, m)
		}
		ms = append(ms, m)
	}
	if d := levenshtein([]rune("kitten"), []rune("sitting")); d != 3 {
		t.Errorf("levenshtein(kitten, sitting) = %d", d)
	}
	s, err := SummariseExtraction(ms, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := ClopperPearsonUpper(2, 5, 0.05)
	if s.Exact != 2 || s.Near != 3 || s.ExactRate != 0.4 || s.NearRate != 0.6 || s.ExactUpper != ub || s.Confidence != 0.95 {
		t.Errorf("summary %+v", s)
	}
	if _, err := MatchExtraction("x", "", 0.1); err == nil {
		t.Error("empty suffix accepted")
	}
	if _, err := MatchExtraction("x", "y", 1); err == nil {
		t.Error("threshold 1 accepted")
	}
	if _, err := SummariseExtraction(nil, 0.05); err == nil {
		t.Error("no attempts accepted")
	}
}

func TestLiRAOffline(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 0))
	const n, shadows = 400, 16
	target := make([]float64, n)
	out := make([][]float64, n)
	member := make([]bool, n)
	for i := range n {
		// Each example has its own difficulty: OUT φ ~ N(c_i, 1); members'
		// φ is shifted up by 2.
		c := 3 * rng.NormFloat64()
		for range shadows {
			out[i] = append(out[i], c+rng.NormFloat64())
		}
		member[i] = i%2 == 0
		target[i] = c + rng.NormFloat64()
		if member[i] {
			target[i] += 2
		}
	}
	var aucs []float64
	for _, method := range []LiRAMethod{LiRAOneSided, LiRAGaussian} {
		res, err := LiRAOffline(target, out, LiRAOptions{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != method {
			t.Errorf("result names %q", res.Method)
		}
		var ms, ns []float64
		for i, s := range res.Score {
			if member[i] {
				ms = append(ms, s)
			} else {
				ns = append(ns, s)
			}
		}
		r, _ := NewROC(ms, ns)
		aucs = append(aucs, r.AUC())
	}
	// Per-example calibration beats the raw φ, whose spread across
	// examples (sd 3) swamps the member shift.
	var ms, ns []float64
	for i, v := range target {
		if member[i] {
			ms = append(ms, v)
		} else {
			ns = append(ns, v)
		}
	}
	raw, _ := NewROC(ms, ns)
	if !(aucs[0] > 0.85 && aucs[0] > raw.AUC()+0.1) {
		t.Errorf("one-sided AUC %g, raw φ AUC %g", aucs[0], raw.AUC())
	}
	if !(aucs[1] > 0.6) {
		t.Errorf("gaussian AUC %g", aucs[1])
	}

	// Exact statistics on a small case: OUT {1, 2, 3, 10} has median 2.5,
	// mean 4 and population sd sqrt((9+4+1+36)/4).
	res, err := LiRAOffline([]float64{4}, [][]float64{{1, 2, 3, 10}}, LiRAOptions{Method: LiRAOneSided})
	if err != nil {
		t.Fatal(err)
	}
	sd := math.Sqrt(50.0 / 4)
	z := (4 - 2.5) / sd
	if res.Mu[0] != 2.5 || math.Abs(res.Sigma[0]-sd) > 1e-12 || math.Abs(res.Score[0]-z) > 1e-12 ||
		math.Abs(res.Statistic[0]-0.5*math.Erfc(-z/math.Sqrt2)) > 1e-15 {
		t.Errorf("one-sided: %+v, want μ 2.5 σ %g z %g", res, sd, z)
	}
	g, _ := LiRAOffline([]float64{4}, [][]float64{{1, 2, 3, 10}}, LiRAOptions{Method: LiRAGaussian})
	ll := -0.5*z*z - math.Log(sd) - 0.5*math.Log(2*math.Pi)
	if math.Abs(g.Statistic[0]-ll) > 1e-12 || g.Score[0] != -g.Statistic[0] {
		t.Errorf("gaussian: %+v, want log-lik %g", g, ll)
	}
	// Identical shadows: σ floored, scores finite.
	f, _ := LiRAOffline([]float64{1}, [][]float64{{0, 0, 0}}, LiRAOptions{Method: LiRAOneSided, SigmaFloor: 0.01})
	if f.Sigma[0] != 0.01 || f.Score[0] != 100 {
		t.Errorf("floored: %+v", f)
	}
	if _, err := LiRAOffline([]float64{1}, [][]float64{{0}}, LiRAOptions{Method: LiRAOneSided}); err == nil || !strings.Contains(err.Error(), "out[0]") {
		t.Errorf("one shadow: %v", err)
	}
	if _, err := LiRAOffline([]float64{1}, [][]float64{{0, 1}}, LiRAOptions{}); err == nil || !strings.Contains(err.Error(), "method") {
		t.Errorf("no method: %v", err)
	}
}

func TestShadowOut(t *testing.T) {
	const n = 50
	trained := 0
	train := func(ctx context.Context, idx []int) (func(int) (float64, error), error) {
		trained++
		set := map[int]bool{}
		for _, i := range idx {
			set[i] = true
		}
		return func(i int) (float64, error) {
			if set[i] {
				return 0, fmt.Errorf("asked for φ of training example %d", i)
			}
			return float64(i), nil
		}, nil
	}
	out, err := ShadowOut(context.Background(), n, 8, 3, train)
	if err != nil {
		t.Fatal(err)
	}
	if trained != 8 {
		t.Errorf("%d shadows trained", trained)
	}
	total := 0
	for i, o := range out {
		for _, v := range o {
			if v != float64(i) {
				t.Fatalf("out[%d] holds %g", i, v)
			}
		}
		total += len(o)
	}
	// Each example is OUT for Bin(8, ½) shadows: 200 of 400 on average.
	if total < 150 || total > 250 {
		t.Errorf("%d OUT values, want about 200", total)
	}
	again, _ := ShadowOut(context.Background(), n, 8, 3, train)
	if fmt.Sprint(again) != fmt.Sprint(out) {
		t.Error("ShadowOut not deterministic")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ShadowOut(ctx, n, 8, 3, train); err == nil {
		t.Error("cancelled context ignored")
	}
}

func TestValidation(t *testing.T) {
	err := ValidateScores("member", "scores.parquet", "score", nil)
	if err == nil || !strings.Contains(err.Error(), "member set in scores.parquet is empty") {
		t.Errorf("empty: %v", err)
	}
	err = ValidateScores("non-member", "nm.parquet", "loss", []float64{1, 2, math.NaN(), math.Inf(1)})
	for _, want := range []string{"nm.parquet", `"loss"`, "row 2", "NaN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NaN: %v lacks %s", err, want)
		}
	}
	if err := ValidateScores("member", "f", "c", []float64{1, -1e300}); err != nil {
		t.Errorf("finite scores rejected: %v", err)
	}
	if _, err := StatsFromLogits([][]float64{{1, 2}, {1}}, []int{0, 0}); err == nil || !strings.Contains(err.Error(), "logits[1]") {
		t.Errorf("ragged logits: %v", err)
	}
	if _, err := StatsFromLogits([][]float64{{1, 2}}, []int{2}); err == nil || !strings.Contains(err.Error(), "labels[0]") {
		t.Errorf("label out of range: %v", err)
	}
	if _, err := StatsFromLogits([][]float64{{1, 2}}, []int{0, 1}); err == nil || !strings.Contains(err.Error(), "labels has 2") {
		t.Errorf("length mismatch: %v", err)
	}
	if _, err := StatsFromProbs([][]float64{{0.5, 1.5}}, []int{0}); err == nil || !strings.Contains(err.Error(), "probs[0][1]") {
		t.Errorf("bad probability: %v", err)
	}
}

func TestStatsStable(t *testing.T) {
	s, err := StatsFromLogits([][]float64{{1000, -1000, 0}, {-1000, 1000, 0}}, []int{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range s {
		for _, v := range []float64{st.Confidence, st.Loss, st.Logit, st.Hinge} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite statistic %+v", st)
			}
		}
	}
	if s[0].Loss != 0 || s[0].Logit != 1000 || s[1].Loss != 2000 || s[1].Logit != -2000 {
		t.Errorf("extreme logits: %+v", s)
	}
	p, _ := StatsFromProbs([][]float64{{0, 1}}, []int{0})
	if math.IsInf(p[0].Loss, 0) || p[0].Loss != -math.Log(MinProb) {
		t.Errorf("certain and wrong: %+v", p[0])
	}
	sc, _ := AttackScores(s, StatLoss)
	if sc[0] != -s[0].Loss {
		t.Errorf("loss attack score not negated")
	}
	if _, err := AttackScores(s, "entropy"); err == nil {
		t.Error("unknown statistic accepted")
	}
}

func TestExplain(t *testing.T) {
	f := AuditFindings{AUC: 0.62, TPRAt01: 0.004, TPRAt1: 0.032, Attack: "loss threshold",
		Epsilon:            EpsilonBound{Epsilon: 0.41, Confidence: 0.95, Delta: 1e-5, ThresholdsScanned: 200, Correction: CorrectionBonferroni},
		TheoreticalEpsilon: 2.9, TheoreticalDelta: 1e-5}
	got := Explain(f)
	want := "An attacker who can query the model and runs a loss threshold attack can tell training records from unseen ones with AUC 0.620 (0.5 is a coin flip, 1.0 is always right); that is a weak but real signal. " +
		"Allowed to wrongly accuse only 1 in 1000 non-members, it identifies 0.4% of training records (3.2% at 1 in 100). " +
		"From this audit the model's privacy loss is at least ε = 0.41 with 95.0% confidence (δ = 1e-05, corrected for trying 200 thresholds), a small measured leak. " +
		"Training was certified differentially private at ε = 2.90 (δ = 1e-05), and the audit is consistent with that guarantee."
	if got != want {
		t.Errorf("Explain:\n%s\nwant\n%s", got, want)
	}
	f.Epsilon.Epsilon = 3.5
	if !strings.Contains(Explain(f), "DP implementation or its accounting is wrong") {
		t.Error("violation not called out")
	}
	f.TheoreticalEpsilon = 0
	if n := strings.Count(Explain(f), ". "); n+1 < 2 || n+1 > 4 {
		t.Errorf("%d sentences", n+1)
	}
}
