package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
	"github.com/sandgate/sandgate/tableio"
	"github.com/sandgate/sandgate/workflows"
)

// TestStressKneeLowerUnderWAN releases examples/release-stress.yaml on the
// embedded stack: the stress stage ramps the sandboxed reference model
// under lan and wan, the knee under wan is lower, and the knee recomputed
// from the Parquet step rows (read with tableio and with Arrow) is the
// one the gate saw.
func TestStressKneeLowerUnderWAN(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	env.startWorker(t, ctx, "stress")
	in := loadExample(t, "release-stress.yaml", nil)
	start := time.Now()
	res := waitResult(t, ctx, startRelease(t, ctx, env.client, "stress", in))
	t.Logf("release %s in %v: %s %v", res.ReleaseID, time.Since(start).Round(time.Second), res.Verdict, res.FailedRules)
	for _, s := range res.Stages {
		if s.Name == workflows.StageStress {
			t.Logf("stress stage: %s: %s", s.State, s.Summary)
			if s.State != workflows.StateDone {
				t.Errorf("stress stage %s, want done", s.State)
			}
		}
	}
	if res.Verdict != workflows.VerdictReleased {
		t.Errorf("verdict %s (failed %v), want RELEASED", res.Verdict, res.FailedRules)
	}

	ms := verifyParquet(t, ctx, env.store, in.ReleaseID)
	man, ok := ms[resultManifestKey(t, in.ReleaseID, "stress")]
	if !ok {
		t.Fatal("no results/stress/manifest.json")
	}
	b, err := env.store.Get(ctx, layout(t, in.ReleaseID).ReportJSON())
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{}
	for _, s := range rep.Suites {
		if s.Name == "stress" {
			metrics = s.Metrics
		}
	}

	// Recompute each profile's knee from the step rows alone.
	knee := map[string]float64{}
	broken := map[string]bool{}
	steps := 0
	for i, f := range man.Files {
		if strings.Contains(f.Key, "/requests/") {
			// What failed, when something did: the first few distinct errors.
			path := filepath.Join(t.TempDir(), "requests.parquet")
			if _, err := env.store.Download(ctx, f.Key, path); err != nil {
				t.Fatal(err)
			}
			errs, err := arrowcheck.ReadColumnStrings(path, "error")
			if err != nil {
				t.Fatalf("arrow: %s: %v", f.Key, err)
			}
			seen := map[string]bool{}
			for _, e := range errs {
				if e != "" && !seen[e] && len(seen) < 3 {
					seen[e] = true
					t.Logf("%s: request error: %s", f.Key, e)
				}
			}
		}
		if !strings.Contains(f.Key, "/steps/") {
			continue
		}
		path := filepath.Join(t.TempDir(), "steps.parquet")
		if _, err := env.store.Download(ctx, f.Key, path); err != nil {
			t.Fatal(err)
		}
		cols := []string{"offered_rps", "p99_ms", "slo_p99_ms", "timeouts", "errors", "sent", "max_failure_rate", "achieved_rps", "min_achieved_ratio", "held"}
		tab, err := tableio.ReadFile(ctx, path, tableio.Options{Columns: cols})
		if err != nil {
			t.Fatalf("%s: %v", f.Key, err)
		}
		profiles, err := arrowcheck.ReadColumnStrings(path, "profile")
		if err != nil {
			t.Fatalf("arrow: %s: %v", f.Key, err)
		}
		col := func(name string) []float64 {
			c, _ := tab.Column(name)
			if c.Floats != nil {
				return c.Floats
			}
			out := make([]float64, len(c.Ints))
			for j, v := range c.Ints {
				out[j] = float64(v)
			}
			return out
		}
		held, _ := tab.Column("held")
		offered, p99, slo := col("offered_rps"), col("p99_ms"), col("slo_p99_ms")
		to, er, sent, maxf := col("timeouts"), col("errors"), col("sent"), col("max_failure_rate")
		ach, mina := col("achieved_rps"), col("min_achieved_ratio")
		if len(profiles) != tab.Len() {
			t.Fatalf("%s: arrow reads %d profiles, tableio %d rows", f.Key, len(profiles), tab.Len())
		}
		for j := range tab.Len() {
			p := profiles[j]
			steps++
			ok := p99[j] <= slo[j] && (to[j]+er[j])/sent[j] <= maxf[j] && ach[j] >= mina[j]*offered[j]
			if ok != held.Bools[j] {
				t.Errorf("file %d row %d (%s %v/s): held %v, recomputed %v", i, j, p, offered[j], held.Bools[j], ok)
			}
			t.Logf("%s %5.0f/s achieved %6.1f/s p99 %7.1f ms, %v timeouts, %v errors, held %v", p, offered[j], ach[j], p99[j], to[j], er[j], held.Bools[j])
			if broken[p] || !ok {
				broken[p] = true
				continue
			}
			knee[p] = max(knee[p], offered[j])
		}
	}
	if steps == 0 {
		t.Fatal("no step rows")
	}
	for _, p := range []string{"lan", "wan"} {
		if got := metrics["stress.knee_rps."+p]; got != knee[p] {
			t.Errorf("%s: knee metric %v, recomputed from the rows %v", p, got, knee[p])
		}
	}
	t.Logf("knee lan %v/s, wan %v/s; timeout rate at the expected load: lan %v, wan %v", knee["lan"], knee["wan"], metrics["stress.timeout_rate.lan"], metrics["stress.timeout_rate.wan"])
	if !(knee["wan"] < knee["lan"]) {
		t.Errorf("knee under wan %v/s is not below lan's %v/s", knee["wan"], knee["lan"])
	}
	if !slices.ContainsFunc(rep.Stages, func(s audit.StageReport) bool {
		return s.Name == workflows.StageStress && s.Status == workflows.StateDone
	}) {
		t.Error("the report lists no finished stress stage")
	}
}
