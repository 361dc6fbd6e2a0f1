package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/shadow"
)

func phaseInput(count int, spec shadow.AnalysisSpec) ShadowPhaseInput {
	spec.Count = count
	if spec.Metrics == nil {
		spec.Metrics = shadow.DefaultAnalysisSpec().Metrics
	}
	return ShadowPhaseInput{
		ReleaseID: "release-m-1-abcdef12", ReplayKey: "releases/x/requests.parquet",
		Analysis: spec, RequestsPerWindow: 50, Interval: 5 * time.Minute,
	}
}

// runCounts tallies what one workflow run did, to bound its history.
type runCounts struct {
	activities, timers, updates int
}

// events is an upper bound of the run's history length: the start event,
// three events per activity (scheduled, started, completed), two per timer,
// two per accepted update, three per workflow task (one per wake-up plus
// the first) and the closing event.
func (c runCounts) events() int {
	tasks := 1 + c.activities + c.timers + c.updates
	return 1 + 3*c.activities + 2*c.timers + 2*c.updates + 3*tasks + 1
}

// newPhaseEnv mocks the window activity with one scripted phase per window
// ("" fails the activity with a retryable error).
func newPhaseEnv(t *testing.T, phases func(window int) string, counts *runCounts) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(ShadowPhaseWorkflow)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ShadowWindow, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ShadowWindowInput) (activities.ShadowWindowResult, error) {
			p := phases(in.Window)
			if p == "" {
				return activities.ShadowWindowResult{}, temporal.NewApplicationError("model server reset the connection", "Transport")
			}
			return activities.ShadowWindowResult{Window: in.Window, Key: "k", Measurement: shadow.Measurement{Window: in.Window, Phase: p, Reason: "scripted " + p}}, nil
		})
	if counts != nil {
		env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { counts.activities++ })
		env.SetOnTimerScheduledListener(func(string, time.Duration) { counts.timers++ })
	}
	return env
}

func phaseResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) ShadowPhaseResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res ShadowPhaseResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func always(p string) func(int) string { return func(int) string { return p } }

func TestShadowPhasePasses(t *testing.T) {
	var c runCounts
	env := newPhaseEnv(t, always(shadow.PhaseSuccessful), &c)
	start := env.Now()
	env.ExecuteWorkflow(ShadowPhaseWorkflow, phaseInput(4, shadow.AnalysisSpec{}))
	res := phaseResult(t, env)
	if res.Phase != shadow.PhaseSuccessful || res.Windows != 4 || res.Run.Successes != 4 || res.Runs != 1 {
		t.Fatalf("result %+v", res)
	}
	// Three intervals between four windows, on durable timers.
	if c.timers != 3 || c.activities != 4 {
		t.Fatalf("%d timers, %d activities; want 3 and 4", c.timers, c.activities)
	}
	if el := env.Now().Sub(start); el < 15*time.Minute {
		t.Fatalf("phase took %v of workflow time, want ≥ 15m (3 intervals)", el)
	}
}

func TestShadowPhaseFailsAtFailureLimit(t *testing.T) {
	script := []string{shadow.PhaseFailed, shadow.PhaseSuccessful, shadow.PhaseFailed, shadow.PhaseSuccessful}
	var c runCounts
	env := newPhaseEnv(t, func(w int) string { return script[w] }, &c)
	env.ExecuteWorkflow(ShadowPhaseWorkflow, phaseInput(10, shadow.AnalysisSpec{FailureLimit: 1, InconclusiveLimit: 5}))
	res := phaseResult(t, env)
	if res.Phase != shadow.PhaseFailed || res.Windows != 3 || c.activities != 3 || !strings.Contains(res.Reason, "failureLimit 1") {
		t.Fatalf("result %+v after %d windows; want Failed at window 3", res, c.activities)
	}
}

func TestShadowPhaseInconclusive(t *testing.T) {
	// Window 1 fails as infrastructure (after retries): inconclusive, not failed.
	script := []string{shadow.PhaseSuccessful, "", shadow.PhaseInconclusive, shadow.PhaseSuccessful}
	env := newPhaseEnv(t, func(w int) string { return script[w] }, nil)
	env.ExecuteWorkflow(ShadowPhaseWorkflow, phaseInput(10, shadow.AnalysisSpec{InconclusiveLimit: 1}))
	res := phaseResult(t, env)
	if res.Phase != shadow.PhaseInconclusive || res.Windows != 3 || res.Run.Inconclusives != 2 || res.Run.Failures != 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Reason, "inconclusiveLimit 1") {
		t.Fatalf("reason %q", res.Reason)
	}
}

func TestShadowPhaseRejectsBadInput(t *testing.T) {
	env := newPhaseEnv(t, always(shadow.PhaseSuccessful), nil)
	in := phaseInput(0, shadow.AnalysisSpec{})
	in.ReplayKey = ""
	env.ExecuteWorkflow(ShadowPhaseWorkflow, in)
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != ErrTypeShadowBadInput || !strings.Contains(err.Error(), "no traffic") || !strings.Contains(err.Error(), "analysis.count 0") {
		t.Fatalf("error %v", err)
	}
}

func TestShadowPhaseEndedEarlyByUpdate(t *testing.T) {
	env := newPhaseEnv(t, always(shadow.PhaseSuccessful), nil)
	var rejected, accepted error
	var rec ShadowPhaseEnd
	var midStatus ShadowPhaseStatus
	// 12 minutes in: two windows done, waiting out the second interval.
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryShadowStatus)
		if err == nil {
			err = v.Get(&midStatus)
		}
		if err != nil {
			t.Errorf("query: %v", err)
		}
		env.UpdateWorkflow(UpdateEndShadow, "no-reason", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { rejected = err },
			OnAccept: func() { t.Error("update without a reason accepted") },
		}, EndShadowRequest{Actor: "alice@ops"})
		env.UpdateWorkflow(UpdateEndShadow, "bad-outcome", &testsuite.TestUpdateCallback{
			OnReject: func(err error) {},
			OnAccept: func() { t.Error("update with outcome Promote accepted") },
		}, EndShadowRequest{Actor: "alice@ops", Reason: "enough data", Outcome: "Promote"})
		env.UpdateWorkflow(UpdateEndShadow, "ok", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { accepted = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err != nil {
					accepted = err
					return
				}
				rec, _ = v.(ShadowPhaseEnd)
			},
		}, EndShadowRequest{Actor: "alice@ops", Reason: "candidate p99 regressed on the dashboard", Outcome: shadow.PhaseFailed})
	}, 12*time.Minute)
	env.ExecuteWorkflow(ShadowPhaseWorkflow, phaseInput(72, shadow.AnalysisSpec{}))
	res := phaseResult(t, env)
	if rejected == nil || !strings.Contains(rejected.Error(), "reason is required") {
		t.Fatalf("update without reason: %v", rejected)
	}
	if accepted != nil {
		t.Fatalf("valid update: %v", accepted)
	}
	if midStatus.Phase != shadow.PhaseRunning || midStatus.Window != 3 || midStatus.Waiting != "interval" {
		t.Fatalf("status at 12m: %+v", midStatus)
	}
	if res.Phase != shadow.PhaseFailed || res.EndedBy == nil || res.EndedBy.Actor != "alice@ops" || res.Windows != 3 ||
		!strings.Contains(res.Reason, "candidate p99 regressed") || rec.Actor != "alice@ops" {
		t.Fatalf("result %+v, end %+v, update result %+v", res, res.EndedBy, rec)
	}
}

// TestShadowPhaseSixHoursContinuesAsNew runs a 6-hour phase of 5-minute
// windows (72) with time skipping. Every 12 windows the run continues as
// new; each run is executed here as the server would start it, and its
// history stays far below the 4,096-event suggestion.
func TestShadowPhaseSixHoursContinuesAsNew(t *testing.T) {
	in := phaseInput(72, shadow.AnalysisSpec{ConsecutiveSuccessLimit: 0})
	in.WindowsPerRun = 12
	var total time.Duration
	for run := 1; ; run++ {
		if run > 10 {
			t.Fatal("more than 10 runs for 72 windows of 12")
		}
		var c runCounts
		env := newPhaseEnv(t, always(shadow.PhaseSuccessful), &c)
		start := env.Now()
		env.ExecuteWorkflow(ShadowPhaseWorkflow, in)
		total += env.Now().Sub(start)
		if !env.IsWorkflowCompleted() {
			t.Fatalf("run %d did not complete", run)
		}
		t.Logf("run %d: %d windows, %d timers, ≤ %d history events", run, c.activities, c.timers, c.events())
		if ev := c.events(); ev > 200 {
			t.Fatalf("run %d: ~%d history events (%+v); a run must stay small", run, ev, c)
		}
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			if c.activities != 12 {
				t.Fatalf("run %d ran %d windows before continuing as new, want 12", run, c.activities)
			}
			var next ShadowPhaseInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			if next.Carry.NextWindow != 12*run || next.Carry.Run.Successes != 12*run || next.Carry.Runs != run {
				t.Fatalf("run %d carried %+v", run, next.Carry)
			}
			in = next
			continue
		}
		res := phaseResult(t, env)
		if run != 6 || res.Runs != 6 || res.Phase != shadow.PhaseSuccessful || res.Windows != 72 {
			t.Fatalf("ended in run %d with %+v; want 6 runs, 72 successful windows", run, res)
		}
		break
	}
	// 71 intervals of 5 minutes: a 6-hour phase in workflow time.
	if total < 71*5*time.Minute {
		t.Fatalf("phase took %v of workflow time, want ≥ 5h55m", total)
	}
}
