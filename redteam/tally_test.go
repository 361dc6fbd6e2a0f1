package redteam

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func TestWilson(t *testing.T) {
	// Newcombe (1998), Stat. Med. 17:857, method 3 (score interval without
	// continuity correction), plus the 0/10, 5/10, 10/10 textbook vectors.
	cases := []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 10, 0, 0.2775},
		{5, 10, 0.2366, 0.7634},
		{10, 10, 0.7225, 1},
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	}
	for _, c := range cases {
		lo, hi := Wilson(c.k, c.n, Z95)
		if math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("Wilson(%d/%d) = [%.5f, %.5f], want [%.4f, %.4f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
	if lo, hi := Wilson(0, 0, Z95); lo != 0 || hi != 1 {
		t.Errorf("Wilson(0/0) = [%v, %v], want [0, 1]", lo, hi)
	}
}

func TestTally(t *testing.T) {
	var a, b Tally
	add := func(tl *Tally, cat, fam string, o Outcome, n int) {
		for range n {
			tl.Add(AttemptRow{Category: cat, Family: fam, Goal: "g", Outcome: o})
		}
	}
	add(&a, "LLM01", "jailbreak", Breached, 3)
	add(&a, "LLM01", "jailbreak", Defended, 2)
	add(&b, "LLM07", "extraction", Defended, 5)
	add(&b, "LLM07", "extraction", Errored, 4)
	add(&b, "LLM01", "jailbreak", Outcome("weird"), 1) // never a defence

	// Through JSON, as a workflow would carry it.
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var b2 Tally
	if err := json.Unmarshal(raw, &b2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, b2) {
		t.Fatalf("JSON round trip changed the tally: %+v vs %+v", b, b2)
	}
	var total Tally
	total.Merge(a)
	total.Merge(b2)
	s := total.Summary()
	if s.Total != 15 {
		t.Errorf("Total = %d, want 15", s.Total)
	}
	o := s.Overall
	if o.Breached != 3 || o.Defended != 7 || o.Errored != 5 || math.Abs(o.ASR-0.3) > 1e-12 {
		t.Errorf("Overall = %+v", o)
	}
	if c := s.ByCategory["LLM01"]; c.Breached != 3 || c.Defended != 2 || c.Errored != 1 || math.Abs(c.ASR-0.6) > 1e-12 {
		t.Errorf("LLM01 = %+v", c)
	}
	if c := s.ByCategory["LLM07"]; c.ASR != 0 || c.Lo != 0 || c.Hi <= 0 || c.Errored != 4 {
		t.Errorf("LLM07 = %+v", c)
	}
	if lo, hi := Wilson(3, 10, Z95); o.Lo != lo || o.Hi != hi {
		t.Errorf("overall interval [%v,%v], want [%v,%v]", o.Lo, o.Hi, lo, hi)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Errorf("Summary not JSON-serialisable: %v", err)
	}
	// Merge order must not matter.
	var rev Tally
	rev.Merge(b2)
	rev.Merge(a)
	if !reflect.DeepEqual(rev.Summary(), s) {
		t.Error("Merge is order-dependent")
	}
	var empty Tally
	if s := empty.Summary(); s.Total != 0 || s.Overall.Hi != 1 {
		t.Errorf("empty summary %+v", s)
	}
}
