package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/shadow"
	"github.com/sandgate/sandgate/workflows"
)

// shadowAnalysisConfig turns the default example's shadow stage into
// analysis windows judged against the incumbent's noise floor.
func shadowAnalysisConfig(count int, interval time.Duration) func(*config.Release) {
	return func(c *config.Release) {
		c.Suites.Adversarial.Prompts = 200
		c.Suites.Shadow.Analysis = &config.ShadowAnalysis{
			RequestsPerWindow: 40, Interval: config.Duration(interval),
			Spec: shadow.AnalysisSpec{
				Metrics: []shadow.MetricSpec{
					// The hardened candidate refuses attacks the incumbent
					// answers, so it agrees less than the incumbent with itself.
					{Name: shadow.MetricAgreementDelta, Success: &shadow.Condition{Op: ">=", Value: -0.7}, Failure: &shadow.Condition{Op: "<", Value: -0.9}},
					{Name: shadow.MetricErrorRate, Success: &shadow.Condition{Op: "<=", Value: 0.05}, Failure: &shadow.Condition{Op: ">", Value: 0.2}},
				},
				Count: count, MinSamples: 20, FailureLimit: 0, InconclusiveLimit: 1,
			},
		}
		var rules []gate.Rule
		for _, r := range c.Gate.Rules {
			if !strings.HasPrefix(r.Metric, "shadow.") {
				rules = append(rules, r)
			}
		}
		c.Gate.Rules = rules
	}
}

// TestShadowAnalysisWindows runs the shadow stage as analysis windows on
// durable timers: three windows pass and the release is released with the
// analysis in its report; a second release with hour-long intervals is
// ended early by a human through the end-shadow Update, on the record.
func TestShadowAnalysisWindows(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const tq = "shadow-analysis-test"
	env.startWorker(t, ctx, tq)

	in := loadExample(t, "release.yaml", shadowAnalysisConfig(3, time.Second))
	res := waitResult(t, ctx, startRelease(t, ctx, env.client, tq, in))
	sum := shadowStage(res, workflows.StageShadow)
	t.Logf("verdict %s (failed %v); shadow: %s", res.Verdict, res.FailedRules, sum)
	if res.Verdict != workflows.VerdictReleased || !strings.Contains(sum, "analysis Successful after 3 windows") {
		t.Fatalf("verdict %s, shadow stage %q; want RELEASED after 3 successful windows", res.Verdict, sum)
	}
	md, err := env.store.Get(ctx, layout(t, in.ReleaseID).ReportMarkdown())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "shadow.analysis.passed") {
		t.Errorf("the report does not show the shadow analysis")
	}

	in = loadExample(t, "release.yaml", shadowAnalysisConfig(6, time.Hour))
	run := startRelease(t, ctx, env.client, tq, in)
	phaseID := workflows.ShadowPhaseID(in.ReleaseID)
	eventually(t, ctx, 5*time.Minute, "shadow phase waits for its next window", func() error {
		v, err := env.client.QueryWorkflow(ctx, phaseID, "", workflows.QueryShadowStatus)
		if err != nil {
			return err
		}
		var st workflows.ShadowPhaseStatus
		if err := v.Get(&st); err != nil {
			return err
		}
		if st.Waiting != "interval" || st.Window < 1 {
			return fmt.Errorf("waiting %q after %d windows", st.Waiting, st.Window)
		}
		return nil
	})
	send := func(req workflows.EndShadowRequest) error {
		h, err := env.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: phaseID, UpdateName: workflows.UpdateEndShadow,
			Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			return err
		}
		var end workflows.ShadowPhaseEnd
		return h.Get(ctx, &end)
	}
	if err := send(workflows.EndShadowRequest{Actor: "bob@ops"}); err == nil {
		t.Fatal("end-shadow without a reason was accepted")
	}
	if err := send(workflows.EndShadowRequest{Actor: "bob@ops", Reason: "canary looks clean, ship it (CHG-7)", Outcome: shadow.PhaseSuccessful}); err != nil {
		t.Fatalf("end-shadow: %v", err)
	}
	res = waitResult(t, ctx, run)
	sum = shadowStage(res, workflows.StageShadow)
	t.Logf("verdict %s; shadow: %s", res.Verdict, sum)
	if res.Verdict != workflows.VerdictReleased || !strings.Contains(sum, "ended early by bob@ops") {
		t.Fatalf("verdict %s, shadow stage %q; want RELEASED, ended early by bob@ops", res.Verdict, sum)
	}
}

func shadowStage(res workflows.ReleaseResult, name string) string {
	for _, s := range res.Stages {
		if s.Name == name {
			return s.State + ": " + s.Summary
		}
	}
	return ""
}
