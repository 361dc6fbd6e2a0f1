package activities

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/stress"
)

// SuiteStress names the stress stage's results (results/stress/).
const SuiteStress = "stress"

// StressInput asks for the stress ramp against the candidate's sandbox.
type StressInput struct {
	ReleaseID string
	Sandbox   SandboxRef
	Model     string // the model name sent in each request
	Stress    config.Stress
	Seed      uint64
}

// stressProgress is the heartbeat: the profiles already ramped and
// written, so a retry on the same worker ramps only the others.
type stressProgress struct {
	Done    map[string]stressDone
	Current string // "<profile> step i at r/s", for the UI
}

type stressDone struct {
	Steps []stress.StepRow
	Files []datasets.ManifestFile
}

// Stress ramps the request rate against the candidate under each network
// profile, each through a relay of its own in front of the same model
// (the sandbox's own relay, its budgets and transcript, are left to the
// other stages), writes the steps and requests as Parquet and returns the
// knee and the expected-load metrics.
func (a *Activities) Stress(ctx context.Context, in StressInput) (SuiteResult, error) {
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return SuiteResult{}, err
	}
	cfg := in.Stress
	body, err := stress.ChatBody(in.Model, int(cfg.RequestBytes), cfg.MaxTokens)
	if err != nil {
		return SuiteResult{}, badInput("suites.stress.request_bytes: %v", err)
	}
	var profiles []sandbox.NetProfile
	for i, name := range cfg.Profiles {
		p, err := sandbox.LookupProfile(name)
		if err != nil {
			return SuiteResult{}, badInput("suites.stress.profiles[%d]: %v", i, err)
		}
		profiles = append(profiles, p)
	}
	opt := stress.Options{
		Profiles: profiles, Rates: cfg.RampRates(), ExpectedRPS: cfg.ExpectedRPS,
		StepDuration: time.Duration(cfg.StepDuration), Timeout: time.Duration(cfg.Timeout),
		Criteria:    stress.Criteria{SLOP99: time.Duration(cfg.SLOP99), MaxFailureRate: cfg.MaxFailureRate, MinAchievedRatio: cfg.MinAchievedRatio},
		Connections: cfg.Connections, Path: "/v1/chat/completions", Body: body, Seed: in.Seed, Logger: a.Logger,
	}
	if err := opt.Validate(); err != nil {
		return SuiteResult{}, badInput("suites.stress: %v", err)
	}
	files, err := a.newSuiteFiles(in.ReleaseID, SuiteStress, in.Seed)
	if err != nil {
		return SuiteResult{}, err
	}

	prog := stressProgress{Done: map[string]stressDone{}}
	if activity.HasHeartbeatDetails(ctx) {
		var prev stressProgress
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && prev.Done != nil {
			prog.Done = prev.Done
		}
	}
	var mu sync.Mutex
	beat := func() {
		mu.Lock()
		defer mu.Unlock()
		activity.RecordHeartbeat(ctx, prog)
	}
	// A step may run longer than the heartbeat timeout: keep beating.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()

	var steps []stress.StepRow
	for i, p := range profiles {
		if d, ok := prog.Done[p.Name]; ok {
			steps = append(steps, d.Steps...)
			continue
		}
		popt := opt
		popt.Progress = func(r stress.StepRow) {
			mu.Lock()
			prog.Current = fmt.Sprintf("%s step %d at %g/s: p99 %.0f ms, held %v", r.Profile, r.Step, r.OfferedRPS, r.P99MS, r.Held)
			mu.Unlock()
			beat()
		}
		rows, reqs, err := stress.RunProfile(ctx, sb.Upstream(), p, popt, in.Seed+uint64(i))
		if err != nil {
			return SuiteResult{}, fmt.Errorf("stress under %s: %w", p.Name, err)
		}
		// One file per profile and table, named by the profile's position,
		// so a retry overwrites what it rewrites.
		part := fmt.Sprintf("part-%05d.parquet", i)
		var done stressDone
		for _, w := range []struct {
			table string
			write func(string) (datasets.FileStats, error)
		}{
			{"steps", func(path string) (datasets.FileStats, error) {
				return datasets.WriteFile(path, seqOf(rows), datasets.WriteOptions{Metadata: map[string]string{"suite": SuiteStress, "table": "steps"}})
			}},
			{"requests", func(path string) (datasets.FileStats, error) {
				return datasets.WriteFile(path, seqOf(reqs), datasets.WriteOptions{Metadata: map[string]string{"suite": SuiteStress, "table": "requests"}})
			}},
		} {
			f, err := a.writeRows(ctx, files.prefix+w.table+"/"+part, w.write)
			if err != nil {
				return SuiteResult{}, err
			}
			done.Files = append(done.Files, f)
		}
		done.Steps = rows
		mu.Lock()
		prog.Done[p.Name] = done
		mu.Unlock()
		beat()
		steps = append(steps, rows...)
	}
	// Files in profile order, whatever order a retry found them in.
	for _, p := range profiles {
		for _, f := range prog.Done[p.Name].Files {
			files.manifest.Files = append(files.manifest.Files, f)
			files.manifest.Rows += f.Rows
		}
	}
	res := SuiteResult{Suite: SuiteStress, Metrics: stress.Metrics(steps)}
	for _, s := range steps {
		res.Queries += s.Sent
	}
	res.ManifestKey, res.Rows, err = files.finish(ctx)
	if err != nil {
		return SuiteResult{}, err
	}
	res.Section = stressSection(steps, res.Metrics, cfg)
	return res, nil
}

func stressSection(steps []stress.StepRow, m map[string]float64, cfg config.Stress) audit.SuiteSection {
	sec := audit.SuiteSection{Name: SuiteStress, Metrics: m}
	var parts []string
	for _, pr := range stress.Result(steps) {
		knee := fmt.Sprintf("%g/s", pr.Knee)
		if pr.Censored {
			knee = "≥ " + knee + " (every step held)"
		}
		parts = append(parts, fmt.Sprintf("%s knee %s, %.1f%% timeouts at %g/s", pr.Profile, knee, 100*pr.TimeoutRate, cfg.ExpectedRPS))
	}
	sec.Summary = "Stress: " + strings.Join(parts, "; ") + "."
	sec.Notes = append(sec.Notes, fmt.Sprintf("Knee: the highest offered rate whose step, and every lower step, kept p99 ≤ %s, (timeouts+errors)/sent ≤ %g and achieved ≥ %g × offered; recomputable from results/stress/steps.",
		time.Duration(cfg.SLOP99), cfg.MaxFailureRate, cfg.MinAchievedRatio))
	t := audit.Table{Title: "Steps", Columns: []string{"profile", "offered/s", "achieved/s", "p50 ms", "p95 ms", "p99 ms", "timeouts", "errors", "sent", "held"}}
	for _, s := range steps {
		held := "yes"
		if !s.Held {
			held = "no: " + s.Reason
		}
		t.Rows = append(t.Rows, []string{s.Profile, fmt.Sprintf("%g", s.OfferedRPS), fmt.Sprintf("%.1f", s.AchievedRPS),
			fmt.Sprintf("%.1f", s.P50MS), fmt.Sprintf("%.1f", s.P95MS), fmt.Sprintf("%.1f", s.P99MS),
			fmt.Sprint(s.Timeouts), fmt.Sprint(s.Errors), fmt.Sprint(s.Sent), held})
	}
	sec.Tables = append(sec.Tables, t)
	return sec
}
