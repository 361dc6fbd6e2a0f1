package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/workflows"
)

// ScheduledReleaseWorkflowName is the workflow type a release schedule
// starts (registered by NewWorker).
const ScheduledReleaseWorkflowName = "ScheduledRelease"

// ErrTypeReleaseBlocked is the failure type of a scheduled run whose
// release was blocked by its gate: the schedule shows the run as failed.
const ErrTypeReleaseBlocked = "ReleaseBlocked"

// scheduleStampLayout is the run's nominal time inside its release id:
// lowercase and without ':' so the id stays a valid S3 path segment.
const scheduleStampLayout = "20060102t150405z"

// ScheduledReleaseWorkflow is what a release schedule starts. A schedule
// starts every run with the same input and a workflow id of its own
// ("<schedule id>-<RFC 3339 time>"), which is no valid release id; so this
// gives each run a release id of its own (the config's release id plus the
// run's time) and runs the release as a normal child ReleaseWorkflow with
// that id: the release record, S3 prefix, search attributes and the
// `starter release status|report` commands are those of any release.
// Its gate compares against the model's last RELEASED release, which for
// the second run on is the previous scheduled run that passed.
//
// A blocked release fails this run (ErrTypeReleaseBlocked, the result as
// details) so the schedule and the Web UI show the regression; the child
// itself ends normally with GateVerdict BLOCKED.
func ScheduledReleaseWorkflow(ctx workflow.Context, in workflows.ReleaseInput) (workflows.ReleaseResult, error) {
	info := workflow.GetInfo(ctx)
	id := ScheduledReleaseID(in.ReleaseID, info.WorkflowExecution.ID, workflow.Now(ctx))
	if err := datasets.ValidateReleaseID(id); err != nil {
		return workflows.ReleaseResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("scheduled release id: %v", err), "BadInput", err)
	}
	in.ReleaseID = id
	cfg := in.Config
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		TaskQueue:             info.TaskQueueName,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// Cancelling the scheduled run lets the release tear its sandboxes down.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		StaticSummary:     fmt.Sprintf("Scheduled release %s %s (%s)", cfg.Model.Name, cfg.Model.Version, info.WorkflowExecution.ID),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrModelName.ValueSet(cfg.Model.Name),
			workflows.AttrModelVersion.ValueSet(cfg.Model.Version),
			workflows.AttrReleaseStage.ValueSet("queued"),
		),
	})
	var res workflows.ReleaseResult
	if err := workflow.ExecuteChildWorkflow(cctx, workflows.ReleaseWorkflow, in).Get(ctx, &res); err != nil {
		return res, fmt.Errorf("release %s: %w", id, err)
	}
	if res.Verdict == workflows.VerdictBlocked {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("release %s blocked by: %s", id, strings.Join(res.FailedRules, ", ")), ErrTypeReleaseBlocked, nil, res)
	}
	return res, nil
}

// ScheduledReleaseID is the release id of one scheduled run: base (the
// config's release id) shortened to fit, then the run's nominal time taken
// from the workflow id the schedule gave it, or now when the id carries
// none (a run started by hand).
func ScheduledReleaseID(base, workflowID string, now time.Time) string {
	at := now.UTC()
	const n = len("2006-01-02T15:04:05Z")
	if len(workflowID) > n && workflowID[len(workflowID)-n-1] == '-' {
		if t, err := time.Parse(time.RFC3339, workflowID[len(workflowID)-n:]); err == nil {
			at = t.UTC()
		}
	}
	stamp := at.Format(scheduleStampLayout)
	base = strings.TrimRight(base, "-")
	if room := datasets.MaxReleaseIDLen - len(stamp) - 1; len(base) > room {
		base = strings.TrimRight(base[:room], "-")
	}
	if base == "" {
		return "scheduled-" + stamp
	}
	return base + "-" + stamp
}

// ScheduleSpec is when a release schedule fires: exactly one of Every and
// Cron.
type ScheduleSpec struct {
	Every time.Duration
	Cron  string // five fields, UTC, e.g. "0 2 * * *"
}

// MinScheduleInterval is the Temporal server's lower bound for an interval.
const MinScheduleInterval = time.Second

// Validate names the flag that is wrong.
func (s ScheduleSpec) Validate() error {
	switch {
	case s.Every == 0 && s.Cron == "":
		return errors.New("give --every DURATION (e.g. 24h) or --cron \"MIN HOUR DOM MON DOW\" (e.g. \"0 2 * * *\")")
	case s.Every != 0 && s.Cron != "":
		return errors.New("--every and --cron: give one of them, not both")
	case s.Every < 0 || (s.Every > 0 && s.Every < MinScheduleInterval):
		return fmt.Errorf("--every %s: the interval must be at least %s", s.Every, MinScheduleInterval)
	case s.Cron != "" && len(strings.Fields(s.Cron)) != 5 && !strings.HasPrefix(s.Cron, "@"):
		return fmt.Errorf("--cron %q: want five fields MIN HOUR DOM MON DOW (e.g. \"0 2 * * *\") or a macro like @daily", s.Cron)
	}
	return nil
}

func (s ScheduleSpec) sdk() client.ScheduleSpec {
	if s.Every > 0 {
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Every}}}
	}
	return client.ScheduleSpec{CronExpressions: []string{s.Cron}}
}

// ReleaseScheduleOptions is a schedule that runs the release in every spec
// tick on taskQueue. Runs never overlap (a tick while one runs is skipped)
// and a missed tick is caught up within an hour. The schedule's own search
// attributes name the model, so `starter schedule list` and the UI can
// filter by it.
func ReleaseScheduleOptions(id string, spec ScheduleSpec, taskQueue string, in workflows.ReleaseInput) (client.ScheduleOptions, error) {
	if err := spec.Validate(); err != nil {
		return client.ScheduleOptions{}, err
	}
	if id == "" {
		return client.ScheduleOptions{}, errors.New("--id: empty; name the schedule, e.g. nightly-" + in.Config.Model.Name)
	}
	cfg := in.Config
	return client.ScheduleOptions{
		ID:             id,
		Spec:           spec.sdk(),
		Overlap:        enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow:  time.Hour,
		PauseOnFailure: false,
		Note:           fmt.Sprintf("continuous governance of %s %s (config sha256 %s)", cfg.Model.Name, cfg.Model.Version, in.ConfigSHA256),
		Action: &client.ScheduleWorkflowAction{
			ID:        id,
			Workflow:  ScheduledReleaseWorkflowName,
			Args:      []any{in},
			TaskQueue: taskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(
				workflows.AttrModelName.ValueSet(cfg.Model.Name),
				workflows.AttrModelVersion.ValueSet(cfg.Model.Version),
			),
		},
	}, nil
}

// RunOutcome is how one scheduled run ended, for `schedule list`.
type RunOutcome struct {
	WorkflowID string
	Status     string // Running, Completed, Failed, ... (the API's names)
	ReleaseID  string // the child release, when finished
	Verdict    string // RELEASED or BLOCKED, when finished
}

// String is the short form `schedule list` prints.
func (o RunOutcome) String() string {
	if o.WorkflowID == "" {
		return "-"
	}
	s := strings.ToLower(o.Status)
	if o.Verdict != "" {
		s += " " + o.Verdict + " " + o.ReleaseID
	}
	return s
}

// LastRun describes the newest finished run among a schedule's recent
// actions (newest last, as the server lists them); while only the first
// run is going it describes that one, as running.
func LastRun(ctx context.Context, c client.Client, recent []client.ScheduleActionResult) (RunOutcome, error) {
	var newest RunOutcome
	for i := len(recent) - 1; i >= 0; i-- {
		r := recent[i].StartWorkflowResult
		if r == nil {
			continue
		}
		o, err := DescribeRun(ctx, c, r.WorkflowID)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue // past the namespace's retention
		}
		if err != nil {
			return o, err
		}
		if o.Status != "Running" {
			return o, nil
		}
		if newest.WorkflowID == "" {
			newest = o
		}
	}
	return newest, nil
}

// DescribeRun reads the status of a scheduled run and, once it has ended,
// its release id and verdict (a blocked run carries them in its failure).
func DescribeRun(ctx context.Context, c client.Client, workflowID string) (RunOutcome, error) {
	out := RunOutcome{WorkflowID: workflowID}
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return out, fmt.Errorf("describe scheduled run %s: %w", workflowID, err)
	}
	st := desc.GetWorkflowExecutionInfo().GetStatus()
	out.Status = st.String() // "Running", "Completed", "Failed", ...
	if st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return out, nil
	}
	var res workflows.ReleaseResult
	err = c.GetWorkflow(ctx, workflowID, "").Get(ctx, &res)
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeReleaseBlocked && appErr.HasDetails():
		if derr := appErr.Details(&res); derr != nil {
			return out, fmt.Errorf("scheduled run %s: read blocked result: %w", workflowID, derr)
		}
	default:
		return out, nil // failed for another reason: the status says so
	}
	out.ReleaseID, out.Verdict = res.ReleaseID, res.Verdict
	return out, nil
}
