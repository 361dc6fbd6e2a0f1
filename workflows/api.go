// Package workflows holds the release workflow. It only orchestrates: every
// piece of work is an activity, and only references (S3 keys, digests,
// counts, small summaries) pass through its history.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/config"
)

// TaskQueue is the default task queue of release workers.
const TaskQueue = "sandgate-release"

// QueryStatus returns a Status.
const QueryStatus = "status"

// Stage names, in order, as shown in the status query and the UI.
const (
	StageProvision   = "provision"
	StageGenerate    = "generate"
	StageAdversarial = "adversarial"
	StagePrivacy     = "privacy"
	StageGate        = "gate"
	StageShadow      = "shadow"
	StageReport      = "report"
	StageTeardown    = "teardown"
)

// Stages lists every stage in the order a release runs them.
var Stages = []string{StageProvision, StageGenerate, StageAdversarial, StagePrivacy, StageGate, StageShadow, StageReport, StageTeardown}

// Verdicts.
const (
	VerdictReleased = "RELEASED"
	VerdictBlocked  = "BLOCKED"
)

// Search attributes (registered by devstack and by the compose setup).
var (
	AttrModelName    = temporal.NewSearchAttributeKeyKeyword("ModelName")
	AttrModelVersion = temporal.NewSearchAttributeKeyKeyword("ModelVersion")
	AttrReleaseStage = temporal.NewSearchAttributeKeyKeyword("ReleaseStage")
	AttrGateVerdict  = temporal.NewSearchAttributeKeyKeyword("GateVerdict")
)

// ReleaseInput starts a release.
type ReleaseInput struct {
	ReleaseID    string
	Config       config.Release
	ConfigSHA256 string
}

// ReleaseResult is the outcome of a release.
type ReleaseResult struct {
	ReleaseID   string
	Verdict     string
	FailedRules []string
	Prefix      string // s3://bucket/releases/<id>/
	ReportKey   string
	Stages      []StageStatus
}

// Stage states.
const (
	StatePending = "pending"
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
	StateSkipped = "skipped"
)

// StageStatus is one row of the status query.
type StageStatus struct {
	Name     string
	State    string
	Summary  string
	Started  time.Time
	Finished time.Time
}

// Status is what the status query returns.
type Status struct {
	ReleaseID string
	Stage     string
	Verdict   string
	Stages    []StageStatus
	// Adversarial progress: shards finished of total.
	ShardsDone  int
	ShardsTotal int
}
