package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/sandgate/sandgate/workflows"
)

// newEndShadowCmd is `release end-shadow ID --reason … [--outcome …]`: a
// human ends a long shadow analysis early, on the record.
func newEndShadowCmd(env Env) *cobra.Command {
	var reason, actor, outcome string
	cmd := &cobra.Command{
		Use:   "end-shadow ID --reason TEXT [--outcome Successful|Failed|Inconclusive]",
		Short: "End a release's shadow analysis windows early (recorded with your identity)",
		Long: `end-shadow sends the end-shadow Update to the release's shadow phase
(workflow ID <release id>-shadow). The phase stops after the window in flight
and ends with --outcome (default Inconclusive, which blocks the release unless
someone overrides it). The reason and your identity go into the audit trail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if actor == "" {
				actor = defaultActor(env)
			}
			c, err := dialEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.ShadowPhaseID(args[0])
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: id, UpdateName: workflows.UpdateEndShadow,
				Args:         []any{workflows.EndShadowRequest{Actor: actor, Reason: reason, Outcome: outcome}},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err != nil {
				return withCode(ExitBadInput, fmt.Errorf("end-shadow %s: %w", args[0], err))
			}
			var end workflows.ShadowPhaseEnd
			if err := h.Get(ctx, &end); err != nil {
				return withCode(ExitBadInput, fmt.Errorf("end-shadow %s: %w", args[0], err))
			}
			fmt.Fprintf(env.Stdout, "shadow phase of %s ends %s after window %d: by %s; reason: %s\n", args[0], end.Outcome, end.Window, end.Actor, end.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	cmd.Flags().StringVar(&actor, "actor", "", "who decides (default user@host)")
	cmd.Flags().StringVar(&outcome, "outcome", "", "Successful, Failed or Inconclusive (default Inconclusive)")
	return cmd
}
