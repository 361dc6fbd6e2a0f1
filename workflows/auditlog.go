package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/audit"
)

// record appends one entry to the release's hash-chained audit log. The
// sequence number is the workflow's own counter, so a retried append writes
// the same record again instead of a second one.
func (r *release) record(ctx workflow.Context, kind, stage string, keys []string, summary any, actor, reason string) error {
	r.auditSeq++
	rec := audit.Record{
		Seq: r.auditSeq, ReleaseID: r.in.ReleaseID, Kind: kind, Stage: stage,
		Time: workflow.Now(ctx), Actor: actor, Reason: reason,
	}
	if summary != nil {
		b, err := json.Marshal(summary)
		if err != nil {
			return fmt.Errorf("audit %s: encode summary: %w", stage, err)
		}
		rec.Summary = b
	}
	var ref activities.AuditRef
	if err := workflow.ExecuteActivity(r.opts(ctx, "audit: "+kind+" "+stage, 5*time.Minute), a.AppendAudit, activities.AuditInput{
		Record: rec, Keys: keys,
	}).Get(ctx, &ref); err != nil {
		return fmt.Errorf("audit %s %s: %w", kind, stage, err)
	}
	r.chainHead = ref.Hash
	return nil
}

// decisionKind maps an Update name to the audit record kind.
func decisionKind(update string) string {
	switch update {
	case UpdateApprove:
		return audit.KindApproval
	case UpdateOverride:
		return audit.KindOverride
	}
	return audit.KindRejection
}
