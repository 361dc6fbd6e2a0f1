package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/workflows"
)

func newScheduleCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Re-run a release on a Temporal Schedule (continuous governance of a model in production)",
		Long: `A schedule re-runs a release config, e.g. every night, against the model already
in production. Each run is a normal release with an id of its own (the config's
release id plus the run's time); its gate compares against the model's last
RELEASED release, so from the second run on it reports its change against the
previous passing run (gate evidence: baseline_release). A regression past the
policy blocks the release and fails the run (search attribute GateVerdict=BLOCKED).`,
	}
	var file, id, taskQueue, cron string
	var every time.Duration
	var trigger bool
	create := &cobra.Command{
		Use:   "create -f CONFIG (--every DURATION | --cron \"MIN HOUR DOM MON DOW\") [--id ID]",
		Short: "Create a schedule that runs the release config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := app.ScheduleSpec{Every: every, Cron: cron}
			if err := spec.Validate(); err != nil {
				return withCode(ExitBadInput, err)
			}
			in, locals, err := loadRelease(file)
			if err != nil {
				return err
			}
			if len(locals) > 0 {
				// Every run reads the same uploaded inputs.
				store, err := objstore.New(cmd.Context(), objstore.ConfigFromEnv())
				if err != nil {
					return err
				}
				if err := uploadInputs(cmd.Context(), store, locals); err != nil {
					return err
				}
			}
			if id == "" {
				id = "schedule-" + strings.TrimPrefix(in.ReleaseID, "release-")
			}
			opts, err := app.ReleaseScheduleOptions(id, spec, taskQueue, in)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			ctx := cmd.Context()
			c, err := dialScheduleEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			h, err := c.ScheduleClient().Create(ctx, opts)
			if err != nil {
				if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
					return withCode(ExitBadInput, fmt.Errorf("--id %s: a schedule with this id exists; delete it first (starter schedule delete %s) or pick another id", id, id))
				}
				return fmt.Errorf("create schedule %s: %w", id, err)
			}
			if trigger {
				if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
					return fmt.Errorf("trigger schedule %s: %w", id, err)
				}
			}
			fmt.Fprintf(env.Stdout, "schedule %s created: %s, release config %s (%s %s)\n", id, specString(spec), file, in.Config.Model.Name, in.Config.Model.Version)
			return nil
		},
	}
	f := create.Flags()
	f.StringVarP(&file, "file", "f", "", "release config (YAML)")
	f.StringVar(&id, "id", "", "schedule id (default schedule-<release id without release->)")
	f.DurationVar(&every, "every", 0, "run at this interval, e.g. 24h (at least 1s)")
	f.StringVar(&cron, "cron", "", "run at these times instead, a cron expression in UTC, e.g. \"0 2 * * *\"")
	f.StringVar(&taskQueue, "task-queue", workflows.TaskQueue, "task queue the workers poll")
	f.BoolVar(&trigger, "trigger", false, "also start one run now")
	_ = create.MarkFlagRequired("file")

	list := &cobra.Command{
		Use:   "list",
		Short: "List schedules: id, spec, next run, last result",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := dialScheduleEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := ListSchedules(ctx, c)
			if err != nil {
				return err
			}
			PrintSchedules(env.Stdout, rows)
			return nil
		},
	}

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a schedule (running releases go on; finished ones stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := dialScheduleEnv(ctx, env)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.ScheduleClient().GetHandle(ctx, args[0]).Delete(ctx); err != nil {
				var nf *serviceerror.NotFound
				if errors.As(err, &nf) {
					return withCode(ExitBadInput, fmt.Errorf("schedule %s: no such schedule (starter schedule list)", args[0]))
				}
				return fmt.Errorf("delete schedule %s: %w", args[0], err)
			}
			fmt.Fprintf(env.Stdout, "schedule %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// dialScheduleEnv connects with the SDKs' standard environment (address,
// namespace, API key, mTLS) and the payload keys, as the worker does.
func dialScheduleEnv(ctx context.Context, env Env) (client.Client, error) {
	tc, err := app.LoadTemporalEnv(env.Getenv, nil)
	if err != nil {
		return nil, withCode(ExitBadInput, err)
	}
	pc, err := codec.Load("", env.Getenv)
	if err != nil {
		return nil, withCode(ExitBadInput, err)
	}
	if pc != nil {
		tc.Codec = pc
	}
	return app.Dial(ctx, tc, env.Logger)
}

// ScheduleRow is one line of `schedule list`.
type ScheduleRow struct {
	ID      string
	Spec    string
	NextRun time.Time
	Last    app.RunOutcome
	Paused  bool
}

// ListSchedules reads every schedule of the namespace with the outcome of
// its newest run. Listing goes through visibility, so a schedule created a
// moment ago may be missing for a second.
func ListSchedules(ctx context.Context, c client.Client) ([]ScheduleRow, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var rows []ScheduleRow
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		r := ScheduleRow{ID: e.ID, Spec: sdkSpecString(e.Spec), Paused: e.Paused}
		if len(e.NextActionTimes) > 0 {
			r.NextRun = e.NextActionTimes[0]
		}
		// The list entry's recent actions can lag; the description is current.
		recent := e.RecentActions
		if d, err := c.ScheduleClient().GetHandle(ctx, e.ID).Describe(ctx); err == nil {
			recent = d.Info.RecentActions
			if len(d.Info.NextActionTimes) > 0 {
				r.NextRun = d.Info.NextActionTimes[0]
			}
		}
		if r.Last, err = app.LastRun(ctx, c, recent); err != nil {
			// One unreadable run must not hide the other schedules.
			r.Last = app.RunOutcome{WorkflowID: "?", Status: "unknown (" + err.Error() + ")"}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// PrintSchedules writes the rows as a table.
func PrintSchedules(out io.Writer, rows []ScheduleRow) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSPEC\tNEXT RUN\tLAST RESULT")
	for _, r := range rows {
		next := "-"
		if !r.NextRun.IsZero() {
			next = r.NextRun.UTC().Format(time.RFC3339)
		}
		if r.Paused {
			next = "paused"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Spec, next, r.Last)
	}
	_ = tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(out, "(no schedules)")
	}
}

func specString(s app.ScheduleSpec) string {
	if s.Every > 0 {
		return "every " + s.Every.String()
	}
	return "cron " + s.Cron
}

// sdkSpecString renders a schedule's spec as the server returns it: cron
// expressions come back as calendars.
func sdkSpecString(s *client.ScheduleSpec) string {
	if s == nil {
		return "-"
	}
	var parts []string
	for _, iv := range s.Intervals {
		parts = append(parts, "every "+iv.Every.String())
	}
	for _, c := range s.CronExpressions {
		parts = append(parts, "cron "+c)
	}
	for _, c := range s.Calendars {
		parts = append(parts, "cron "+strings.Join([]string{ranges(c.Minute, 0, 59), ranges(c.Hour, 0, 23), ranges(c.DayOfMonth, 1, 31), ranges(c.Month, 1, 12), ranges(c.DayOfWeek, 0, 6)}, " "))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// ranges renders one calendar field; the field's full range is "*".
func ranges(rs []client.ScheduleRange, lo, hi int) string {
	if len(rs) == 0 || len(rs) == 1 && rs[0].Start == lo && rs[0].End == hi && rs[0].Step <= 1 {
		return "*"
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s := strconv.Itoa(r.Start)
		if r.End > r.Start {
			s += "-" + strconv.Itoa(r.End)
		}
		if r.Step > 1 {
			s += "/" + strconv.Itoa(r.Step)
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
