package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// registerDecisions installs the approve / reject / override Updates. Their
// validators refuse a decision the release cannot take right now, so a
// mistaken command fails at the caller and never reaches the history.
func (r *release) registerDecisions(ctx workflow.Context) error {
	handlers := []struct {
		name     string
		validate func(Decision) error
	}{
		{UpdateApprove, func(d Decision) error {
			if r.waiting != WaitingApproval {
				return r.notWaiting(WaitingApproval)
			}
			return requireActor(d)
		}},
		{UpdateReject, func(d Decision) error {
			if r.waiting == "" {
				return r.notWaiting("a decision")
			}
			return requireReason(d, "rejecting")
		}},
		{UpdateOverride, func(d Decision) error {
			if r.waiting != WaitingOverride {
				return r.notWaiting("an override (only a blocked release with an override window can be overridden)")
			}
			return requireReason(d, "overriding a blocking gate")
		}},
	}
	for _, h := range handlers {
		kind := h.name
		err := workflow.SetUpdateHandlerWithOptions(ctx, kind,
			func(ctx workflow.Context, d Decision) (DecisionRecord, error) {
				rec := DecisionRecord{Kind: kind, Actor: d.Actor, Reason: strings.TrimSpace(d.Reason), At: workflow.Now(ctx)}
				r.decision = &rec
				return rec, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error {
				if r.decision != nil {
					return fmt.Errorf("release %s already has a decision: %s by %s", r.in.ReleaseID, r.decision.Kind, r.decision.Actor)
				}
				return h.validate(d)
			}})
		if err != nil {
			return fmt.Errorf("register %s update: %w", kind, err)
		}
	}
	return nil
}

func (r *release) notWaiting(what string) error {
	stage := "running"
	if s := r.status().Stage; s != "" {
		stage = "in stage " + s
	}
	if r.waiting != "" {
		stage = "waiting for " + r.waiting
	}
	return fmt.Errorf("release %s is not waiting for %s (it is %s)", r.in.ReleaseID, what, stage)
}

func requireActor(d Decision) error {
	if strings.TrimSpace(d.Actor) == "" {
		return errors.New("actor is empty: say who decides (the CLI fills in user@host)")
	}
	return nil
}

func requireReason(d Decision, doing string) error {
	if err := requireActor(d); err != nil {
		return err
	}
	if len(strings.TrimSpace(d.Reason)) < 5 {
		return fmt.Errorf("a reason is required for %s: pass --reason \"…\" (at least 5 characters); it is recorded in the audit trail and the attestation", doing)
	}
	return nil
}

// decide applies the human-in-the-loop policy to the gate's verdict: a
// passing release may have to wait for approval, a blocked one may wait
// for an override. No decision before the deadline means BLOCKED.
func (r *release) decide(ctx workflow.Context, verdict string, failed []string) (string, []string) {
	ap := r.in.Config.Approval
	var wait time.Duration
	switch {
	case verdict == VerdictReleased && ap.Required:
		r.waiting, wait = WaitingApproval, time.Duration(ap.Timeout)
	case verdict == VerdictBlocked && ap.OverrideWindow > 0:
		r.waiting, wait = WaitingOverride, time.Duration(ap.OverrideWindow)
	default:
		return verdict, failed
	}
	r.waitingDeadline = workflow.Now(ctx).Add(wait)
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrReleaseStage.ValueSet("awaiting-"+r.waiting))
	workflow.SetCurrentDetails(ctx, r.details(""))
	decided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.decision != nil })
	waiting := r.waiting
	r.waiting = ""
	if err != nil || !decided {
		return VerdictBlocked, append(failed, fmt.Sprintf("no %s before the deadline (%s)", waiting, wait))
	}
	d := r.decision
	switch d.Kind {
	case UpdateApprove:
		return VerdictReleased, failed
	case UpdateOverride:
		// The failed rules stay on record; the override releases despite them.
		return VerdictReleased, failed
	default:
		return VerdictBlocked, append(failed, fmt.Sprintf("rejected by %s: %s", d.Actor, d.Reason))
	}
}
