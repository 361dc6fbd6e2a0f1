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
	StageStress      = "stress"
	StageGenerate    = "generate"
	StageAdversarial = "adversarial"
	StagePrivacy     = "privacy"
	StageGate        = "gate"
	StageShadow      = "shadow"
	StageReport      = "report"
	StageTeardown    = "teardown"
)

// Stages lists every stage in the order a release runs them.
var Stages = []string{StageProvision, StageStress, StageGenerate, StageAdversarial, StagePrivacy, StageGate, StageShadow, StageReport, StageTeardown}

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
	Decision    *DecisionRecord // the human decision, if any
	// AuditHead is the hash of the final audit record; AttestationKey the
	// signed statement ("" when the worker has no signing key).
	AuditHead      string
	AttestationKey string
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
	// Waiting is set while the release waits for a human (approval or override).
	Waiting         string
	WaitingDeadline time.Time
	Decision        *DecisionRecord
}

// Human decisions are Updates, so the caller learns at once whether the
// decision was accepted (validators refuse one the release cannot take).
const (
	UpdateApprove  = "approve"
	UpdateReject   = "reject"
	UpdateOverride = "override"
)

// Decision is a human's decision on a waiting release.
type Decision struct {
	Actor  string // who decides; the CLI fills in user@host
	Reason string // required to override a blocking gate and to reject
}

// DecisionRecord is a decision as the release recorded it.
type DecisionRecord struct {
	Kind   string // approve, reject, override
	Actor  string
	Reason string
	At     time.Time
}

// Waiting states of a release.
const (
	WaitingApproval = "approval"
	WaitingOverride = "override"
)
