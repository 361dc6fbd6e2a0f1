package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
)

// predictivePhase runs the suites of a classifier or regressor: fairness on a
// synthetic population with counterfactual twins, robustness attacks, and
// membership inference; then the gate. Each suite is one activity in the
// sandbox's session; a suite already done in an earlier session is skipped.
func (r *release) predictivePhase(ctx, sctx workflow.Context, cand activities.SandboxRef) error {
	cfg := r.in.Config
	s := cfg.Suites

	needData := s.Fairness != nil
	if needData && r.tabular == nil {
		r.setStage(ctx, StageGenerate, StateRunning, fmt.Sprintf("%d %s profiles with counterfactual twins, seed %d", s.Fairness.Dataset.Rows, s.Fairness.Dataset.Schema, s.Fairness.Dataset.Seed))
		var ref activities.TabularDataRef
		if err := workflow.ExecuteActivity(r.opts(ctx, "generate "+s.Fairness.Dataset.Schema+" profiles", 30*time.Minute), a.GenerateTabular, activities.GenerateTabularInput{
			ReleaseID: r.in.ReleaseID, Data: s.Fairness.Dataset,
		}).Get(ctx, &ref); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		r.tabular = &ref
		if err := r.record(ctx, audit.KindStage, StageGenerate, []string{ref.ManifestKey}, map[string]any{"rows": ref.Rows, "originals": ref.Originals, "seed": ref.Seed}, "", ""); err != nil {
			return err
		}
		how := "generated"
		if ref.Reused {
			how = "reused"
		}
		r.setStage(ctx, StageGenerate, StateDone, fmt.Sprintf("%d rows (%d originals + twins, %s) → %s", ref.Rows, ref.Originals, how, ref.ManifestKey))
	} else if !needData {
		r.setStage(ctx, StageGenerate, StateSkipped, "inputs are generated inside the suites from the seed")
	}

	var names []string
	if s.Fairness != nil {
		names = append(names, activities.SuiteFairness)
	}
	if s.Robustness != nil {
		names = append(names, activities.SuiteRobustness)
	}
	if len(names) == 0 {
		r.setStage(ctx, StageAdversarial, StateSkipped, "no fairness or robustness suite configured")
	}
	for _, name := range names {
		if _, done := r.suites[name]; done {
			continue
		}
		r.setStage(ctx, StageAdversarial, StateRunning, "running the "+name+" suite")
		res, err := r.runSuite(ctx, sctx, name, cand)
		if err != nil {
			return fmt.Errorf("%s suite: %w", name, err)
		}
		r.suites[name] = res
		if err := r.record(ctx, audit.KindStage, StageAdversarial, []string{res.ManifestKey}, map[string]any{"suite": name, "metrics": res.Metrics, "queries": res.Queries}, "", ""); err != nil {
			return err
		}
	}
	if len(names) > 0 {
		var parts []string
		for _, name := range names {
			parts = append(parts, r.suites[name].Section.Summary)
		}
		r.setStage(ctx, StageAdversarial, StateDone, strings.Join(parts, " "))
	}

	if s.Membership == nil {
		r.setStage(ctx, StagePrivacy, StateSkipped, "no membership-inference suite configured")
	} else if _, done := r.suites[activities.SuiteMembership]; !done {
		r.setStage(ctx, StagePrivacy, StateRunning, "membership inference and empirical ε")
		res, err := r.runSuite(ctx, sctx, activities.SuiteMembership, cand)
		if err != nil {
			return fmt.Errorf("membership suite: %w", err)
		}
		r.suites[activities.SuiteMembership] = res
		if err := r.record(ctx, audit.KindStage, StagePrivacy, []string{res.ManifestKey}, map[string]any{"suite": activities.SuiteMembership, "metrics": res.Metrics, "queries": res.Queries}, "", ""); err != nil {
			return err
		}
		r.setStage(ctx, StagePrivacy, StateDone, res.Section.Summary)
	}

	if r.preGate == nil {
		if err := r.preShadowGate(ctx); err != nil {
			return err
		}
	}
	r.setStage(ctx, StageShadow, StateSkipped, "shadow comparison runs for chat models; use `starter shadow proxy` to mirror OIP traffic")
	return nil
}

func (r *release) runSuite(ctx, sctx workflow.Context, name string, cand activities.SandboxRef) (activities.SuiteResult, error) {
	cfg := r.in.Config
	in := activities.SuiteInput{
		ReleaseID: r.in.ReleaseID, Sandbox: cand, ModelType: cfg.Model.Type, OIPModel: cfg.Model.OIPModel,
		Fairness: cfg.Suites.Fairness, Robustness: cfg.Suites.Robustness, Membership: cfg.Suites.Membership,
		Tabular: r.tabular, Seed: cfg.Seed, Recipe: recipeOf(cfg.Model),
	}
	var fn any
	switch name {
	case activities.SuiteFairness:
		fn = a.FairnessSuite
	case activities.SuiteRobustness:
		fn = a.RobustnessSuite
	default:
		fn = a.MembershipSuite
	}
	var res activities.SuiteResult
	err := workflow.ExecuteActivity(r.sessionOpts(sctx, name+" suite", 2*time.Hour), fn, in).Get(ctx, &res)
	return res, err
}

// recipeOf names the training recipe of a bundled reference model (its
// sandbox command runs sandgate-refmodel with --kind and --variant), which
// LiRA's shadow models are trained with; other models have none.
func recipeOf(m config.Model) string {
	cmd := m.Sandbox.Command
	if len(cmd) == 0 || !strings.HasSuffix(cmd[0], "sandgate-refmodel") {
		return ""
	}
	var kind, variant string
	for i := 1; i+1 < len(cmd); i++ {
		switch cmd[i] {
		case "--kind":
			kind = cmd[i+1]
		case "--variant":
			variant = cmd[i+1]
		}
	}
	if kind == "" || variant == "" {
		return ""
	}
	return kind + "/" + variant
}

// suiteMetrics merges the metrics of every suite run so far.
func (r *release) suiteMetrics() map[string]float64 {
	out := map[string]float64{}
	for _, res := range r.suites {
		for k, v := range res.Metrics {
			out[k] = v
		}
	}
	return out
}

// suiteSections are the report sections in the order the suites run.
func (r *release) suiteSections() []audit.SuiteSection {
	var out []audit.SuiteSection
	for _, name := range []string{activities.SuiteStress, activities.SuiteRedTeam, activities.SuiteLLMLeak, activities.SuiteFairness, activities.SuiteRobustness, activities.SuiteMembership} {
		if res, ok := r.suites[name]; ok {
			out = append(out, res.Section)
		}
	}
	return out
}
