package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/redteam"
)

// a is only used for its method values: the SDK takes activity names from them.
var a *activities.Activities

// maxSandboxSessions bounds how often a release provisions its sandboxes again
// after the worker that held them died.
const maxSandboxSessions = 4

// release is the workflow's state. Everything in it is rebuilt by replay.
type release struct {
	in     ReleaseInput
	stages []StageStatus
	prefix string

	dataset       *activities.DatasetRef
	shards        map[int]activities.ShardResult
	tabular       *activities.TabularDataRef
	suites        map[string]activities.SuiteResult
	advResults    *activities.ResultsRef
	advSummary    redteam.Summary
	advTally      redteam.Tally
	advDone       string
	privacy       *activities.PrivacyResult
	preGate       *activities.GateResult
	shadow        *activities.ShadowResult
	shadowPhase   *ShadowPhaseResult
	shadowSection *audit.SuiteSection
	shadowGate    *activities.GateResult
	sandboxes     []activities.SandboxRef
	evidence      map[string]any
	sessions      int
	teardownMsg   string
	poisoned      []string

	waiting         string
	waitingDeadline time.Time
	decision        *DecisionRecord
	decisionSeq     int64

	auditSeq  int64
	chainHead string
	artifact  activities.SandboxRef // the candidate's, for the attestation subject
	attest    *activities.AttestResult
	reportRef activities.ReportRef
}

// ReleaseWorkflow takes a candidate model through the whole release:
// provision → generate → adversarial → privacy → gate → shadow → report → teardown.
// A release blocked by its gate ends normally with verdict BLOCKED.
func ReleaseWorkflow(ctx workflow.Context, in ReleaseInput) (ReleaseResult, error) {
	r := &release{in: in, shards: map[int]activities.ShardResult{}, suites: map[string]activities.SuiteResult{}, evidence: map[string]any{}}
	for _, s := range Stages {
		r.stages = append(r.stages, StageStatus{Name: s, State: StatePending})
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.status(), nil }); err != nil {
		return ReleaseResult{}, fmt.Errorf("register status query: %w", err)
	}
	if err := r.registerDecisions(ctx); err != nil {
		return ReleaseResult{}, err
	}
	return r.run(ctx)
}

func (r *release) run(ctx workflow.Context) (ReleaseResult, error) {
	cfg := r.in.Config
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		AttrModelName.ValueSet(cfg.Model.Name),
		AttrModelVersion.ValueSet(cfg.Model.Version),
		AttrReleaseStage.ValueSet(StageProvision))

	var prep activities.PrepareResult
	if err := workflow.ExecuteActivity(r.opts(ctx, "record config", 2*time.Minute), a.Prepare, activities.PrepareInput{
		ReleaseID: r.in.ReleaseID, Config: cfg, ConfigSHA256: r.in.ConfigSHA256,
	}).Get(ctx, &prep); err != nil {
		return ReleaseResult{}, fmt.Errorf("prepare release: %w", err)
	}
	r.prefix = prep.Prefix
	if err := r.record(ctx, audit.KindConfig, "prepare", []string{prep.ConfigKey}, map[string]string{"config_sha256": r.in.ConfigSHA256}, "", ""); err != nil {
		return ReleaseResult{}, err
	}

	// The sandboxed stages run in a session pinned to one worker, because the
	// sandbox lives on that worker. If the worker dies, the session fails and
	// the stages that had not finished resume in a new session on another
	// worker, from what is already on S3.
	var phaseErr error
	for {
		r.sessions++
		phaseErr = r.sandboxPhase(ctx)
		if phaseErr == nil || !r.sessionLost(phaseErr) || r.sessions >= maxSandboxSessions {
			break
		}
		workflow.GetLogger(ctx).Warn("sandbox session lost; provisioning again", "session", r.sessions, "error", phaseErr)
		r.setStage(ctx, StageProvision, StateRunning, fmt.Sprintf("worker lost; provisioning again (session %d)", r.sessions+1))
	}
	if phaseErr != nil {
		r.failRunning(ctx, phaseErr)
		return r.result(""), phaseErr
	}

	verdict, failed := r.verdict()
	gateVerdict := verdict
	verdict, failed = r.decide(ctx, verdict, failed)
	if d := r.decision; d != nil {
		if err := r.record(ctx, decisionKind(d.Kind), StageGate, nil, map[string]string{"verdict": verdict}, d.Actor, d.Reason); err != nil {
			return r.result(verdict), err
		}
		r.decisionSeq = r.auditSeq
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrGateVerdict.ValueSet(verdict))
	reportKey, err := r.report(ctx, verdict)
	if err != nil {
		return r.result(verdict), err
	}
	if err := r.record(ctx, audit.KindStage, StageReport, []string{r.reportRef.MarkdownKey, r.reportRef.JSONKey, r.reportRef.HTMLKey}, nil, "", ""); err != nil {
		return r.result(verdict), err
	}
	if err := r.record(ctx, audit.KindFinal, "", nil, map[string]any{"verdict": verdict, "gate_verdict": gateVerdict, "failed": failed}, "", ""); err != nil {
		return r.result(verdict), err
	}
	if err := r.attestRelease(ctx, verdict); err != nil {
		return r.result(verdict), err
	}
	res := r.result(verdict)
	res.FailedRules = failed
	res.ReportKey = reportKey
	res.Decision = r.decision
	res.AuditHead = r.chainHead
	if r.attest != nil {
		res.AttestationKey = r.attest.Key
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrReleaseStage.ValueSet("done"))
	workflow.SetCurrentDetails(ctx, r.details(verdict))
	// An Update accepted just before the end must finish before the workflow does.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return res, nil
}

// sandboxPhase provisions the sandboxes and runs every stage that needs the
// model; stages already done in an earlier session are skipped.
func (r *release) sandboxPhase(ctx workflow.Context) (err error) {
	cfg := r.in.Config
	sctx, err := workflow.CreateSession(ctx, &workflow.SessionOptions{
		CreationTimeout:  5 * time.Minute,
		ExecutionTimeout: 24 * time.Hour,
		HeartbeatTimeout: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("create sandbox session: %w", err)
	}
	defer workflow.CompleteSession(sctx)

	r.sandboxes = nil
	defer func() { r.teardown(ctx, sctx) }()

	r.setStage(ctx, StageProvision, StateRunning, "starting the candidate in a process sandbox")
	cand, err := r.provision(sctx, "candidate", cfg.Model)
	if err != nil {
		return err
	}
	var inc *activities.SandboxRef
	predictive := cfg.Model.Type != "" && cfg.Model.Type != config.TypeChat
	if !predictive && cfg.Incumbent != nil && cfg.Suites.Shadow.Requests > 0 && r.shadow == nil && r.shadowPhase == nil {
		ref, err := r.provision(sctx, "incumbent", *cfg.Incumbent)
		if err != nil {
			return err
		}
		inc = &ref
	}
	r.setStage(ctx, StageProvision, StateDone, fmt.Sprintf("%d sandbox(es); egress blocked: %v; interfaces %v", len(r.sandboxes), cand.EgressBlocked, cand.Interfaces))
	if err := r.stressStage(ctx, sctx, cand); err != nil {
		return err
	}
	if predictive {
		return r.predictivePhase(ctx, sctx, cand)
	}

	if r.dataset == nil {
		r.setStage(ctx, StageGenerate, StateRunning, fmt.Sprintf("%d adversarial prompts, seed %d", cfg.Suites.Adversarial.Prompts, cfg.Seed))
		ds, err := r.generate(ctx)
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		r.dataset = ds
		if err := r.record(ctx, audit.KindStage, StageGenerate, []string{ds.ManifestKey}, map[string]any{"rows": ds.Rows, "seed": cfg.Seed}, "", ""); err != nil {
			return err
		}
		how := "generated"
		if ds.Reused {
			how = "reused"
		}
		r.setStage(ctx, StageGenerate, StateDone, fmt.Sprintf("%d rows in %d parts (%s) → %s", ds.Rows, len(ds.Files), how, ds.ManifestKey))
	}

	if r.advResults == nil {
		if err := r.adversarial(ctx, sctx, cand); err != nil {
			return err
		}
	}
	if _, ok := r.suites[activities.SuiteRedTeam]; !ok {
		if err := r.redTeamSuite(ctx, sctx, cand); err != nil {
			return err
		}
	}

	target := r.target()
	if r.privacy == nil {
		r.setStage(ctx, StagePrivacy, StateRunning, "probing for system prompt, secret and canary leaks")
		var pr activities.PrivacyResult
		adv := cfg.Suites.Adversarial
		if err := workflow.ExecuteActivity(r.sessionOpts(sctx, "privacy probes", 30*time.Minute), a.PrivacyScan, activities.PrivacyInput{
			ReleaseID: r.in.ReleaseID, Sandbox: cand, Seed: cfg.Seed, Target: target,
			Concurrency: adv.Concurrency, Timeout: time.Duration(adv.Timeout), MaxTokens: adv.MaxTokens,
			Model: cfg.Model.Name, AdversarialManifest: r.advResults.ManifestKey,
		}).Get(ctx, &pr); err != nil {
			return fmt.Errorf("privacy: %w", err)
		}
		r.privacy = &pr
		if err := r.record(ctx, audit.KindStage, StagePrivacy, []string{pr.ManifestKey}, pr.Summary, "", ""); err != nil {
			return err
		}
		r.setStage(ctx, StagePrivacy, StateDone, fmt.Sprintf("%d leaks in %d replies scanned", pr.Summary.Leaks, pr.Summary.Scanned))
	}
	if p := cfg.Suites.Privacy; p.Exposure != nil || p.Extraction != nil {
		if _, done := r.suites[activities.SuiteLLMLeak]; !done {
			r.setStage(ctx, StagePrivacy, StateRunning, "canary exposure and extraction of planted records")
			var res activities.SuiteResult
			if err := workflow.ExecuteActivity(r.sessionOpts(sctx, "canary exposure, extraction", time.Hour), a.LLMLeakage, activities.LLMLeakInput{
				ReleaseID: r.in.ReleaseID, Sandbox: cand, Model: cfg.Model.Name, Exposure: p.Exposure, Extraction: p.Extraction,
				Concurrency: cfg.Suites.Adversarial.Concurrency, Timeout: time.Duration(cfg.Suites.Adversarial.Timeout), Seed: cfg.Seed,
			}).Get(ctx, &res); err != nil {
				return fmt.Errorf("memorisation: %w", err)
			}
			r.suites[activities.SuiteLLMLeak] = res
			if err := r.record(ctx, audit.KindStage, StagePrivacy, []string{res.ManifestKey}, map[string]any{"suite": activities.SuiteLLMLeak, "metrics": res.Metrics}, "", ""); err != nil {
				return err
			}
		}
		r.setStage(ctx, StagePrivacy, StateDone, fmt.Sprintf("%d leaks in %d replies scanned. %s", r.privacy.Summary.Leaks, r.privacy.Summary.Scanned, r.suites[activities.SuiteLLMLeak].Section.Summary))
	}

	if r.preGate == nil {
		if err := r.preShadowGate(ctx); err != nil {
			return err
		}
	}
	if r.preGate.Verdict.Verdict == VerdictBlocked {
		r.setStage(ctx, StageShadow, StateSkipped, "gate blocked the release")
		return nil
	}

	if inc == nil && r.shadow == nil && r.shadowPhase == nil {
		r.setStage(ctx, StageShadow, StateSkipped, "no incumbent or no shadow requests configured")
		return nil
	}
	if cfg.Suites.Shadow.Analysis != nil {
		if r.shadowPhase == nil {
			return r.shadowAnalysis(ctx, sctx, *inc, cand)
		}
		return nil
	}
	if r.shadow == nil {
		r.setStage(ctx, StageShadow, StateRunning, fmt.Sprintf("replaying %d requests to incumbent and candidate", cfg.Suites.Shadow.Requests))
		var sr activities.ShadowResult
		if err := workflow.ExecuteActivity(r.sessionOpts(sctx, "shadow replay", 30*time.Minute), a.Shadow, activities.ShadowInput{
			ReleaseID: r.in.ReleaseID, Incumbent: *inc, Candidate: cand, Dataset: *r.dataset,
			Requests: cfg.Suites.Shadow.Requests, Concurrency: cfg.Suites.Shadow.Concurrency,
			Timeout: time.Duration(cfg.Suites.Adversarial.Timeout), MaxTokens: cfg.Suites.Adversarial.MaxTokens,
			SystemPrompt: cfg.Model.SystemPrompt,
		}).Get(ctx, &sr); err != nil {
			return fmt.Errorf("shadow: %w", err)
		}
		r.shadow = &sr
		var g activities.GateResult
		if err := workflow.ExecuteActivity(r.opts(ctx, "shadow decision", 2*time.Minute), a.Gate, activities.GateInput{
			ReleaseID: r.in.ReleaseID, ModelName: cfg.Model.Name, Phase: gate.PhaseShadow, Policy: cfg.Gate,
			Adversarial: r.advSummary, Privacy: r.privacy.Summary, Shadow: sr.Summary, SuiteMetrics: r.suiteMetrics(), Evidence: r.gateEvidence(),
		}).Get(ctx, &g); err != nil {
			return fmt.Errorf("shadow decision: %w", err)
		}
		r.shadowGate = &g
		if err := r.record(ctx, audit.KindDecision, StageShadow, []string{sr.ManifestKey, g.EvidenceKey}, map[string]any{"verdict": g.Verdict.Verdict, "failed": g.Verdict.Failed}, "", ""); err != nil {
			return err
		}
		state := StateDone
		if g.Verdict.Verdict == VerdictBlocked {
			state = StateFailed
		}
		r.setStage(ctx, StageShadow, state, fmt.Sprintf("agreement %.2f (noise floor %.2f), p95 ratio %.2f; %s",
			sr.Summary.ExactAgreement, sr.Summary.NoiseFloorAgreement, sr.Summary.LatencyP95Ratio, gateSummary(g.Verdict)))
	}
	return nil
}

// preShadowGate applies the policy's pre-shadow rules to everything the
// release measured so far and records the decision.
func (r *release) preShadowGate(ctx workflow.Context) error {
	cfg := r.in.Config
	r.setStage(ctx, StageGate, StateRunning, "applying the policy")
	in := activities.GateInput{
		ReleaseID: r.in.ReleaseID, ModelName: cfg.Model.Name, Phase: gate.PhasePreShadow, Policy: cfg.Gate,
		Adversarial: r.advSummary, SuiteMetrics: r.suiteMetrics(), Evidence: r.gateEvidence(),
	}
	if r.privacy != nil {
		in.Privacy = r.privacy.Summary
	}
	var g activities.GateResult
	if err := workflow.ExecuteActivity(r.opts(ctx, "gate", 2*time.Minute), a.Gate, in).Get(ctx, &g); err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	r.preGate = &g
	if err := r.record(ctx, audit.KindDecision, StageGate, []string{g.EvidenceKey}, map[string]any{"verdict": g.Verdict.Verdict, "failed": g.Verdict.Failed}, "", ""); err != nil {
		return err
	}
	state := StateDone
	if g.Verdict.Verdict == VerdictBlocked {
		state = StateFailed
	}
	r.setStage(ctx, StageGate, state, gateSummary(g.Verdict))
	return nil
}

// generate makes the prompt dataset in as many parts as the adversarial
// stage has shards, one activity each, then writes the manifest; a dataset
// already on S3 with a matching manifest is reused.
func (r *release) generate(ctx workflow.Context) (*activities.DatasetRef, error) {
	cfg := r.in.Config
	adv := cfg.Suites.Adversarial
	in := activities.GenerateInput{
		ReleaseID: r.in.ReleaseID, Seed: cfg.Seed, Count: adv.Prompts, Shards: min(adv.Shards, adv.Prompts),
		Families: adv.Families, ConverterRate: adv.ConverterRate,
	}
	var ds activities.DatasetRef
	if err := workflow.ExecuteActivity(r.opts(ctx, "look for an identical dataset", 2*time.Minute), a.FindDataset, in).Get(ctx, &ds); err != nil {
		return nil, err
	}
	if ds.Reused {
		return &ds, nil
	}
	futures := make([]workflow.Future, in.Shards)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(r.opts(ctx, fmt.Sprintf("generate prompts part %d/%d", i+1, in.Shards), 30*time.Minute),
			a.GeneratePromptsShard, activities.PromptShardInput{GenerateInput: in, Shard: i})
	}
	files := make([]datasets.ManifestFile, in.Shards)
	for i, f := range futures {
		if err := f.Get(ctx, &files[i]); err != nil {
			return nil, fmt.Errorf("part %d: %w", i, err)
		}
	}
	if err := workflow.ExecuteActivity(r.opts(ctx, "dataset manifest", 2*time.Minute), a.FinalizeDataset,
		activities.FinalizeDatasetInput{GenerateInput: in, Files: files}).Get(ctx, &ds); err != nil {
		return nil, err
	}
	return &ds, nil
}

// adversarial fans the prompts out over a fixed number of shards, so the
// history has the same number of events for 500 prompts as for 500,000.
func (r *release) adversarial(ctx, sctx workflow.Context, cand activities.SandboxRef) error {
	cfg := r.in.Config
	adv := cfg.Suites.Adversarial
	shards := min(adv.Shards, int(max(r.dataset.Rows, 1)))
	r.setStage(ctx, StageAdversarial, StateRunning, fmt.Sprintf("%d prompts in %d shards", r.dataset.Rows, shards))
	// Every shard runs at once, on any worker: each gets 1/shards of the
	// global rate limit and budget, so together they stay within them.
	var limits redteam.Limits
	if rl := adv.RateLimit; rl != nil {
		limits = redteam.Limits{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst, TokensPerSecond: rl.TokensPerSecond}
	}
	var budget redteam.Budget
	if b := adv.Budget; b != nil {
		budget = redteam.Budget{MaxQueries: b.Queries, MaxTokens: b.Tokens}
	}
	futures := map[int]workflow.Future{}
	var order []int
	for i := 0; i < shards; i++ {
		if _, done := r.shards[i]; done {
			continue
		}
		futures[i] = workflow.ExecuteActivity(r.sessionOpts(sctx, fmt.Sprintf("adversarial shard %d/%d", i+1, shards), 2*time.Hour), a.AdversarialShard, activities.ShardInput{
			ReleaseID: r.in.ReleaseID, Sandbox: cand, Dataset: *r.dataset, Shard: i, Shards: shards,
			PartSize: adv.PartSize, Concurrency: adv.Concurrency, MaxTokens: adv.MaxTokens, MaxRetries: adv.MaxRetries,
			Timeout: time.Duration(adv.Timeout), Target: r.target(), Model: cfg.Model.Name,
			Limits: limits.Share(shards), Budget: budget.Share(shards),
		})
		order = append(order, i)
	}
	var firstErr error
	for _, i := range order {
		var res activities.ShardResult
		if err := futures[i].Get(ctx, &res); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("adversarial shard %d: %w", i, err)
			}
			continue
		}
		r.shards[i] = res
		r.setStage(ctx, StageAdversarial, StateRunning, fmt.Sprintf("%d/%d shards done", len(r.shards), shards))
	}
	if firstErr != nil {
		return firstErr
	}
	keys := make([]string, 0, shards)
	tally := redteam.Tally{}
	for i := 0; i < shards; i++ {
		keys = append(keys, r.shards[i].ManifestKey)
		tally.Merge(r.shards[i].Tally)
	}
	var ref activities.ResultsRef
	if err := workflow.ExecuteActivity(r.opts(ctx, "adversarial manifest", 5*time.Minute), a.FinalizeResults, activities.FinalizeInput{
		ReleaseID: r.in.ReleaseID, Stage: activities.StageAdversarial, ShardManifestKeys: keys,
	}).Get(ctx, &ref); err != nil {
		return fmt.Errorf("adversarial manifest: %w", err)
	}
	r.advResults = &ref
	r.advSummary = tally.Summary()
	if err := r.record(ctx, audit.KindStage, StageAdversarial, []string{ref.ManifestKey}, r.advSummary.Overall, "", ""); err != nil {
		return err
	}
	o := r.advSummary.Overall
	done := fmt.Sprintf("%d attempts: %d breached, %d defended, %d errored; ASR %.3f [%.3f, %.3f]",
		ref.Rows, o.Breached, o.Defended, o.Errored, o.ASR, o.Lo, o.Hi)
	r.advTally = tally
	r.advDone = done
	return nil
}

// redTeamSuite follows the static attacks: adaptive attackers, the judge's
// calibration on the pinned set and the regression test against the last
// released version. It runs in its own step so a lost session resumes it.
func (r *release) redTeamSuite(ctx, sctx workflow.Context, cand activities.SandboxRef) error {
	cfg := r.in.Config
	adv := cfg.Suites.Adversarial
	var limits redteam.Limits
	if rl := adv.RateLimit; rl != nil {
		limits = redteam.Limits{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst, TokensPerSecond: rl.TokensPerSecond}
	}
	tally, done := r.advTally, r.advDone
	r.setStage(ctx, StageAdversarial, StateRunning, done+"; adaptive attacks and judge calibration")
	if _, ok := r.suites[activities.SuiteRedTeam]; !ok {
		var res activities.SuiteResult
		if err := workflow.ExecuteActivity(r.sessionOpts(sctx, "adaptive attacks, judge calibration, regression", 2*time.Hour), a.RedTeamSuite, activities.RedTeamInput{
			ReleaseID: r.in.ReleaseID, Sandbox: cand, Dataset: *r.dataset, Target: r.target(), Model: cfg.Model.Name, ModelName: cfg.Model.Name,
			Adaptive: adv.Adaptive, Static: tally, Alpha: adv.RegressionAlpha, Concurrency: adv.Concurrency,
			Timeout: time.Duration(adv.Timeout), MaxTokens: adv.MaxTokens, Limits: limits, Seed: cfg.Seed,
		}).Get(ctx, &res); err != nil {
			return fmt.Errorf("adaptive attacks: %w", err)
		}
		r.suites[activities.SuiteRedTeam] = res
		if err := r.record(ctx, audit.KindStage, StageAdversarial, []string{res.ManifestKey}, map[string]any{"suite": activities.SuiteRedTeam, "metrics": res.Metrics}, "", ""); err != nil {
			return err
		}
	}
	r.setStage(ctx, StageAdversarial, StateDone, done+". "+r.suites[activities.SuiteRedTeam].Section.Summary)
	return nil
}

func (r *release) provision(sctx workflow.Context, role string, m config.Model) (activities.SandboxRef, error) {
	var ref activities.SandboxRef
	err := workflow.ExecuteActivity(r.sessionOpts(sctx, "provision "+role+" sandbox", 5*time.Minute), a.Provision, activities.ProvisionInput{
		ReleaseID: r.in.ReleaseID, Role: role, Model: m,
	}).Get(sctx, &ref)
	if err != nil {
		return ref, fmt.Errorf("provision %s: %w", role, err)
	}
	r.sandboxes = append(r.sandboxes, ref)
	r.evidence[role] = map[string]any{"sandbox_id": ref.SandboxID, "egress_blocked": ref.EgressBlocked, "interfaces": ref.Interfaces, "evidence_key": ref.EvidenceKey,
		"artifact": ref.ArtifactName, "artifact_sha256": ref.ArtifactDigest}
	if role == "candidate" {
		r.artifact = ref
	}
	if err := r.record(sctx, audit.KindStage, StageProvision, []string{ref.EvidenceKey}, r.evidence[role], "", ""); err != nil {
		return ref, err
	}
	return ref, nil
}

// teardown always runs, also after a failure. When the session itself is
// gone, the sandboxes died with their worker (parent-death signal) and there
// is nothing left to stop on a live worker.
func (r *release) teardown(ctx, sctx workflow.Context) {
	if len(r.sandboxes) == 0 {
		return
	}
	if info := workflow.GetSessionInfo(sctx); info != nil && info.SessionState == workflow.SessionStateFailed {
		r.teardownMsg = fmt.Sprintf("session %d lost with its worker; its sandboxes died with it", r.sessions)
		r.setStage(ctx, StageTeardown, StateRunning, r.teardownMsg)
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(sctx)
	r.setStage(ctx, StageTeardown, StateRunning, "stopping and wiping sandboxes")
	var res activities.TeardownResult
	err := workflow.ExecuteActivity(r.sessionOpts(dctx, "teardown", 5*time.Minute), a.Teardown, activities.TeardownInput{
		ReleaseID: r.in.ReleaseID, Sandboxes: r.sandboxes,
	}).Get(dctx, &res)
	if err != nil {
		r.teardownMsg = "teardown failed: " + err.Error()
		r.setStage(ctx, StageTeardown, StateFailed, r.teardownMsg)
		return
	}
	r.teardownMsg = fmt.Sprintf("stopped and wiped %d sandbox(es); wipe verified clean: %v; model files unchanged: %v", len(res.Stopped), len(res.Dirty) == 0, len(res.Poisoned) == 0)
	if len(res.SnapshotKeys) > 0 {
		r.teardownMsg += fmt.Sprintf("; %d failure snapshot(s) under snapshots/", len(res.SnapshotKeys))
	}
	state := StateDone
	if len(res.Dirty) > 0 || len(res.Poisoned) > 0 {
		state = StateFailed
	}
	r.poisoned = append(r.poisoned, res.Poisoned...)
	r.setStage(ctx, StageTeardown, state, r.teardownMsg)
	r.sandboxes = nil
	if err := r.record(ctx, audit.KindTeardown, StageTeardown, append([]string{res.StatsKey}, res.SnapshotKeys...), map[string]any{"stopped": res.Stopped, "missing": res.Missing,
		"dirty": res.Dirty, "model_files_changed": res.Poisoned}, "", ""); err != nil {
		workflow.GetLogger(ctx).Error("audit teardown", "error", err)
	}
}

func (r *release) report(ctx workflow.Context, verdict string) (string, error) {
	r.setStage(ctx, StageReport, StateRunning, "rendering report")
	cfg := r.in.Config
	rep := audit.Report{
		ReleaseID:    r.in.ReleaseID,
		ModelName:    cfg.Model.Name,
		ModelVersion: cfg.Model.Version,
		Verdict:      verdict,
		Adversarial:  r.advSummary,
		Sandbox:      r.sandboxEvidence(),
		Seed:         cfg.Seed,
		Prefix:       r.prefix,
		ConfigSHA256: r.in.ConfigSHA256,
	}
	if cfg.Incumbent != nil {
		rep.IncumbentVersion = cfg.Incumbent.Version
	}
	rep.Gate = r.combinedGate()
	if d := r.decision; d != nil {
		rep.Decision = &audit.Decision{Kind: d.Kind, Actor: d.Actor, Reason: d.Reason, Seq: r.decisionSeq}
	}
	rep.Suites = r.suiteSections()
	if r.shadowSection != nil {
		rep.Suites = append(rep.Suites, *r.shadowSection)
	}
	for _, sec := range rep.Suites {
		res := r.suites[sec.Name]
		rep.Artifacts = append(rep.Artifacts, audit.Artifact{Name: sec.Name + " results", Key: res.ManifestKey, Rows: res.Rows})
	}
	if r.tabular != nil {
		rep.Artifacts = append([]audit.Artifact{{Name: "synthetic profiles", Key: r.tabular.ManifestKey, Rows: r.tabular.Rows}}, rep.Artifacts...)
	}
	if r.privacy != nil {
		rep.Privacy = r.privacy.Summary
		rep.Artifacts = append(rep.Artifacts, audit.Artifact{Name: "privacy results", Key: r.privacy.ManifestKey, Rows: r.privacy.Rows})
	}
	if r.shadow != nil {
		rep.Shadow = r.shadow.Summary
		rep.Artifacts = append(rep.Artifacts, audit.Artifact{Name: "shadow pairs", Key: r.shadow.ManifestKey, Rows: r.shadow.Rows})
	}
	if r.dataset != nil {
		rep.Artifacts = append([]audit.Artifact{{Name: "prompt dataset", Key: r.dataset.ManifestKey, Rows: r.dataset.Rows}}, rep.Artifacts...)
	}
	if r.advResults != nil {
		rep.Artifacts = append(rep.Artifacts, audit.Artifact{Name: "adversarial results", Key: r.advResults.ManifestKey, Rows: r.advResults.Rows})
	}
	now := workflow.Now(ctx)
	for _, s := range r.stages {
		sr := audit.StageReport{Name: s.Name, Status: s.State, Summary: s.Summary}
		if !s.Started.IsZero() {
			end := s.Finished
			if end.IsZero() {
				end = now
			}
			sr.DurationMS = end.Sub(s.Started).Milliseconds()
		}
		rep.Stages = append(rep.Stages, sr)
	}
	var ref activities.ReportRef
	if err := workflow.ExecuteActivity(r.opts(ctx, "report", 5*time.Minute), a.Report, activities.ReportInput{Report: rep}).Get(ctx, &ref); err != nil {
		r.setStage(ctx, StageReport, StateFailed, err.Error())
		return "", fmt.Errorf("report: %w", err)
	}
	r.reportRef = ref
	r.setStage(ctx, StageReport, StateDone, ref.MarkdownKey)
	return ref.MarkdownKey, nil
}

// gateEvidence names the manifests of the rows behind each metric family.
func (r *release) gateEvidence() map[string][]string {
	ev := map[string][]string{}
	if r.advResults != nil {
		ev["adversarial"] = []string{r.advResults.ManifestKey}
	}
	if r.privacy != nil {
		ev["privacy"] = []string{r.privacy.ManifestKey}
	}
	if r.shadow != nil {
		ev["shadow"] = []string{r.shadow.ManifestKey}
	}
	for name, res := range r.suites {
		prefix := name
		switch name {
		case activities.SuiteMembership, activities.SuiteLLMLeak:
			prefix = "privacy"
		case activities.SuiteRedTeam:
			prefix = "adversarial"
		}
		ev[prefix] = append(ev[prefix], res.ManifestKey)
	}
	return ev
}

// sandboxEvidence is the report's view of isolation: egress is blocked only
// if every sandbox of the release showed it.
func (r *release) sandboxEvidence() map[string]any {
	out := map[string]any{}
	blocked := len(r.evidence) > 0
	for _, role := range []string{"candidate", "incumbent"} {
		ev, ok := r.evidence[role].(map[string]any)
		if !ok {
			continue
		}
		out[role] = ev
		if b, _ := ev["egress_blocked"].(bool); !b {
			blocked = false
		}
	}
	out["egress_blocked"] = blocked
	return out
}

// attestRelease signs what the release found and decided, pinned to the
// final audit record's hash.
func (r *release) attestRelease(ctx workflow.Context, verdict string) error {
	cfg := r.in.Config
	in := activities.AttestInput{
		ReleaseID: r.in.ReleaseID, ModelName: cfg.Model.Name, ModelVersion: cfg.Model.Version,
		Verdict: verdict, Gate: r.combinedGate(), ConfigSHA256: r.in.ConfigSHA256,
		ArtifactName: r.artifact.ArtifactName, ArtifactHash: r.artifact.ArtifactDigest,
		ChainHead: r.chainHead, ChainRecords: r.auditSeq,
		Adversarial: r.advSummary, SuiteMetrics: r.suiteMetrics(),
	}
	if d := r.decision; d != nil {
		in.Decisions = []audit.Decision{{Kind: d.Kind, Actor: d.Actor, Reason: d.Reason, Seq: r.decisionSeq}}
	}
	if r.privacy != nil {
		in.Privacy = r.privacy.Summary
	}
	if r.shadow != nil {
		in.Shadow = r.shadow.Summary
	}
	var res activities.AttestResult
	if err := workflow.ExecuteActivity(r.opts(ctx, "attest", 2*time.Minute), a.Attest, in).Get(ctx, &res); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	r.attest = &res
	return nil
}

func (r *release) combinedGate() gate.Verdict {
	var v gate.Verdict
	if r.preGate != nil {
		v = r.preGate.Verdict
	}
	if r.shadowGate != nil {
		v.Rules = append(append([]gate.RuleResult{}, v.Rules...), r.shadowGate.Verdict.Rules...)
		v.Failed = append(append([]string{}, v.Failed...), r.shadowGate.Verdict.Failed...)
		if r.shadowGate.Verdict.Verdict == VerdictBlocked {
			v.Verdict = VerdictBlocked
		}
	}
	return v
}

func (r *release) verdict() (string, []string) {
	v := r.combinedGate()
	if v.Verdict == "" {
		return VerdictBlocked, []string{"no gate verdict"}
	}
	// A model that wrote into its own files while under test is not the
	// model that was tested: the poisoning guard blocks it whatever the policy.
	if len(r.poisoned) > 0 {
		return VerdictBlocked, append(append([]string{}, v.Failed...), "sandbox-model-files-changed")
	}
	return v.Verdict, v.Failed
}

func (r *release) target() redteam.Target {
	cfg := r.in.Config
	return redteam.Target{SystemPrompt: cfg.Model.SystemPrompt, Secrets: cfg.Model.Secrets, Canaries: cfg.Suites.Privacy.Canaries}
}

// sessionLost tells a lost worker (provision again) from a real failure.
func (r *release) sessionLost(err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeSandboxGone {
		return true
	}
	if errors.Is(err, workflow.ErrSessionFailed) {
		return true
	}
	var canceled *temporal.CanceledError
	var timeout *temporal.TimeoutError
	return errors.As(err, &canceled) || errors.As(err, &timeout)
}

func (r *release) opts(ctx workflow.Context, summary string, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    time.Minute,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        8,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

func (r *release) sessionOpts(sctx workflow.Context, summary string, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(sctx, workflow.ActivityOptions{
		StartToCloseTimeout:    startToClose,
		ScheduleToStartTimeout: 2 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		Summary:                summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			// About 90 s of retries: long enough to ride out an object
			// store restart; a lost worker fails the session, not this.
			MaximumAttempts:        8,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput, activities.ErrTypeSandboxGone},
		},
	})
}

func (r *release) setStage(ctx workflow.Context, name, state, summary string) {
	now := workflow.Now(ctx)
	for i := range r.stages {
		s := &r.stages[i]
		if s.Name != name {
			continue
		}
		if state == StateRunning && s.Started.IsZero() {
			s.Started = now
		}
		if state == StateDone || state == StateFailed || state == StateSkipped {
			if s.Started.IsZero() {
				s.Started = now
			}
			s.Finished = now
		}
		s.State, s.Summary = state, summary
	}
	if state == StateRunning {
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrReleaseStage.ValueSet(name))
	}
	workflow.SetCurrentDetails(ctx, r.details(""))
}

func (r *release) failRunning(ctx workflow.Context, err error) {
	for _, s := range r.stages {
		if s.State == StateRunning {
			r.setStage(ctx, s.Name, StateFailed, err.Error())
		}
	}
}

func (r *release) status() Status {
	st := Status{ReleaseID: r.in.ReleaseID, Stages: append([]StageStatus(nil), r.stages...), ShardsDone: len(r.shards), ShardsTotal: r.in.Config.Suites.Adversarial.Shards}
	for _, s := range r.stages {
		if s.State == StateRunning {
			st.Stage = s.Name
		}
	}
	if r.preGate != nil {
		st.Verdict, _ = r.verdict()
	}
	st.Waiting, st.Decision = r.waiting, r.decision
	if r.waiting != "" {
		st.WaitingDeadline = r.waitingDeadline
	}
	return st
}

func (r *release) result(verdict string) ReleaseResult {
	return ReleaseResult{ReleaseID: r.in.ReleaseID, Verdict: verdict, Prefix: r.prefix, Stages: append([]StageStatus(nil), r.stages...)}
}

// details is the Markdown shown in the Web UI's "current details".
func (r *release) details(verdict string) string {
	var b strings.Builder
	cfg := r.in.Config
	fmt.Fprintf(&b, "**%s %s**", cfg.Model.Name, cfg.Model.Version)
	if verdict != "" {
		fmt.Fprintf(&b, " — verdict **%s**", verdict)
	}
	b.WriteString("\n\n| stage | state | summary |\n|---|---|---|\n")
	for _, s := range r.stages {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, s.State, strings.ReplaceAll(s.Summary, "|", "\\|"))
	}
	if r.waiting != "" {
		cmd := "approve"
		if r.waiting == WaitingOverride {
			cmd = "override"
		}
		fmt.Fprintf(&b, "\n**Waiting for %s** until %s: `starter release %s %s --reason \"…\"` (or `reject`).\n",
			r.waiting, r.waitingDeadline.UTC().Format(time.RFC3339), cmd, r.in.ReleaseID)
	}
	if r.decision != nil {
		fmt.Fprintf(&b, "\n**Decision:** %s by %s — %s\n", r.decision.Kind, r.decision.Actor, r.decision.Reason)
	}
	if r.prefix != "" {
		fmt.Fprintf(&b, "\nResults: `%s`\n", r.prefix)
	}
	return b.String()
}

func gateSummary(v gate.Verdict) string {
	if len(v.Failed) == 0 {
		return fmt.Sprintf("%s (%d rules)", v.Verdict, len(v.Rules))
	}
	return fmt.Sprintf("%s: %s", v.Verdict, strings.Join(v.Failed, ", "))
}
