package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/sandgate/sandgate/workflows"
)

// newDecisionCmds are `release approve|reject|override ID --reason …`: the
// human in the loop, sent as Updates so a refused decision fails here.
func newDecisionCmds(env Env) []*cobra.Command {
	specs := []struct{ name, short string }{
		{workflows.UpdateApprove, "Approve a release that passed its gates and waits for approval"},
		{workflows.UpdateReject, "Reject a waiting release (--reason required)"},
		{workflows.UpdateOverride, "Release despite a blocking gate (--reason required; recorded with your identity)"},
	}
	var cmds []*cobra.Command
	for _, s := range specs {
		var reason, actor string
		cmd := &cobra.Command{
			Use:   s.name + " ID --reason TEXT",
			Short: s.short,
			Args:  cobra.ExactArgs(1),
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
				h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
					WorkflowID:   args[0],
					UpdateName:   s.name,
					Args:         []any{workflows.Decision{Actor: actor, Reason: reason}},
					WaitForStage: client.WorkflowUpdateStageCompleted,
				})
				if err != nil {
					return withCode(ExitBadInput, fmt.Errorf("%s %s: %w", s.name, args[0], err))
				}
				var rec workflows.DecisionRecord
				if err := h.Get(ctx, &rec); err != nil {
					return withCode(ExitBadInput, fmt.Errorf("%s %s: %w", s.name, args[0], err))
				}
				fmt.Fprintf(env.Stdout, "%s of %s recorded: by %s at %s; reason: %s\n", rec.Kind, args[0], rec.Actor, rec.At.UTC().Format("2006-01-02T15:04:05Z"), orNone(rec.Reason))
				return nil
			},
		}
		cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail and the attestation)")
		cmd.Flags().StringVar(&actor, "actor", "", "who decides (default user@host)")
		cmds = append(cmds, cmd)
	}
	return cmds
}

// defaultActor is user@host, the identity Temporal's own CLI reports.
func defaultActor(env Env) string {
	user := env.Getenv("SUDO_USER")
	if user == "" {
		user = env.Getenv("USER")
	}
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return strings.TrimSpace(user) + "@" + host
}
