package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/workflows"
)

func TestScheduledReleaseIDIsValidAndTakesTheScheduleTime(t *testing.T) {
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	long := "release-" + strings.Repeat("a", 60)
	for _, tt := range []struct{ base, wid, want string }{
		{"release-harbor-assistant-1-4-0-ab12cd34", "nightly-2026-11-30T02:00:00Z", "release-harbor-assistant-1-4-0-ab12cd34-20261130t020000z"},
		{"release-harbor-assistant-1-4-0-ab12cd34", "started-by-hand", "release-harbor-assistant-1-4-0-ab12cd34-20270102t030405z"},
		{long, "x-2026-11-30T02:00:00Z", long[:63-17] + "-20261130t020000z"},
		{"", "x-2026-11-30T02:00:00Z", "scheduled-20261130t020000z"},
	} {
		got := ScheduledReleaseID(tt.base, tt.wid, now)
		if got != tt.want {
			t.Errorf("ScheduledReleaseID(%q, %q) = %q, want %q", tt.base, tt.wid, got, tt.want)
		}
		if err := datasets.ValidateReleaseID(got); err != nil {
			t.Errorf("%q is no valid release id: %v", got, err)
		}
	}
}

func TestScheduleSpecValidateNamesTheFlag(t *testing.T) {
	for _, tt := range []struct {
		spec ScheduleSpec
		want string
	}{
		{ScheduleSpec{}, "--every"},
		{ScheduleSpec{Every: time.Hour, Cron: "0 2 * * *"}, "not both"},
		{ScheduleSpec{Every: 500 * time.Millisecond}, "--every 500ms"},
		{ScheduleSpec{Every: -time.Hour}, "--every"},
		{ScheduleSpec{Cron: "0 2 *"}, "--cron"},
	} {
		if err := tt.spec.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error with %q", tt.spec, err, tt.want)
		}
	}
	for _, ok := range []ScheduleSpec{{Every: time.Second}, {Cron: "0 2 * * *"}, {Cron: "@daily"}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestReleaseScheduleOptions(t *testing.T) {
	in := workflows.ReleaseInput{ReleaseID: "release-m-1-abcdef12", Config: config.Release{Model: config.Model{Name: "m", Version: "1"}}}
	opts, err := ReleaseScheduleOptions("nightly-m", ScheduleSpec{Every: 24 * time.Hour}, "q", in)
	if err != nil {
		t.Fatal(err)
	}
	act, ok := opts.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != ScheduledReleaseWorkflowName || act.TaskQueue != "q" || act.ID != "nightly-m" || len(act.Args) != 1 {
		t.Fatalf("action %+v", opts.Action)
	}
	if len(opts.Spec.Intervals) != 1 || opts.Spec.Intervals[0].Every != 24*time.Hour {
		t.Errorf("spec %+v", opts.Spec)
	}
	if _, err := ReleaseScheduleOptions("", ScheduleSpec{Every: time.Hour}, "q", in); err == nil || !strings.Contains(err.Error(), "--id") {
		t.Errorf("empty id: %v", err)
	}
}

// The wrapper runs the release as a child with the derived id and input,
// and fails the run when the release is blocked, carrying the result.
func TestScheduledReleaseWorkflow(t *testing.T) {
	in := workflows.ReleaseInput{ReleaseID: "release-m-1-abcdef12", Config: config.Release{Model: config.Model{Name: "m", Version: "1"}}}
	for _, verdict := range []string{workflows.VerdictReleased, workflows.VerdictBlocked} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "nightly-m-2026-11-30T02:00:00Z"})
		env.RegisterWorkflowWithOptions(ScheduledReleaseWorkflow, workflow.RegisterOptions{Name: ScheduledReleaseWorkflowName})
		env.RegisterWorkflow(workflows.ReleaseWorkflow)
		const want = "release-m-1-abcdef12-20261130t020000z"
		var gotID string
		env.OnWorkflow(workflows.ReleaseWorkflow, mock.Anything, mock.Anything).Return(
			func(ctx workflow.Context, child workflows.ReleaseInput) (workflows.ReleaseResult, error) {
				gotID = workflow.GetInfo(ctx).WorkflowExecution.ID
				if child.ReleaseID != gotID {
					return workflows.ReleaseResult{}, errors.New("release id " + child.ReleaseID + " is not the workflow id " + gotID)
				}
				return workflows.ReleaseResult{ReleaseID: child.ReleaseID, Verdict: verdict, FailedRules: []string{"errors"}}, nil
			})
		env.ExecuteWorkflow(ScheduledReleaseWorkflowName, in)
		if gotID != want {
			t.Errorf("child id %q, want %q", gotID, want)
		}
		err := env.GetWorkflowError()
		if verdict == workflows.VerdictReleased {
			var res workflows.ReleaseResult
			if err != nil || env.GetWorkflowResult(&res) != nil || res.ReleaseID != want {
				t.Errorf("released: err %v result %+v", err, res)
			}
			continue
		}
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeReleaseBlocked {
			t.Fatalf("blocked: error %v, want %s", err, ErrTypeReleaseBlocked)
		}
		var res workflows.ReleaseResult
		if err := appErr.Details(&res); err != nil || res.Verdict != workflows.VerdictBlocked || res.ReleaseID != want {
			t.Errorf("blocked details %+v, %v", res, err)
		}
	}
}

// Whatever id the schedule gives a run, a valid base yields a valid
// release id that keeps the base's start.
func FuzzScheduledReleaseID(f *testing.F) {
	f.Add("release-harbor-assistant-1-4-0-ab12cd34", "nightly-2026-11-30T02:00:00Z", int64(0))
	f.Add("release-m-1-abcdef12", "x-2026-13-40T99:00:00Z", int64(1e18))
	f.Add(strings.Repeat("a", 63), "-", int64(-1e12))
	f.Fuzz(func(t *testing.T, base, wid string, unix int64) {
		if datasets.ValidateReleaseID(base) != nil {
			return
		}
		now := time.Unix(unix%(1<<35), 0)
		id := ScheduledReleaseID(base, wid, now)
		if err := datasets.ValidateReleaseID(id); err != nil {
			t.Fatalf("ScheduledReleaseID(%q, %q) = %q: %v", base, wid, id, err)
		}
		if keep := min(len(base), 20); !strings.HasPrefix(id, strings.TrimRight(base[:keep], "-")) {
			t.Fatalf("%q lost the base %q", id, base)
		}
	})
}
