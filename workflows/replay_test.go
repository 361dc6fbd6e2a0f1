package workflows

import (
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedRelease replays a history recorded from a real release on
// the embedded server (see e2e TestHistoryDoesNotGrowWithPrompts with
// SANDGATE_RECORD_HISTORY). A change to ReleaseWorkflow that would break
// releases already running fails here.
func TestReplayRecordedRelease(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(ReleaseWorkflow)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/release-history.json"); err != nil {
		t.Fatalf("replay: %v", err)
	}
}
