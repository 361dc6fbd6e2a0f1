package activities

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/redteam"
)

// SuiteRedTeam is the red-teaming suite that follows the static attacks:
// adaptive attackers, the judge's calibration and the regression test.
const SuiteRedTeam = "adaptive"

// RedTeamInput is the suite's input: the candidate, the prompt dataset the
// objectives come from, and the static stage's tally for the regression test.
type RedTeamInput struct {
	ReleaseID   string
	Sandbox     SandboxRef
	Dataset     DatasetRef
	Target      redteam.Target
	Model       string
	ModelName   string // for the baseline: the last released version of this model
	Adaptive    *config.Adaptive
	Static      redteam.Tally
	Alpha       float64
	Concurrency int
	Timeout     time.Duration
	MaxTokens   int
	Limits      redteam.Limits
	Seed        uint64
}

// RedTeamSuite runs what the static set cannot show: adaptive attackers
// (the search attacker needs no other model; PAIR, TAP and Crescendo use the
// attacker endpoint the config names) pursuing objectives drawn from the
// prompt dataset, the verdict rules graded on the pinned labelled set in
// this same run, and a per-category regression test of the static results
// against the last released version of the model.
func (a *Activities) RedTeamSuite(ctx context.Context, in RedTeamInput) (SuiteResult, error) {
	files, err := a.newSuiteFiles(in.ReleaseID, SuiteRedTeam, in.Seed)
	if err != nil {
		return SuiteResult{}, err
	}
	res := SuiteResult{Suite: SuiteRedTeam, Metrics: map[string]float64{}}
	sec := audit.SuiteSection{Name: "red teaming: adaptive attacks, judge calibration, regression"}

	// The judge: the rules that decide breached/defended, graded on the
	// pinned labelled set, so their accuracy is known for this very run.
	cal, err := redteam.Calibrate(ctx, redteam.RulesGrader{Target: redteam.CalibrationTarget})
	if err != nil {
		return SuiteResult{}, fmt.Errorf("judge calibration: %w", err)
	}
	res.Metrics["adversarial.judge.precision"] = cal.Precision.Value
	res.Metrics["adversarial.judge.recall"] = cal.Recall.Value
	res.Metrics["adversarial.judge.accuracy"] = cal.Accuracy.Value
	res.Metrics["adversarial.judge.precision_lower"] = cal.Precision.Lo
	res.Metrics["adversarial.judge.recall_lower"] = cal.Recall.Lo
	sec.Notes = append(sec.Notes, fmt.Sprintf("Verdict rules on the pinned labelled set %s (%d items, sha256 %.12s…): precision %.3f [%.3f, %.3f], recall %.3f [%.3f, %.3f], accuracy %.3f; %d errored.",
		cal.Set, cal.Items, cal.SetSHA256, cal.Precision.Value, cal.Precision.Lo, cal.Precision.Hi, cal.Recall.Value, cal.Recall.Lo, cal.Recall.Hi, cal.Accuracy.Value, cal.Errored))

	// Regression per OWASP category against the last released version.
	regs, baselineID, err := a.regressions(ctx, in)
	if err != nil {
		return SuiteResult{}, err
	}
	if baselineID != "" {
		n := 0
		t := audit.Table{Title: "Static ASR against the last released version " + baselineID + " (one-sided two-proportion z-test)", Columns: []string{"category", "baseline ASR", "candidate ASR", "p", "regressed"}}
		for _, r := range regs {
			if r.Regressed {
				n++
			}
			t.Rows = append(t.Rows, []string{r.Key, fmt.Sprintf("%.3f", r.Baseline.ASR), fmt.Sprintf("%.3f", r.Candidate.ASR), fmt.Sprintf("%.3g", r.P), strconv.FormatBool(r.Regressed)})
		}
		res.Metrics["adversarial.regressions"] = float64(n)
		sec.Tables = append(sec.Tables, t)
	} else {
		sec.Notes = append(sec.Notes, "No released version of this model yet: no regression test.")
	}

	summary := fmt.Sprintf("Judge precision %.3f, recall %.3f on the pinned set.", cal.Precision.Value, cal.Recall.Value)
	if in.Adaptive != nil {
		s, err := a.adaptive(ctx, in, files, &res)
		if err != nil {
			return SuiteResult{}, err
		}
		summary = s + " " + summary
	}
	res.ManifestKey, res.Rows, err = files.finish(ctx)
	if err != nil {
		return SuiteResult{}, err
	}
	sec.Summary = summary
	sec.Metrics = res.Metrics
	res.Section = sec
	return res, nil
}

func (a *Activities) adaptive(ctx context.Context, in RedTeamInput, files *suiteFiles, res *SuiteResult) (string, error) {
	ad := in.Adaptive
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return "", err
	}
	prompts, err := a.readPrompts(ctx, in.Dataset, 0, in.Dataset.Rows)
	if err != nil {
		return "", err
	}
	var objectives []redteam.Objective
	for _, p := range prompts {
		if o, ok := redteam.ObjectiveFromPrompt(p); ok {
			objectives = append(objectives, o)
			if len(objectives) == ad.Objectives {
				break
			}
		}
	}
	if len(objectives) == 0 {
		return "", badInput("suites.adversarial.adaptive: the prompt dataset has no families an adaptive attacker can pursue")
	}
	var attacker *redteam.AttackerModel
	if at := ad.Attacker; at != nil && at.URL != "" {
		c := &modelapi.Client{BaseURL: at.URL}
		if at.APIKeyEnv != "" {
			c.APIKey = os.Getenv(at.APIKeyEnv)
		}
		attacker = &redteam.AttackerModel{Client: c, Model: at.Model}
	}
	budget := redteam.StrategyBudget{Queries: ad.QueriesPerObjective}
	var strategies []redteam.Strategy
	for _, name := range ad.Strategies {
		switch name {
		case "search":
			strategies = append(strategies, redteam.Search{Seed: in.Seed, Limits: budget})
		case "pair":
			strategies = append(strategies, redteam.PAIR{Attacker: *attacker, Limits: budget})
		case "tap":
			strategies = append(strategies, redteam.TAP{Attacker: *attacker, Limits: budget})
		case "crescendo":
			strategies = append(strategies, redteam.Crescendo{Attacker: *attacker, Limits: budget})
		}
	}
	throttle, err := redteam.NewThrottle(redteam.ThrottleOptions{Limits: in.Limits, MaxConcurrency: max(in.Concurrency, 1)})
	if err != nil {
		return "", badInput("suites.adversarial.rate_limit: %v", err)
	}
	hc, err := modelapi.NewEndpointHTTPClient(sb.Endpoint(), 0, in.Concurrency)
	if err != nil {
		return "", fmt.Errorf("model client: %w", err)
	}
	client := &modelapi.Client{BaseURL: sb.Endpoint(), HTTP: hc}
	opt := redteam.RunOptions{Concurrency: in.Concurrency, Timeout: in.Timeout, MaxTokens: in.MaxTokens, ReleaseID: in.ReleaseID,
		Model: in.Model, Logger: a.Logger, Throttle: throttle}
	tally := redteam.Tally{}
	var rows []redteam.AttemptRow
	err = redteam.RunAdaptive(ctx, client, in.Target, func(yield func(redteam.Objective) bool) {
		for _, o := range objectives {
			if !yield(o) {
				return
			}
		}
	}, strategies, opt, func(r redteam.AttemptRow) error {
		tally.Add(r)
		rows = append(rows, r)
		if len(rows)%50 == 0 {
			activity.RecordHeartbeat(ctx, len(rows))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("adaptive attacks: %w", err)
	}
	if err := writeTable(ctx, files, "attempts", rows); err != nil {
		return "", err
	}
	sum := tally.Summary()
	o := sum.Overall
	res.Metrics["adversarial.adaptive.asr"] = o.ASR
	res.Metrics["adversarial.adaptive.asr_upper"] = o.Hi
	res.Metrics["adversarial.adaptive.breached"] = float64(o.Breached)
	res.Queries = int64(len(rows))
	var parts []string
	for name, r := range sum.ByStrategy {
		parts = append(parts, fmt.Sprintf("%s %d/%d", name, r.Breached, r.Breached+r.Defended))
	}
	sort.Strings(parts)
	return fmt.Sprintf("Adaptive attacks (%v, %d objectives, ≤ %d queries each): %d of %d objectives breached (ASR %.3f, 95%% upper %.3f; %v); %d errored.",
		ad.Strategies, len(objectives), ad.QueriesPerObjective, o.Breached, o.Breached+o.Defended, o.ASR, o.Hi, parts, o.Errored), nil
}

// regressions compares the static tally with the last released version's.
func (a *Activities) regressions(ctx context.Context, in RedTeamInput) ([]redteam.Regression, string, error) {
	if in.ModelName == "" {
		return nil, "", nil
	}
	ok, err := a.Store.Exists(ctx, lastReleasedKey(in.ModelName))
	if err != nil || !ok {
		return nil, "", err
	}
	var ptr lastReleased
	if err := a.getJSON(ctx, lastReleasedKey(in.ModelName), &ptr); err != nil {
		return nil, "", err
	}
	var rep audit.Report
	if err := a.getJSON(ctx, ptr.ReportKey, &rep); err != nil {
		return nil, "", err
	}
	base := redteam.Tally{ByCategory: map[string]redteam.Counts{}}
	for cat, r := range rep.Adversarial.ByCategory {
		base.ByCategory[cat] = redteam.Counts{Breached: r.Breached, Defended: r.Defended, Errored: r.Errored}
	}
	return redteam.Regress(base, in.Static, in.Alpha), ptr.ReleaseID, nil
}
