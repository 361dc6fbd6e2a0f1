package predictive_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/refmodel/predictive"
)

func serve(t testing.TB, kind, variant string) *modelapi.OIPClient {
	t.Helper()
	e, err := predictive.NewEndpoint(kind, variant)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(predictive.NewHandler(e, predictive.ServerOptions{}))
	t.Cleanup(srv.Close)
	return &modelapi.OIPClient{BaseURL: srv.URL, Model: kind, BatchSize: 500}
}

// evalRows are held-out applicants with their counterfactual twins.
func evalRows(t testing.TB) predictive.CreditData {
	t.Helper()
	d, err := predictive.LoadCredit(predictive.RowRange{Seed: 99, N: 2000, Twins: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fairness computes, inline, AIF360's disparate impact SR_unpriv/SR_priv
// on original rows, and the counterfactual flip rate over (row, twin)
// pairs (decision: p(approve) > 0.5, strict).
func fairness(d predictive.CreditData, p [][]float64, col, unpriv, priv string) (di, flips float64) {
	c, _ := d.Table.Column(col)
	index := make(map[int64]int, d.Len())
	for i, id := range d.ID {
		index[id] = i
	}
	var n, sel [2]float64
	var pairs, flipped float64
	for i := range p {
		approve := p[i][1] > 0.5
		if d.TwinOf[i] >= 0 {
			if d.Flipped[i] == col {
				pairs++
				if approve != (p[index[d.TwinOf[i]]][1] > 0.5) {
					flipped++
				}
			}
			continue
		}
		g := -1
		switch c.Strings[i] {
		case unpriv:
			g = 0
		case priv:
			g = 1
		}
		if g >= 0 {
			n[g]++
			if approve {
				sel[g]++
			}
		}
	}
	return (sel[0] / n[0]) / (sel[1] / n[1]), flipped / pairs
}

func TestCreditFairVersusBiased(t *testing.T) {
	d := evalRows(t)
	ctx := context.Background()
	got := map[string][2]float64{}
	for _, v := range []string{predictive.CreditFair, predictive.CreditBiased} {
		c := serve(t, predictive.KindCredit, v)
		p, st, err := c.PredictTable(ctx, d.Table)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if st.Rows != int64(d.Len()) || st.Requests != int64((d.Len()+499)/500) || st.Retries != 0 {
			t.Errorf("%s: stats %+v for %d rows", v, st, d.Len())
		}
		for _, attr := range [][3]string{{"race", "black", "white"}, {"sex", "female", "male"}} {
			di, flips := fairness(d, p, attr[0], attr[1], attr[2])
			t.Logf("%s %s: disparate impact %.3f, flip rate %.4f", v, attr[0], di, flips)
			got[v+"/"+attr[0]] = [2]float64{di, flips}
		}
	}
	for _, attr := range []string{"race", "sex"} {
		fair, biased := got["fair/"+attr], got["biased/"+attr]
		if fair[0] < 0.8 || fair[0] > 1.25 || fair[1] != 0 {
			t.Errorf("fair %s: disparate impact %.3f (want within 0.8..1.25), flip rate %.4f (want 0)", attr, fair[0], fair[1])
		}
		if biased[0] >= 0.8 || biased[1] < 0.05 {
			t.Errorf("biased %s: disparate impact %.3f (want < 0.8), flip rate %.4f (want ≥ 0.05)", attr, biased[0], biased[1])
		}
	}
}

func TestCreditLimitFairVersusBiased(t *testing.T) {
	d := evalRows(t)
	ratio := map[string]float64{}
	for _, v := range []string{predictive.LimitFair, predictive.LimitBiased} {
		c := serve(t, predictive.KindCreditLimit, v)
		p, _, err := c.PredictTable(context.Background(), d.Table)
		if err != nil {
			t.Fatal(err)
		}
		sex, _ := d.Table.Column("sex")
		var sum, n [2]float64
		for i := range p {
			if len(p[i]) != 1 || !(p[i][0] > 0) {
				t.Fatalf("%s row %d: %v, want one positive limit", v, i, p[i])
			}
			if d.TwinOf[i] >= 0 {
				continue
			}
			g := 0
			if sex.Strings[i] == "male" {
				g = 1
			}
			sum[g] += p[i][0]
			n[g]++
		}
		ratio[v] = (sum[0] / n[0]) / (sum[1] / n[1])
		t.Logf("%s: mean limit female/male %.3f", v, ratio[v])
	}
	if r := ratio[predictive.LimitFair]; r < 0.9 || r > 1.1 {
		t.Errorf("fair limit ratio %.3f, want within 0.9..1.1", r)
	}
	if r := ratio[predictive.LimitBiased]; r > 0.8 {
		t.Errorf("biased limit ratio %.3f, want < 0.8", r)
	}
}

// The overfit scorer memorises its members: their mean cross-entropy
// loss is far below that of non-members from the same distribution.
func TestOverfitMembershipGap(t *testing.T) {
	c := serve(t, predictive.KindCredit, predictive.CreditOverfit)
	loss := func(r predictive.RowRange) float64 {
		d, err := predictive.LoadCredit(r)
		if err != nil {
			t.Fatal(err)
		}
		y, err := predictive.HistoricalApprovals(d, false)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := c.PredictTable(context.Background(), d.Table)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i := range p {
			s -= math.Log(max(p[i][y[i]], 1e-12))
		}
		return s / float64(len(p))
	}
	mem, non := loss(predictive.OverfitMembers()), loss(predictive.OverfitNonMembers())
	t.Logf("mean loss: members %.3f, non-members %.3f", mem, non)
	if mem > 0.1 || non < 5*mem || non-mem < 0.3 {
		t.Errorf("loss gap too small: members %.3f, non-members %.3f", mem, non)
	}

	// The recipe is reusable: training it again on the members gives the
	// same predictions, so shadow models follow the target's recipe.
	d, _ := predictive.LoadCredit(predictive.OverfitMembers())
	y, _ := predictive.HistoricalApprovals(d, false)
	m, err := predictive.Train(d.Table, y, predictive.OverfitOptions())
	if err != nil {
		t.Fatal(err)
	}
	local, _ := m.Predict(d.Table)
	remote, _, _ := c.PredictTable(context.Background(), d.Table)
	for i := range local {
		if local[i][1] != remote[i][1] {
			t.Fatalf("row %d: retrained %v, served %v", i, local[i], remote[i])
		}
	}
}

func scans(t testing.TB, n int) ([]float32, []int) {
	t.Helper()
	const per = predictive.ImageSide * predictive.ImageSide
	pix := make([]float32, 0, n*per)
	var labels []int
	one := make([]float32, per)
	for row := range datasets.Images(99, n, datasets.ImageOptions{}) {
		if err := predictive.DecodeScan(row.PNG, one); err != nil {
			t.Fatal(err)
		}
		pix = append(pix, one...)
		labels = append(labels, int(row.LabelID))
	}
	return pix, labels
}

func argmax(p []float64) int {
	b := 0
	for i := range p {
		if p[i] > p[b] {
			b = i
		}
	}
	return b
}

// Noise flip rate (metrics.md): one draw δ ~ U[−ε, ε] per scan, ε = 8/255.
func TestImagingBrittleVersusRobust(t *testing.T) {
	const n, side = 150, predictive.ImageSide
	pix, labels := scans(t, n)
	noisy := make([]float32, len(pix))
	predictive.AddUniformNoise(rand.New(rand.NewPCG(5, 6)), pix, noisy, 8.0/255)
	shape := []int{n, side, side}
	rate := map[string]float64{}
	for _, v := range []string{predictive.ImagingBrittle, predictive.ImagingRobust} {
		c := serve(t, predictive.KindImaging, v)
		c.BatchSize = 64
		clean, _, err := c.PredictTensor(context.Background(), predictive.InputImage, shape, pix)
		if err != nil {
			t.Fatal(err)
		}
		pert, _, err := c.PredictTensor(context.Background(), predictive.InputImage, shape, noisy)
		if err != nil {
			t.Fatal(err)
		}
		var correct, flips int
		for i := range clean {
			if argmax(clean[i]) == labels[i] {
				correct++
			}
			if argmax(clean[i]) != argmax(pert[i]) {
				flips++
			}
		}
		acc := float64(correct) / n
		rate[v] = float64(flips) / n
		t.Logf("%s: accuracy %.3f, flip rate at ε=8/255 %.3f", v, acc, rate[v])
		if acc < 0.6 {
			t.Errorf("%s: accuracy %.3f, want ≥ 0.6 (chance is 0.33)", v, acc)
		}
	}
	if rate[predictive.ImagingBrittle] < 0.3 || rate[predictive.ImagingRobust] > 0.05 {
		t.Errorf("flip rates brittle %.3f (want ≥ 0.3), robust %.3f (want ≤ 0.05)", rate[predictive.ImagingBrittle], rate[predictive.ImagingRobust])
	}
}

func TestServerProtocol(t *testing.T) {
	c := serve(t, predictive.KindCredit, predictive.CreditBiased)
	ctx := context.Background()
	md, err := c.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "credit" || md.Versions[0] != "biased" || len(md.Inputs) != 14 || md.Outputs[0].Name != predictive.OutputProbabilities {
		t.Errorf("metadata %+v", md)
	}
	if ok, err := c.Ready(ctx); !ok || err != nil {
		t.Errorf("ready = %v, %v", ok, err)
	}
	if ok, err := c.ServerReady(ctx); !ok || err != nil {
		t.Errorf("server ready = %v, %v", ok, err)
	}
	c.Version = "biased"
	d := evalRows(t)
	small := d.Table.Slice(0, 3)
	if _, _, err := c.PredictTable(ctx, small); err != nil {
		t.Errorf("versioned infer: %v", err)
	}

	// 4xx name the problem and are not retried.
	check := func(name string, tab modelapi.Table, status int, want string) {
		t.Helper()
		_, st, err := c.PredictTable(ctx, tab)
		var ie *modelapi.InferError
		if !errors.As(err, &ie) || ie.Status != status || ie.Retryable() || !strings.Contains(ie.Msg, want) || st.Retries != 0 {
			t.Errorf("%s: err = %v (stats %+v), want HTTP %d containing %q", name, err, st, status, want)
		}
	}
	noRace := modelapi.Table{}
	for _, col := range small.Columns {
		if col.Name != "race" {
			noRace.Columns = append(noRace.Columns, col)
		}
	}
	check("missing input", noRace, 400, `input "race": missing`)
	bad := modelapi.Table{Columns: append([]modelapi.Column(nil), small.Columns...)}
	for i, col := range bad.Columns {
		if col.Name == "race" {
			bad.Columns[i] = modelapi.StringColumn("race", []string{"white", "martian", "black"})
		}
		if col.Name == "age" {
			bad.Columns[i] = modelapi.StringColumn("age", []string{"1", "2", "3"})
		}
	}
	check("string age", bad, 400, `input "age"`)
	for i, col := range bad.Columns {
		if col.Name == "age" {
			bad.Columns[i] = small.Columns[i]
		}
	}
	check("unknown category", bad, 400, `input "race": row 1 is "martian"`)
	c.Version = "fair"
	check("other version", small, 404, `no version "fair"`)
	c.Version, c.Model = "", "imaging"
	check("other model", small, 404, `model "imaging" not found`)

	// Body cap: 413, not retried.
	e, _ := predictive.NewEndpoint(predictive.KindCredit, predictive.CreditFair)
	srv := httptest.NewServer(predictive.NewHandler(e, predictive.ServerOptions{MaxBodyBytes: 4096}))
	defer srv.Close()
	c2 := &modelapi.OIPClient{BaseURL: srv.URL, Model: "credit"}
	_, _, err = c2.PredictTable(ctx, d.Table.Slice(0, 200))
	var ie *modelapi.InferError
	if !errors.As(err, &ie) || ie.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("over the cap: %v", err)
	}
}

// Training happens at server start, so it must stay fast and
// deterministic.
func TestDeterministic(t *testing.T) {
	d := evalRows(t)
	sub := d.Table.Slice(0, 50)
	for _, v := range []string{predictive.CreditFair, predictive.CreditBiased} {
		a, _ := predictive.NewCreditScorer(v)
		b, _ := predictive.NewCreditScorer(v)
		pa, _ := a.Predict(sub)
		pb, _ := b.Predict(sub)
		for i := range pa {
			if pa[i][1] != pb[i][1] {
				t.Fatalf("%s: row %d differs between trainings", v, i)
			}
		}
	}
}
