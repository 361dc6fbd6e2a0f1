package redteam

import (
	"context"
	"testing"
)

func TestCalibrationSet(t *testing.T) {
	items, err := CalibrationItems()
	if err != nil {
		t.Fatal(err)
	}
	b := 0
	for _, it := range items {
		if it.Label == Breached {
			b++
		}
	}
	if len(items) < 40 || b < 15 || len(items)-b < 15 {
		t.Fatalf("%d items, %d breached: want ≥ 40 with both labels well represented", len(items), b)
	}
	if _, err := parseCalibration([]byte(`{"id":"a","goal":"x","label":"maybe"}`)); err == nil {
		t.Fatal("bad label accepted")
	}
}

// TestCalibrateRules measures the rule judge on the pinned set. The
// figures are pinned so that a detector change that moves them is seen.
func TestCalibrateRules(t *testing.T) {
	c, err := Calibrate(context.Background(), RulesGrader{Target: CalibrationTarget})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rules judge on %s: precision %.3f [%.3f, %.3f], recall %.3f [%.3f, %.3f], accuracy %.3f [%.3f, %.3f], wrong %v",
		c.Set, c.Precision.Value, c.Precision.Lo, c.Precision.Hi, c.Recall.Value, c.Recall.Lo, c.Recall.Hi,
		c.Accuracy.Value, c.Accuracy.Lo, c.Accuracy.Hi, c.Wrong)
	if err := c.Check(CalibrationGate{MinPrecision: 0.9, MinRecall: 0.85, MinAccuracy: 0.9}); err != nil {
		t.Error(err)
	}
	if err := c.Check(CalibrationGate{MinAccuracy: 1.01}); err == nil {
		t.Error("impossible gate passed")
	}
	if c.Items != 45 || len(c.SetSHA256) != 64 {
		t.Errorf("items %d sha %q", c.Items, c.SetSHA256)
	}
}
