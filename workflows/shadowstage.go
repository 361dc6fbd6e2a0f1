package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/shadow"
)

// ShadowPhaseID is the workflow ID of a release's shadow analysis phase, the
// target of `starter release end-shadow`.
func ShadowPhaseID(releaseID string) string { return releaseID + "-shadow" }

// shadowAnalysis runs the shadow stage as analysis windows: a child
// workflow that continues as new on long phases, whose windows run on this
// session's worker (the one holding the sandboxes). Its Argo-style outcome
// becomes the shadow gate: Failed or Inconclusive blocks the release, which
// a human may then override on the record.
func (r *release) shadowAnalysis(ctx, sctx workflow.Context, inc, cand activities.SandboxRef) error {
	cfg := r.in.Config
	an := cfg.Suites.Shadow.Analysis
	r.setStage(ctx, StageShadow, StateRunning, fmt.Sprintf("analysis: up to %d windows of %d requests, %s apart", an.Spec.Count, an.RequestsPerWindow, time.Duration(an.Interval)))
	var token []byte
	if info := workflow.GetSessionInfo(sctx); info != nil {
		token = info.GetRecreateToken()
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    ShadowPhaseID(r.in.ReleaseID),
		StaticSummary: "Shadow analysis of " + r.in.ReleaseID,
	})
	var res ShadowPhaseResult
	err := workflow.ExecuteChildWorkflow(cctx, ShadowPhaseWorkflow, ShadowPhaseInput{
		ReleaseID: r.in.ReleaseID, Incumbent: inc, Candidate: cand,
		ReplayKey: an.Replay, Dataset: r.dataset, Analysis: an.Spec,
		RequestsPerWindow: an.RequestsPerWindow, Interval: time.Duration(an.Interval),
		Concurrency: cfg.Suites.Shadow.Concurrency, Timeout: time.Duration(cfg.Suites.Adversarial.Timeout),
		MaxTokens: cfg.Suites.Adversarial.MaxTokens, SystemPrompt: cfg.Model.SystemPrompt,
		SessionToken: token,
	}).Get(ctx, &res)
	if err != nil {
		return fmt.Errorf("shadow analysis: %w", err)
	}
	r.shadowPhase = &res
	passed := 0.0
	if res.Phase == shadow.PhaseSuccessful {
		passed = 1
	}
	am := map[string]float64{
		"shadow.analysis.passed":               passed,
		"shadow.analysis.windows":              float64(res.Windows),
		"shadow.analysis.failed_windows":       float64(res.Run.Failures),
		"shadow.analysis.inconclusive_windows": float64(res.Run.Inconclusives),
	}
	metrics := r.suiteMetrics()
	for k, v := range am {
		metrics[k] = v
	}
	one := 1.0
	policy := cfg.Gate
	policy.Rules = append(append([]gate.Rule(nil), policy.Rules...), gate.Rule{
		Name: "shadow-analysis", Metric: "shadow.analysis.passed", Min: &one,
		Description: "the shadow analysis windows ended Successful (Argo-style limits in suites.shadow.analysis.spec)",
	})
	var g activities.GateResult
	if err := workflow.ExecuteActivity(r.opts(ctx, "shadow decision", 2*time.Minute), a.Gate, activities.GateInput{
		ReleaseID: r.in.ReleaseID, ModelName: cfg.Model.Name, Phase: gate.PhaseShadow, Policy: policy,
		Adversarial: r.advSummary, Privacy: r.privacy.Summary, SuiteMetrics: metrics, Evidence: r.gateEvidence(),
	}).Get(ctx, &g); err != nil {
		return fmt.Errorf("shadow decision: %w", err)
	}
	r.shadowGate = &g
	who := ""
	why := res.Reason
	if e := res.EndedBy; e != nil {
		who, why = e.Actor, e.Reason
	}
	if err := r.record(ctx, audit.KindDecision, StageShadow, []string{g.EvidenceKey}, map[string]any{"verdict": g.Verdict.Verdict, "phase": res.Phase, "windows": res.Windows, "runs": res.Runs}, who, why); err != nil {
		return err
	}
	state := StateDone
	if g.Verdict.Verdict == VerdictBlocked {
		state = StateFailed
	}
	summary := fmt.Sprintf("analysis %s after %d windows (%d passed, %d failed, %d inconclusive; %d runs): %s",
		res.Phase, res.Windows, res.Run.Successes, res.Run.Failures, res.Run.Inconclusives, res.Runs, res.Reason)
	if e := res.EndedBy; e != nil {
		summary += fmt.Sprintf("; ended early by %s: %s", e.Actor, e.Reason)
	}
	r.setStage(ctx, StageShadow, state, summary)
	r.shadowSection = &audit.SuiteSection{Name: "shadow analysis", Summary: summary, Metrics: am}
	return nil
}
