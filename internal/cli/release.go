package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/activities"
	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/workflows"
)

func newReleaseCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Start and inspect releases on a Temporal cluster (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)"}
	var file, taskQueue string
	var wait bool
	start := &cobra.Command{
		Use:   "start -f CONFIG",
		Short: "Start a release (a second start of the same config attaches to it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			in, locals, err := loadRelease(file)
			if err != nil {
				return err
			}
			if len(locals) > 0 {
				store, err := objstore.New(ctx, objstore.ConfigFromEnv())
				if err != nil {
					return err
				}
				if err := uploadInputs(ctx, store, locals); err != nil {
					return err
				}
			}
			c, err := dialEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := startRelease(ctx, c, taskQueue, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "release %s started (run %s)\n", in.ReleaseID, run.GetRunID())
			if !wait {
				return nil
			}
			res, err := follow(ctx, c, run, env.Stdout)
			if err != nil {
				return err
			}
			return printResult(env.Stdout, res, "", "")
		},
	}
	start.Flags().StringVarP(&file, "file", "f", "", "release config (YAML)")
	start.Flags().StringVar(&taskQueue, "task-queue", workflows.TaskQueue, "task queue the workers poll")
	start.Flags().BoolVar(&wait, "wait", false, "follow progress and exit with the verdict's code")
	_ = start.MarkFlagRequired("file")

	status := &cobra.Command{
		Use:   "status ID",
		Short: "Show the progress of each stage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := dialEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			desc, err := c.DescribeWorkflowExecution(ctx, args[0], "")
			if err != nil {
				return fmt.Errorf("release %s: %w", args[0], err)
			}
			// A query on a closed workflow needs a worker to replay it; the
			// result already holds every stage, so read that instead.
			if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				var res workflows.ReleaseResult
				if err := c.GetWorkflow(ctx, args[0], "").Get(ctx, &res); err != nil {
					return fmt.Errorf("release %s: %w", args[0], err)
				}
				printStatus(env.Stdout, workflows.Status{ReleaseID: res.ReleaseID, Verdict: res.Verdict, Stages: res.Stages, Decision: res.Decision})
				return nil
			}
			st, err := queryStatus(ctx, c, args[0])
			if err != nil {
				return err
			}
			printStatus(env.Stdout, st)
			return nil
		},
	}

	var format string
	report := &cobra.Command{
		Use:   "report ID [--format md|html|json]",
		Short: "Print the release report from S3 (Markdown, self-contained HTML or JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := dialEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			var res workflows.ReleaseResult
			if err := c.GetWorkflow(ctx, args[0], "").Get(ctx, &res); err != nil {
				return fmt.Errorf("release %s: %w", args[0], err)
			}
			if res.ReportKey == "" {
				return fmt.Errorf("release %s has no report", args[0])
			}
			key := res.ReportKey
			switch format {
			case "md", "markdown":
			case "html", "json":
				key = strings.TrimSuffix(key, ".md") + "." + format
			default:
				return withCode(ExitBadInput, fmt.Errorf("--format %q: use md, html or json", format))
			}
			store, err := objstore.New(ctx, objstore.ConfigFromEnv())
			if err != nil {
				return fmt.Errorf("connect to S3: %w", err)
			}
			b, err := store.Get(ctx, key)
			if err != nil {
				return fmt.Errorf("read report: %w", err)
			}
			_, err = env.Stdout.Write(b)
			return err
		},
	}
	report.Flags().StringVar(&format, "format", "md", "md, html or json")
	cmd.AddCommand(start, status, report)
	cmd.AddCommand(newDecisionCmds(env)...)
	cmd.AddCommand(newEndShadowCmd(env))
	cmd.AddCommand(newVerifyCmd(env))
	return cmd
}

// temporalFromEnv reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the
// payload encryption keys (codec.EnvKeys; unset means no encryption, as
// the worker does without keys). Unusable keys are bad input.
func temporalFromEnv(env Env) (app.TemporalConfig, error) {
	// The SDK's standard variables: address, namespace, API key, mTLS.
	tc, err := app.LoadTemporalEnv(env.Getenv, nil)
	if err != nil {
		return tc, withCode(ExitBadInput, err)
	}
	pc, err := codec.Load("", env.Getenv)
	if err != nil {
		return tc, withCode(ExitBadInput, err)
	}
	// Assigned only when set: a nil *Codec in the interface would not be nil.
	if pc != nil {
		tc.Codec = pc
	}
	return tc, nil
}

// dialEnv connects to the cluster the environment names.
func dialEnv(ctx context.Context, env Env) (client.Client, error) {
	tc, err := temporalFromEnv(env)
	if err != nil {
		return nil, err
	}
	return app.Dial(ctx, tc, env.Logger)
}

// loadRelease reads and validates the config; any problem is bad input.
func loadRelease(path string) (workflows.ReleaseInput, []localInput, error) {
	cfg, raw, err := config.Load(path)
	if err != nil {
		return workflows.ReleaseInput{}, nil, withCode(ExitBadInput, err)
	}
	digest := config.Digest(raw)
	in := workflows.ReleaseInput{ReleaseID: cfg.ReleaseID(digest), Config: *cfg, ConfigSHA256: digest}
	locals, err := resolveLocalInputs(path, &in)
	if err != nil {
		return in, nil, withCode(ExitBadInput, fmt.Errorf("%s: %w", path, err))
	}
	return in, locals, nil
}

// startRelease starts the release workflow, or attaches to the one already
// running (or finished) for the same config: the workflow ID is the release ID.
func startRelease(ctx context.Context, c client.Client, taskQueue string, in workflows.ReleaseInput) (client.WorkflowRun, error) {
	cfg := in.Config
	summary := fmt.Sprintf("Release %s %s", cfg.Model.Name, cfg.Model.Version)
	if cfg.Incumbent != nil {
		summary += " vs " + cfg.Incumbent.Version
	}
	opts := client.StartWorkflowOptions{
		ID:                       in.ReleaseID,
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            summary,
		StaticDetails:            staticDetails(in),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrModelName.ValueSet(cfg.Model.Name),
			workflows.AttrModelVersion.ValueSet(cfg.Model.Version),
			workflows.AttrReleaseStage.ValueSet("queued"),
		),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.ReleaseWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return c.GetWorkflow(ctx, in.ReleaseID, ""), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start release %s: %w", in.ReleaseID, err)
	}
	return run, nil
}

// follow prints each stage change until the release ends.
func follow(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer) (workflows.ReleaseResult, error) {
	done := make(chan error, 1)
	var res workflows.ReleaseResult
	go func() { done <- run.Get(ctx, &res) }()
	seen := map[string]string{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			printChanges(out, res.Stages, seen)
			if err != nil {
				return res, classify(err)
			}
			return res, nil
		case <-tick.C:
			st, err := queryStatus(ctx, c, run.GetID())
			if err == nil {
				printChanges(out, st.Stages, seen)
				if st.Waiting != "" && seen["waiting"] != st.Waiting {
					seen["waiting"] = st.Waiting
					cmd := "approve"
					if st.Waiting == workflows.WaitingOverride {
						cmd = "override"
					}
					fmt.Fprintf(out, "  waiting for %s until %s: starter release %s %s --reason \"…\" (or reject)\n",
						st.Waiting, st.WaitingDeadline.UTC().Format(time.RFC3339), cmd, run.GetID())
				}
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
}

// classify maps a failed release to an exit code: bad input is 2.
func classify(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeBadInput {
		return withCode(ExitBadInput, err)
	}
	return withCode(ExitError, err)
}

func printChanges(out io.Writer, stages []workflows.StageStatus, seen map[string]string) {
	for _, s := range stages {
		key := s.State + "|" + s.Summary
		if s.State == workflows.StatePending || seen[s.Name] == key {
			continue
		}
		seen[s.Name] = key
		fmt.Fprintf(out, "  %-12s %-8s %s\n", s.Name, s.State, s.Summary)
	}
}

func queryStatus(ctx context.Context, c client.Client, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		return st, fmt.Errorf("query release %s: %w", id, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}

func printStatus(out io.Writer, st workflows.Status) {
	fmt.Fprintf(out, "release %s", st.ReleaseID)
	if st.Verdict != "" {
		fmt.Fprintf(out, " — verdict %s", st.Verdict)
	}
	fmt.Fprintln(out)
	for _, s := range st.Stages {
		fmt.Fprintf(out, "  %-12s %-8s %s\n", s.Name, s.State, s.Summary)
	}
}

// printResult prints the verdict and where to look, and returns the error
// that carries the exit code (nil when released).
func printResult(out io.Writer, res workflows.ReleaseResult, uiURL, namespace string) error {
	fmt.Fprintf(out, "\nverdict: %s\n", res.Verdict)
	if len(res.FailedRules) > 0 {
		fmt.Fprintf(out, "failed gates: %s\n", strings.Join(res.FailedRules, ", "))
	}
	if d := res.Decision; d != nil {
		fmt.Fprintf(out, "decision: %s by %s: %s\n", d.Kind, d.Actor, d.Reason)
	}
	if uiURL != "" {
		fmt.Fprintf(out, "web UI:  %s/namespaces/%s/workflows/%s\n", uiURL, namespace, res.ReleaseID)
	}
	if res.Prefix != "" {
		fmt.Fprintf(out, "results: %s\n", res.Prefix)
	}
	if res.ReportKey != "" {
		fmt.Fprintf(out, "report:  %s (also .html, .json)\n", res.ReportKey)
	}
	if res.AuditHead != "" {
		fmt.Fprintf(out, "audit:   chain head %s (starter release verify %s)\n", res.AuditHead, res.ReleaseID)
	}
	if res.AttestationKey != "" {
		fmt.Fprintf(out, "attest:  %s\n", res.AttestationKey)
	}
	if res.Verdict == workflows.VerdictBlocked {
		return withCode(ExitBlocked, fmt.Errorf("release %s blocked by: %s", res.ReleaseID, strings.Join(res.FailedRules, ", ")))
	}
	return nil
}

// staticDetails is the release's fixed description in the Web UI.
func staticDetails(in workflows.ReleaseInput) string {
	cfg := in.Config
	what := fmt.Sprintf("%d adversarial prompts in %d shards", cfg.Suites.Adversarial.Prompts, cfg.Suites.Adversarial.Shards)
	if cfg.Model.Type != "" && cfg.Model.Type != config.TypeChat {
		var suites []string
		if cfg.Suites.Fairness != nil {
			suites = append(suites, "fairness")
		}
		if cfg.Suites.Robustness != nil {
			suites = append(suites, "robustness")
		}
		if cfg.Suites.Membership != nil {
			suites = append(suites, "membership inference")
		}
		what = cfg.Model.Type + " over OIP v2; suites: " + strings.Join(suites, ", ")
	}
	return fmt.Sprintf("Candidate **%s %s**, seed %d, %s.\n\nConfig sha256 `%s`.", cfg.Model.Name, cfg.Model.Version, cfg.Seed, what, in.ConfigSHA256)
}
