package privacy

import (
	"encoding/binary"
	"math"
	"testing"
)

// floats decodes 8-byte little-endian chunks, so fuzzers reach NaN, ±Inf,
// denormals and ties.
func floats(b []byte) []float64 {
	out := make([]float64, 0, len(b)/8)
	for len(b) >= 8 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return out
}

func seedFloats(xs ...float64) []byte {
	b := make([]byte, 0, 8*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func FuzzROCAndBounds(f *testing.F) {
	f.Add(seedFloats(1, 2, 2, 3), seedFloats(0, 2, 1), uint64(1))
	f.Add(seedFloats(math.NaN()), seedFloats(1), uint64(2))
	f.Add([]byte{}, seedFloats(1), uint64(3))
	f.Fuzz(func(t *testing.T, mb, nb []byte, seed uint64) {
		m, n := floats(mb), floats(nb)
		r, err := NewROC(m, n)
		if err != nil {
			return
		}
		auc := r.AUC()
		if !(auc >= -1e-12 && auc <= 1+1e-12) {
			t.Fatalf("AUC %g", auc)
		}
		last := r.Points[len(r.Points)-1]
		if last.TP != len(m) || last.FP != len(n) {
			t.Fatalf("last point %+v", last)
		}
		if _, err := r.TPRAtFPR(0.01); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Thin(3); err != nil {
			t.Fatal(err)
		}
		b, err := ScanEpsilon(m, n, ScanOptions{Alpha: 0.05, Delta: 1e-5, MaxThresholds: 50})
		if err != nil || b.Epsilon < 0 || math.IsNaN(b.Epsilon) {
			t.Fatalf("scan: %+v %v", b, err)
		}
		_, _ = HeldOutEpsilon(m, n, ScanOptions{Alpha: 0.05, Delta: 1e-5}, seed)
	})
}

func FuzzStats(f *testing.F) {
	f.Add(seedFloats(1, 2, -3, -1, 1, 0), 3, uint8(1), uint8(2))
	f.Add(seedFloats(1e308, -1e308), 2, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, k int, l0, l1 uint8) {
		xs := floats(b)
		if k <= 0 || k > 64 || len(xs) < k {
			return
		}
		rows := [][]float64{xs[:k]}
		labels := []int{int(l0)}
		if len(xs) >= 2*k {
			rows = append(rows, xs[k:2*k])
			labels = append(labels, int(l1))
		}
		st, err := StatsFromLogits(rows, labels)
		if err == nil {
			for _, s := range st {
				if math.IsNaN(s.Loss) || math.IsNaN(s.Logit) || s.Confidence < 0 || s.Confidence > 1 {
					t.Fatalf("logits %v labels %v: %+v", rows, labels, s)
				}
			}
		}
		_, _ = StatsFromProbs(rows, labels)
	})
}

func FuzzOneRunAudit(f *testing.F) {
	f.Add(seedFloats(3, 1, 2, 0), []byte{1, 0, 1, 0}, 1, 1, 1e-5)
	f.Fuzz(func(t *testing.T, sb, inb []byte, kp, km int, delta float64) {
		s := floats(sb)
		in := make([]bool, len(inb))
		for i, v := range inb {
			in[i] = v&1 == 1
		}
		if len(s) > 200 {
			return // bisection cost grows with m; small inputs find the bugs
		}
		res, err := OneRunAudit(s, in, kp, km, delta, 0.05)
		if err == nil && (res.Epsilon < 0 || math.IsNaN(res.Epsilon) || res.V > res.R) {
			t.Fatalf("%+v", res)
		}
	})
}

func FuzzExtraction(f *testing.F) {
	f.Add("jane.roe@example.org", "jane.roe@example.org", 0.1)
	f.Add("\xff\xfe", "é", 0.5)
	f.Fuzz(func(t *testing.T, c, s string, th float64) {
		if len(c) > 512 || len(s) > 512 {
			return
		}
		m, err := MatchExtraction(c, s, th)
		if err != nil {
			return
		}
		if m.Distance < 0 || m.Distance > 1 || (m.Exact && !m.Near) {
			t.Fatalf("%q vs %q: %+v", c, s, m)
		}
	})
}

func FuzzLiRA(f *testing.F) {
	f.Add(seedFloats(1, 2), seedFloats(0, 1, 2, 3, 4, 5), 3)
	f.Fuzz(func(t *testing.T, tb, ob []byte, per int) {
		target, outs := floats(tb), floats(ob)
		if per <= 0 || per > 32 {
			return
		}
		var out [][]float64
		for len(outs) >= per {
			out = append(out, outs[:per])
			outs = outs[per:]
		}
		for _, method := range []LiRAMethod{LiRAGaussian, LiRAOneSided} {
			res, err := LiRAOffline(target, out, LiRAOptions{Method: method})
			if err != nil {
				continue
			}
			for _, v := range res.Score {
				if math.IsNaN(v) {
					t.Fatalf("NaN score from %v / %v", target, out)
				}
			}
		}
	})
}

func FuzzExposure(f *testing.F) {
	f.Add(1.0, seedFloats(1, 2, 3))
	f.Fuzz(func(t *testing.T, c float64, rb []byte) {
		e, rank, err := Exposure(c, floats(rb))
		if err == nil && (e < 0 || rank < 1) {
			t.Fatalf("exposure %g rank %d", e, rank)
		}
	})
}
