package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/audit"
)

// stressStage ramps the request rate against the candidate under each
// configured network profile, right after provisioning, so a model that
// cannot carry the expected load is known before the long stages run. It is
// opt-in (suites.stress): without it the stage is marked skipped, which
// records nothing in the history.
func (r *release) stressStage(ctx, sctx workflow.Context, cand activities.SandboxRef) error {
	cfg := r.in.Config
	st := cfg.Suites.Stress
	if st == nil {
		r.setStage(ctx, StageStress, StateSkipped, "no suites.stress configured")
		return nil
	}
	if res, done := r.suites[activities.SuiteStress]; done {
		r.setStage(ctx, StageStress, StateDone, res.Section.Summary)
		return nil
	}
	rates := st.RampRates()
	r.setStage(ctx, StageStress, StateRunning, fmt.Sprintf("%d profiles × up to %d steps of %s", len(st.Profiles), len(rates), time.Duration(st.StepDuration)))
	// Bounded by the ramp itself plus room for writing the rows.
	budget := time.Duration(len(st.Profiles)*len(rates))*(time.Duration(st.StepDuration)+time.Duration(st.Timeout)) + 10*time.Minute
	var res activities.SuiteResult
	if err := workflow.ExecuteActivity(r.sessionOpts(sctx, "stress ramp", budget), a.Stress, activities.StressInput{
		ReleaseID: r.in.ReleaseID, Sandbox: cand, Model: cfg.Model.Name, Stress: *st, Seed: cfg.Seed,
	}).Get(ctx, &res); err != nil {
		return fmt.Errorf("stress: %w", err)
	}
	r.suites[activities.SuiteStress] = res
	if err := r.record(ctx, audit.KindStage, StageStress, []string{res.ManifestKey}, map[string]any{"suite": activities.SuiteStress, "metrics": res.Metrics, "queries": res.Queries}, "", ""); err != nil {
		return err
	}
	r.setStage(ctx, StageStress, StateDone, res.Section.Summary)
	return nil
}
