package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/workflows"
)

func sendDecision(ctx context.Context, c client.Client, id, kind string, d workflows.Decision) (workflows.DecisionRecord, error) {
	var rec workflows.DecisionRecord
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: kind, Args: []any{d}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return rec, err
	}
	return rec, h.Get(ctx, &rec)
}

func waitFor(t *testing.T, ctx context.Context, c client.Client, id, waiting string) {
	t.Helper()
	eventually(t, ctx, 3*time.Minute, "release waits for "+waiting, func() error {
		st, err := queryStatusE(ctx, c, id)
		if err != nil {
			return err
		}
		if st.Waiting != waiting {
			return &waitErr{st.Waiting}
		}
		return nil
	})
}

type waitErr struct{ got string }

func (e *waitErr) Error() string { return "waiting=" + e.got }

func queryStatusE(ctx context.Context, c client.Client, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// TestOverrideNeedsReasonAndIsRecorded: a blocked release with an override
// window waits; an override without a reason is refused by the validator,
// approve is refused (it is not waiting for approval), and an override with
// a reason releases it with the decision on record.
func TestOverrideNeedsReasonAndIsRecorded(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const tq = "decision-test"
	env.startWorker(t, ctx, tq)
	in := loadExample(t, "release-leaky.yaml", func(c *config.Release) {
		c.Suites.Adversarial.Prompts = 120
		c.Approval.OverrideWindow = config.Duration(10 * time.Minute)
	})
	run := startRelease(t, ctx, env.client, tq, in)
	waitFor(t, ctx, env.client, in.ReleaseID, workflows.WaitingOverride)

	if _, err := sendDecision(ctx, env.client, in.ReleaseID, workflows.UpdateOverride, workflows.Decision{Actor: "alice@ci"}); err == nil || !strings.Contains(err.Error(), "reason is required") {
		t.Fatalf("override without a reason: err %v, want the validator to refuse it", err)
	}
	if _, err := sendDecision(ctx, env.client, in.ReleaseID, workflows.UpdateApprove, workflows.Decision{Actor: "alice@ci"}); err == nil || !strings.Contains(err.Error(), "not waiting for approval") {
		t.Fatalf("approve of a blocked release: err %v, want a refusal", err)
	}
	rec, err := sendDecision(ctx, env.client, in.ReleaseID, workflows.UpdateOverride, workflows.Decision{Actor: "alice@ci", Reason: "known false positive, ticket SEC-42"})
	if err != nil {
		t.Fatalf("override with a reason: %v", err)
	}
	if rec.Actor != "alice@ci" || rec.Kind != workflows.UpdateOverride {
		t.Errorf("decision record %+v", rec)
	}
	res := waitResult(t, ctx, run)
	if res.Verdict != workflows.VerdictReleased || res.Decision == nil || res.Decision.Reason != "known false positive, ticket SEC-42" {
		t.Fatalf("after override: verdict %s, decision %+v", res.Verdict, res.Decision)
	}
	if len(res.FailedRules) == 0 {
		t.Error("the overridden rules must stay on record")
	}
}

// TestApprovalDeadlineBlocks: a passing release that requires approval and
// gets none before its deadline ends BLOCKED.
func TestApprovalDeadlineBlocks(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const tq = "approval-test"
	env.startWorker(t, ctx, tq)
	in := loadExample(t, "release.yaml", func(c *config.Release) {
		c.Suites.Shadow.Requests = 10
		c.Approval.Required = true
		c.Approval.Timeout = config.Duration(3 * time.Second)
	})
	res := waitResult(t, ctx, startRelease(t, ctx, env.client, tq, in))
	if res.Verdict != workflows.VerdictBlocked {
		t.Fatalf("verdict %s, want BLOCKED when nobody approves", res.Verdict)
	}
	if !strings.Contains(strings.Join(res.FailedRules, ";"), "no approval before the deadline") {
		t.Errorf("failed rules %v do not say the approval timed out", res.FailedRules)
	}
}
