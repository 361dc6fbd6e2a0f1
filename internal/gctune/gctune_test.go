package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApplyRespectsTheOperator(t *testing.T) {
	old := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(old); debug.SetMemoryLimit(oldLimit) })

	if Apply(func(k string) string { return map[string]string{"GOGC": "50"}[k] }, Worker()) {
		t.Fatal("applied although GOGC is set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC changed to %d despite the operator's GOGC", got)
	}
	if !Apply(func(string) string { return "" }, Worker()) {
		t.Fatal("not applied with no GOGC/GOMEMLIMIT")
	}
	if got := debug.SetGCPercent(100); got != Worker().Percent {
		t.Fatalf("GOGC = %d, want %d", got, Worker().Percent)
	}
	if got := debug.SetMemoryLimit(-1); got != Worker().LimitBytes {
		t.Fatalf("memory limit = %d, want %d", got, Worker().LimitBytes)
	}
}
