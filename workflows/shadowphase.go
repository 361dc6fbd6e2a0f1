package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/shadow"
)

// Names a client uses with a running shadow phase.
const (
	// UpdateEndShadow ends the phase early (EndShadowRequest → ShadowPhaseEnd).
	UpdateEndShadow = "end-shadow"
	// QueryShadowStatus returns a ShadowPhaseStatus.
	QueryShadowStatus = "shadow-status"
	// ErrTypeShadowBadInput marks a ShadowPhaseInput that cannot run.
	ErrTypeShadowBadInput = "ShadowBadInput"
)

// ShadowPhaseInput configures a windowed shadow phase. Only references and
// small values: the traffic and the pairs live on S3.
type ShadowPhaseInput struct {
	ReleaseID string
	Incumbent activities.SandboxRef
	Candidate activities.SandboxRef
	// Traffic: a Parquet request log on S3 (ReplayKey) or the release's prompt dataset.
	ReplayKey string
	Dataset   *activities.DatasetRef

	Analysis          shadow.AnalysisSpec // metrics, count of windows, Argo limits
	RequestsPerWindow int
	// Interval is the pause between the end of one window and the start of
	// the next (a durable timer). Default 5m.
	Interval      time.Duration
	WindowTimeout time.Duration // one window activity; default 30m
	Concurrency   int
	Timeout       time.Duration // per model call
	MaxTokens     int
	SystemPrompt  string

	// SessionToken is workflow.GetSessionInfo(sctx).GetRecreateToken() of
	// the session holding the sandboxes: windows run on that worker, which
	// is the only one that can reach them. Nil runs windows on any worker
	// of the task queue (tests, or sandboxes reachable from every worker).
	SessionToken []byte
	// WindowsPerRun bounds the windows of one workflow run before it
	// continues as new, so history stays small however long the phase is.
	// Default 12.
	WindowsPerRun int

	// Carry is the state handed from one run to the next; leave it zero.
	Carry ShadowPhaseCarry
}

// ShadowPhaseCarry crosses continue-as-new: counts, not per-window history
// (each window's measurement.json is on S3).
type ShadowPhaseCarry struct {
	Run        shadow.RunState
	NextWindow int
	Runs       int // runs before this one
	Last       *shadow.Measurement
}

// EndShadowRequest asks to end the phase now. Outcome is Successful,
// Failed or Inconclusive; empty means Inconclusive (stopped before the
// limits decided).
type EndShadowRequest struct {
	Actor   string
	Reason  string
	Outcome string
}

// ShadowPhaseEnd records who ended the phase early and why.
type ShadowPhaseEnd struct {
	Actor   string
	Reason  string
	Outcome string
	At      time.Time
	Window  int // windows measured when it was ended
}

// ShadowPhaseResult is the phase's outcome.
type ShadowPhaseResult struct {
	Phase   string // shadow.PhaseSuccessful, PhaseFailed or PhaseInconclusive
	Reason  string
	Run     shadow.RunState
	Windows int
	Last    *shadow.Measurement
	EndedBy *ShadowPhaseEnd
	Runs    int // workflow runs the phase took (continue-as-new count + 1)
}

// ShadowPhaseStatus is what the shadow-status query returns.
type ShadowPhaseStatus struct {
	Phase        string
	Window       int // windows measured so far
	Count        int
	Run          shadow.RunState
	Last         *shadow.Measurement
	EndedBy      *ShadowPhaseEnd
	Runs         int
	Waiting      string // "interval" or "window"
	NextWindowAt time.Time
}

type shadowPhase struct {
	in      ShadowPhaseInput
	carry   ShadowPhaseCarry
	ended   *ShadowPhaseEnd
	waiting string
	nextAt  time.Time
}

// ShadowPhaseWorkflow runs analysis windows with a durable timer between
// them, judges each with the Argo-style limits of in.Analysis, and ends
// Successful, Failed or Inconclusive — or earlier through the end-shadow
// Update. It continues as new every WindowsPerRun windows.
func ShadowPhaseWorkflow(ctx workflow.Context, in ShadowPhaseInput) (ShadowPhaseResult, error) {
	if err := in.validate(); err != nil {
		return ShadowPhaseResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeShadowBadInput, nil)
	}
	in = in.withDefaults()
	s := &shadowPhase{in: in, carry: in.Carry}
	if err := workflow.SetQueryHandler(ctx, QueryShadowStatus, func() (ShadowPhaseStatus, error) { return s.status(), nil }); err != nil {
		return ShadowPhaseResult{}, fmt.Errorf("register %s query: %w", QueryShadowStatus, err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateEndShadow,
		func(ctx workflow.Context, req EndShadowRequest) (ShadowPhaseEnd, error) {
			outcome := req.Outcome
			if outcome == "" {
				outcome = shadow.PhaseInconclusive
			}
			s.ended = &ShadowPhaseEnd{Actor: strings.TrimSpace(req.Actor), Reason: strings.TrimSpace(req.Reason), Outcome: outcome, At: workflow.Now(ctx), Window: s.carry.NextWindow}
			return *s.ended, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req EndShadowRequest) error { return s.validateEnd(req) }},
	); err != nil {
		return ShadowPhaseResult{}, fmt.Errorf("register %s update: %w", UpdateEndShadow, err)
	}
	return s.run(ctx)
}

func (in ShadowPhaseInput) validate() error {
	var errs []error
	if in.ReleaseID == "" {
		errs = append(errs, errors.New("ReleaseID is empty"))
	}
	if in.ReplayKey == "" && (in.Dataset == nil || in.Dataset.Rows == 0) {
		errs = append(errs, errors.New("no traffic: set ReplayKey (a Parquet request log on S3) or Dataset"))
	}
	if in.RequestsPerWindow < 1 {
		errs = append(errs, fmt.Errorf("RequestsPerWindow %d: must be at least 1 (and at least analysis.minSamples %d to decide anything)", in.RequestsPerWindow, in.Analysis.MinSamples))
	}
	if in.Interval < 0 || in.WindowTimeout < 0 || in.WindowsPerRun < 0 {
		errs = append(errs, errors.New("Interval, WindowTimeout and WindowsPerRun must not be negative"))
	}
	if err := in.Analysis.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (in ShadowPhaseInput) withDefaults() ShadowPhaseInput {
	if in.Interval == 0 {
		in.Interval = 5 * time.Minute
	}
	if in.WindowTimeout == 0 {
		in.WindowTimeout = 30 * time.Minute
	}
	if in.WindowsPerRun == 0 {
		in.WindowsPerRun = 12
	}
	return in
}

func (s *shadowPhase) validateEnd(req EndShadowRequest) error {
	if s.ended != nil {
		return fmt.Errorf("the shadow phase of %s was already ended by %s: %s", s.in.ReleaseID, s.ended.Actor, s.ended.Reason)
	}
	if s.carry.Run.Done() {
		return fmt.Errorf("the shadow phase of %s has already finished: %s", s.in.ReleaseID, s.carry.Run.Phase)
	}
	if strings.TrimSpace(req.Actor) == "" {
		return errors.New("actor is empty: say who ends the shadow phase (the CLI fills in user@host)")
	}
	if len(strings.TrimSpace(req.Reason)) < 5 {
		return errors.New("a reason is required to end the shadow phase early: pass --reason \"…\" (at least 5 characters); it is recorded with the result")
	}
	switch req.Outcome {
	case "", shadow.PhaseSuccessful, shadow.PhaseFailed, shadow.PhaseInconclusive:
	default:
		return fmt.Errorf("outcome %q: use %s, %s or %s (empty means %s)", req.Outcome, shadow.PhaseSuccessful, shadow.PhaseFailed, shadow.PhaseInconclusive, shadow.PhaseInconclusive)
	}
	return nil
}

func (s *shadowPhase) run(ctx workflow.Context) (ShadowPhaseResult, error) {
	in := s.in
	wctx := ctx
	if in.SessionToken != nil {
		sctx, err := workflow.RecreateSession(ctx, in.SessionToken, &workflow.SessionOptions{
			CreationTimeout: 5 * time.Minute, ExecutionTimeout: 24 * time.Hour, HeartbeatTimeout: 10 * time.Second,
		})
		if err != nil {
			return ShadowPhaseResult{}, fmt.Errorf("rejoin the sandbox session: %w", err)
		}
		defer workflow.CompleteSession(sctx)
		wctx = sctx
	}
	wctx = workflow.WithActivityOptions(wctx, workflow.ActivityOptions{
		StartToCloseTimeout:    in.WindowTimeout,
		ScheduleToStartTimeout: 2 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput, activities.ErrTypeSandboxGone},
		},
	})

	spec := in.Analysis
	windowsThisRun := 0
	for !s.carry.Run.Done() && s.ended == nil && s.carry.NextWindow < spec.Count {
		if windowsThisRun >= in.WindowsPerRun || (windowsThisRun > 0 && workflow.GetInfo(ctx).GetContinueAsNewSuggested()) {
			return s.continueAsNew(ctx)
		}
		if s.carry.NextWindow > 0 {
			s.waiting, s.nextAt = "interval", workflow.Now(ctx).Add(in.Interval)
			if _, err := workflow.AwaitWithTimeout(ctx, in.Interval, func() bool { return s.ended != nil }); err != nil {
				return ShadowPhaseResult{}, fmt.Errorf("wait between windows: %w", err)
			}
			if s.ended != nil {
				break
			}
		}
		m, err := s.window(ctx, wctx)
		if err != nil {
			return ShadowPhaseResult{}, err
		}
		if m == nil { // ended by a human while the window ran
			break
		}
		s.carry.Run = s.carry.Run.Apply(spec, *m)
		s.carry.Last = m
		s.carry.NextWindow++
		windowsThisRun++
		workflow.SetCurrentDetails(ctx, s.details())
	}
	s.waiting = ""
	// An Update accepted at the last moment must finish before the run does.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return ShadowPhaseResult{}, err
	}
	res := ShadowPhaseResult{Phase: s.carry.Run.Phase, Reason: s.carry.Run.Reason, Run: s.carry.Run, Windows: s.carry.NextWindow, Last: s.carry.Last, Runs: s.carry.Runs + 1}
	if s.ended != nil {
		res.Phase, res.EndedBy = s.ended.Outcome, s.ended
		res.Reason = fmt.Sprintf("ended early by %s after %d windows: %s", s.ended.Actor, s.ended.Window, s.ended.Reason)
	}
	workflow.SetCurrentDetails(ctx, s.details())
	return res, nil
}

// window runs one window activity; it returns nil when the phase was ended
// while the window ran (the activity is cancelled).
func (s *shadowPhase) window(ctx, wctx workflow.Context) (*shadow.Measurement, error) {
	in, w := s.in, s.carry.NextWindow
	s.waiting, s.nextAt = "window", time.Time{}
	actx, cancel := workflow.WithCancel(wctx)
	defer cancel()
	actx = workflow.WithActivityOptions(actx, withSummary(workflow.GetActivityOptions(actx), fmt.Sprintf("shadow window %d/%d", w+1, in.Analysis.Count)))
	fut := workflow.ExecuteActivity(actx, a.ShadowWindow, activities.ShadowWindowInput{
		ReleaseID: in.ReleaseID, Window: w, Incumbent: in.Incumbent, Candidate: in.Candidate,
		ReplayKey: in.ReplayKey, Dataset: in.Dataset, Requests: in.RequestsPerWindow, Concurrency: in.Concurrency,
		Timeout: in.Timeout, MaxTokens: in.MaxTokens, SystemPrompt: in.SystemPrompt, Analysis: in.Analysis,
	})
	if err := workflow.Await(ctx, func() bool { return fut.IsReady() || s.ended != nil }); err != nil {
		return nil, err
	}
	if !fut.IsReady() {
		cancel()
		return nil, nil
	}
	var res activities.ShadowWindowResult
	if err := fut.Get(ctx, &res); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && (ae.Type() == activities.ErrTypeBadInput || ae.Type() == activities.ErrTypeSandboxGone) {
			return nil, fmt.Errorf("shadow window %d: %w", w, err)
		}
		// Infrastructure trouble after retries says nothing about the
		// candidate: it counts against inconclusiveLimit, not failureLimit.
		workflow.GetLogger(ctx).Warn("shadow window failed; counted as inconclusive", "window", w, "error", err)
		return &shadow.Measurement{Window: w, Phase: shadow.PhaseInconclusive, Reason: "window failed: " + err.Error()}, nil
	}
	return &res.Measurement, nil
}

func withSummary(o workflow.ActivityOptions, summary string) workflow.ActivityOptions {
	o.Summary = summary
	return o
}

func (s *shadowPhase) continueAsNew(ctx workflow.Context) (ShadowPhaseResult, error) {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return ShadowPhaseResult{}, err
	}
	next := s.in
	next.Carry = s.carry
	next.Carry.Runs++
	return ShadowPhaseResult{}, workflow.NewContinueAsNewError(ctx, ShadowPhaseWorkflow, next)
}

func (s *shadowPhase) status() ShadowPhaseStatus {
	phase := s.carry.Run.Phase
	if phase == "" {
		phase = shadow.PhaseRunning
	}
	if s.ended != nil {
		phase = s.ended.Outcome
	}
	return ShadowPhaseStatus{
		Phase: phase, Window: s.carry.NextWindow, Count: s.in.Analysis.Count, Run: s.carry.Run, Last: s.carry.Last,
		EndedBy: s.ended, Runs: s.carry.Runs + 1, Waiting: s.waiting, NextWindowAt: s.nextAt,
	}
}

// details is the Markdown the Web UI shows for the running phase.
func (s *shadowPhase) details() string {
	r := s.carry.Run
	var b strings.Builder
	fmt.Fprintf(&b, "**shadow phase** %s — %d/%d windows: %d successful, %d failed (limit %d), %d inconclusive (limit %d)\n\n",
		s.status().Phase, s.carry.NextWindow, s.in.Analysis.Count, r.Successes, r.Failures, s.in.Analysis.FailureLimit, r.Inconclusives, s.in.Analysis.InconclusiveLimit)
	if m := s.carry.Last; m != nil {
		fmt.Fprintf(&b, "last window %d: %s — %s\n", m.Window, m.Phase, m.Reason)
	}
	if s.ended != nil {
		fmt.Fprintf(&b, "\nended by %s: %s\n", s.ended.Actor, s.ended.Reason)
	}
	return b.String()
}
