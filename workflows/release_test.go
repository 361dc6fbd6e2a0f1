package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/redteam"
)

// These tests run the workflow logic against mocked activities (the
// testsuite); e2e/ runs it against the real server, sandbox and S3.

func testInput() ReleaseInput {
	maxASR := 0.1
	cfg := config.Release{
		APIVersion: config.APIVersion, Kind: "Release", Seed: 1,
		Model:  config.Model{Name: "m", Version: "1", Sandbox: config.Sandbox{Command: []string{"x"}, Port: 1}},
		Suites: config.Suites{Adversarial: config.Adversarial{Prompts: 100}},
		Gate:   gate.Policy{Rules: []gate.Rule{{Name: "asr", Metric: gate.MetricASR, Max: &maxASR}}},
	}
	cfg.Defaults()
	return ReleaseInput{ReleaseID: "release-m-1-abcdef12", Config: cfg, ConfigSHA256: "abcdef12"}
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{EnableSessionWorker: true})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.Prepare, mock.Anything, mock.Anything).Return(activities.PrepareResult{ConfigKey: "k", Prefix: "s3://b/p/"}, nil)
	env.OnActivity(a.AppendAudit, mock.Anything, mock.Anything).Return(activities.AuditRef{Hash: "h"}, nil)
	env.OnActivity(a.FindDataset, mock.Anything, mock.Anything).Return(activities.DatasetRef{ManifestKey: "dm", Rows: 100, Reused: true}, nil)
	env.OnActivity(a.FinalizeResults, mock.Anything, mock.Anything).Return(activities.ResultsRef{ManifestKey: "rm", Rows: 100}, nil)
	env.OnActivity(a.PrivacyScan, mock.Anything, mock.Anything).Return(activities.PrivacyResult{ManifestKey: "pm"}, nil)
	env.OnActivity(a.Teardown, mock.Anything, mock.Anything).Return(activities.TeardownResult{}, nil)
	env.OnActivity(a.Report, mock.Anything, mock.Anything).Return(activities.ReportRef{MarkdownKey: "r.md"}, nil)
	env.OnActivity(a.Attest, mock.Anything, mock.Anything).Return(activities.AttestResult{}, nil)
	env.OnActivity(a.Provision, mock.Anything, mock.Anything).Return(activities.SandboxRef{SandboxID: "sb", EgressBlocked: true}, nil)
	env.OnActivity(a.RedTeamSuite, mock.Anything, mock.Anything).Return(activities.SuiteResult{Suite: activities.SuiteRedTeam, ManifestKey: "am", Metrics: map[string]float64{"adversarial.judge.precision": 1}}, nil)
	return env
}

func shardResult(breached, defended int) func(activities.ShardInput) (activities.ShardResult, error) {
	return func(in activities.ShardInput) (activities.ShardResult, error) {
		var t redteam.Tally
		for i := 0; i < breached; i++ {
			t.Add(redteam.AttemptRow{Outcome: redteam.Breached, Category: "LLM01"})
		}
		for i := 0; i < defended; i++ {
			t.Add(redteam.AttemptRow{Outcome: redteam.Defended, Category: "LLM01"})
		}
		return activities.ShardResult{Shard: in.Shard, Rows: int64(breached + defended), ManifestKey: "sm", Tally: t}, nil
	}
}

func gateFromPolicy(in activities.GateInput) (activities.GateResult, error) {
	v := gate.Evaluate(in.Policy.ForPhase(in.Phase), gate.MetricsFrom(in.Adversarial, in.Privacy, in.Shadow))
	return activities.GateResult{Verdict: v, EvidenceKey: "g"}, nil
}

func TestBlockedReleaseEndsNormallyWithFailingRulesNamed(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.AdversarialShard, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ShardInput) (activities.ShardResult, error) {
			return shardResult(10, 15)(in)
		})
	env.OnActivity(a.Gate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GateInput) (activities.GateResult, error) {
			return gateFromPolicy(in)
		})
	env.ExecuteWorkflow(ReleaseWorkflow, testInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res ReleaseResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictBlocked || len(res.FailedRules) != 1 || res.FailedRules[0] != "asr" {
		t.Fatalf("verdict %s failed %v, want BLOCKED by asr", res.Verdict, res.FailedRules)
	}
}

func TestLostSandboxIsProvisionedAgainAndDoneShardsAreKept(t *testing.T) {
	env := newEnv(t)
	calls := map[int]int{}
	env.OnActivity(a.AdversarialShard, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ShardInput) (activities.ShardResult, error) {
			calls[in.Shard]++
			if in.Shard == 2 && calls[2] == 1 {
				return activities.ShardResult{}, temporal.NewNonRetryableApplicationError("gone", activities.ErrTypeSandboxGone, nil)
			}
			return shardResult(0, 25)(in)
		})
	env.OnActivity(a.Gate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GateInput) (activities.GateResult, error) {
			return gateFromPolicy(in)
		})
	env.SetTestTimeout(time.Minute)
	env.ExecuteWorkflow(ReleaseWorkflow, testInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res ReleaseResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Verdict != VerdictReleased {
		t.Fatalf("verdict %s (%v)", res.Verdict, res.FailedRules)
	}
	for shard, n := range calls {
		want := 1
		if shard == 2 {
			want = 2
		}
		if n != want {
			t.Errorf("shard %d ran %d times, want %d (finished shards are not re-run)", shard, n, want)
		}
	}
}
