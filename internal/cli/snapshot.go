package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
)

// Exit statuses of `starter snapshot replay`.
const (
	exitReplayReproduced    = 0 // the model failed again
	exitReplayNotReproduced = 1 // every replayed exchange went through and the model lived
)

// maxSnapshotBytes bounds what show and replay unpack or download.
const maxSnapshotBytes = 1 << 30

// newSnapshotCmd is `starter snapshot`: the forensic snapshots a sandbox
// writes when its model fails.
func newSnapshotCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Inspect and replay sandbox snapshots",
	}
	cmd.AddCommand(newSnapshotShowCmd(env), newSnapshotReplayCmd(env))
	return cmd
}

func newSnapshotShowCmd(env Env) *cobra.Command {
	var last int
	cmd := &cobra.Command{
		Use:   "show DIR|FILE.tar.gz|s3://bucket/prefix",
		Short: "Print a snapshot's manifest, reason and last exchanges",
		Long: `show prints what a sandbox snapshot holds: why it was taken, whether the model
was frozen (with the cgroup's freezer state and CPU time), how it ended, its
resource use, the CRIU status and the last exchanges of the relay transcript.

The snapshot is a directory, a .tar.gz of one, or an S3 location: a prefix holding
the snapshot's files or the key of its .tar.gz (credentials and endpoint from the
usual AWS_* variables). Every file is checked against the manifest's sha256.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if last < 0 {
				return withCode(ExitBadInput, fmt.Errorf("--last %d: must be 0 or more", last))
			}
			dir, cleanup, err := fetchSnapshot(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			d, err := sandbox.LoadSnapshot(dir)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			return printSnapshot(env.Stdout, d, last)
		},
	}
	cmd.Flags().IntVar(&last, "last", 5, "how many of the last exchanges to print")
	return cmd
}

func printSnapshot(w io.Writer, d sandbox.SnapshotData, last int) error {
	m := d.Manifest
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("sandbox", "%s (%s)", m.SandboxID, m.Name)
	row("reason", "%s", m.Reason)
	row("taken", "%s", m.Time.Format(time.RFC3339))
	row("command", "%s", strings.Join(d.Config.Spec.Command, " "))
	if m.Running {
		if f := m.Freeze; f != nil {
			row("freeze", "%s, CPU %s -> %s over %s (frozen: %v)", f.State, f.CPUBefore, f.CPUAfter, f.Window, f.Frozen)
		} else {
			row("freeze", "not frozen (see errors)")
		}
	} else {
		row("freeze", "model had already exited")
	}
	st := m.Stats
	end := fmt.Sprintf("exit code %d", st.ExitCode)
	if st.Running {
		end = "still running"
	} else if st.KilledBy != "" {
		end = fmt.Sprintf("killed (%s, %s)", st.KilledBy, st.Signal)
	}
	row("model", "%s", end)
	row("memory peak", "%d MiB, oom kills %d, pids limit hits %d", st.MemoryPeakBytes>>20, st.OOMKills, st.PidsLimitHits)
	row("relay", "%d forwarded, %d refused, %d errors, %d tokens, %d B in, %d B out", st.Relay.Requests, st.Relay.Rejected, st.Relay.Errors, st.Relay.Tokens, st.Relay.BytesIn, st.Relay.BytesOut)
	row("writable", "%d files, %d bytes (truncated: %v) %s", m.Writable.Files, m.Writable.Bytes, m.Writable.Truncated, m.Writable.Note)
	row("criu", "%s %s", m.CRIU.Status, m.CRIU.Detail)
	for _, e := range m.Errors {
		row("error", "%s", e)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print snapshot: %w", err)
	}
	tr := d.Transcript
	if last < len(tr) {
		tr = tr[len(tr)-last:]
	}
	fmt.Fprintf(w, "\nlast %d of %d exchanges:\n", len(tr), len(d.Transcript))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tMETHOD\tPATH\tSTATUS\tLATENCY\tDELAY\tTOKENS\tERROR\tREQUEST")
	for _, ex := range tr {
		req := ex.Request
		if len(req) > 60 {
			req = req[:60] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%q\n", ex.Seq, ex.Method, ex.Path, ex.Status,
			ex.Latency.Round(time.Microsecond), ex.InjectedDelay.Round(time.Microsecond), ex.Tokens, ex.Err, req)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print snapshot: %w", err)
	}
	return nil
}

// fetchSnapshot makes src a local directory: as is, unpacked from a
// .tar.gz, or downloaded from S3.
func fetchSnapshot(ctx context.Context, src string) (string, func(), error) {
	none := func() {}
	rest, isS3 := strings.CutPrefix(src, "s3://")
	if !isS3 {
		fi, err := os.Stat(src)
		if err != nil {
			return "", none, withCode(ExitBadInput, fmt.Errorf("snapshot %s: %w", src, err))
		}
		if fi.IsDir() {
			return src, none, nil
		}
		f, err := os.Open(src)
		if err != nil {
			return "", none, withCode(ExitBadInput, fmt.Errorf("snapshot %s: %w", src, err))
		}
		defer f.Close()
		return unpackSnapshot(f, src)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" || prefix == "" {
		return "", none, withCode(ExitBadInput, fmt.Errorf("snapshot %q: use s3://bucket/prefix (or s3://bucket/key.tar.gz)", src))
	}
	ocfg := objstore.ConfigFromEnv()
	ocfg.Bucket = bucket
	store, err := objstore.New(ctx, ocfg)
	if err != nil {
		return "", none, withCode(ExitBadInput, fmt.Errorf("snapshot %s: %w", src, err))
	}
	if strings.HasSuffix(prefix, ".tar.gz") || strings.HasSuffix(prefix, ".tgz") {
		b, err := store.Get(ctx, prefix)
		if err != nil {
			return "", none, fmt.Errorf("snapshot %s: %w", src, err)
		}
		return unpackSnapshot(bytes.NewReader(b), src)
	}
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return "", none, fmt.Errorf("snapshot %s: %w", src, err)
	}
	if len(objs) == 0 {
		return "", none, withCode(ExitBadInput, fmt.Errorf("snapshot %s: no objects under that prefix", src))
	}
	tmp, err := os.MkdirTemp("", "sandgate-snapshot-")
	if err != nil {
		return "", none, fmt.Errorf("snapshot staging directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var total int64
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		clean := filepath.Clean(filepath.FromSlash(rel))
		if rel == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			continue
		}
		if total += o.Size; total > maxSnapshotBytes {
			cleanup()
			return "", none, fmt.Errorf("snapshot %s: more than %d bytes", src, maxSnapshotBytes)
		}
		dst := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			cleanup()
			return "", none, fmt.Errorf("snapshot %s: %w", src, err)
		}
		if _, err := store.Download(ctx, o.Key, dst); err != nil {
			cleanup()
			return "", none, fmt.Errorf("snapshot %s: %w", src, err)
		}
	}
	return tmp, cleanup, nil
}

func unpackSnapshot(r io.Reader, src string) (string, func(), error) {
	tmp, err := os.MkdirTemp("", "sandgate-snapshot-")
	if err != nil {
		return "", func() {}, fmt.Errorf("snapshot staging directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if err := sandbox.UntarSnapshot(r, tmp, maxSnapshotBytes); err != nil {
		cleanup()
		return "", func() {}, withCode(ExitBadInput, fmt.Errorf("snapshot %s: %w", src, err))
	}
	return tmp, cleanup, nil
}

func newSnapshotReplayCmd(env Env) *cobra.Command {
	var (
		command  string
		port     int
		all      bool
		vars     []string
		settle   time.Duration
		readyFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replay DIR|FILE.tar.gz|s3://bucket/prefix [--command 'CMD ARGS'] [-- CMD ARGS...]",
		Short: "Start the model again in a fresh sandbox and replay the failing exchanges",
		Long: `replay starts the snapshot's model command (or --command, or the argv after --)
in a new sandbox with the recorded limits, waits until it answers, then sends the
failing exchanges of the transcript again: those that got a 5xx or a relay error
(a crash mid-request shows as 502), or the last exchange when none failed; --all
replays the whole transcript in order. Budgets are not applied on replay.

It prints each replayed exchange and whether the failure reproduced: the model
exited (its exit code is printed) or answered 5xx again.

Exit status: 0 the failure reproduced; 1 it did not; 2 bad input; 125 the sandbox
could not be set up. Bodies longer than the transcript kept are sent truncated
(a warning says so); env values redacted in the snapshot must be given with --env.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, cleanup, err := fetchSnapshot(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			d, err := sandbox.LoadSnapshot(dir)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			spec := d.Config.Spec
			switch {
			case len(args) > 1 && command != "":
				return withCode(ExitBadInput, errors.New("give the model command either with --command or after --, not both"))
			case len(args) > 1:
				spec.Command = args[1:]
			case command != "":
				spec.Command = strings.Fields(command)
			}
			if port != 0 {
				spec.Port = port
			}
			spec.Env = mergeEnv(spec.Env, vars)
			if red := redactedVars(spec.Env); len(red) > 0 {
				fmt.Fprintf(env.Stderr, "warning: %s redacted in the snapshot; pass --env %s=... if the model needs it\n", strings.Join(red, ", "), red[0])
			}
			spec.NoRelay = false
			// Budgets belong to the original run; replay must reach the model.
			spec.Relay = &sandbox.RelayOptions{RequestTimeout: d.Config.Relay.RequestTimeout, Network: d.Config.Relay.Network}
			picked := pickExchanges(d.Transcript, all)
			if len(picked) == 0 {
				return withCode(ExitBadInput, fmt.Errorf("snapshot %s has no exchanges to replay", args[0]))
			}
			p, err := sandbox.NewProcessProvider(sandbox.ProcessOptions{Stdout: env.Stderr, Stderr: env.Stderr, Logger: env.Logger})
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			return replaySnapshot(cmd.Context(), env, p, spec, picked, readyFor, settle)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&command, "command", "", "model command to run instead of the recorded one (split on spaces)")
	f.IntVar(&port, "port", 0, "port the model listens on inside the sandbox (default: the recorded one)")
	f.BoolVar(&all, "all", false, "replay every recorded exchange in order, not just the failing ones")
	f.StringArrayVar(&vars, "env", nil, "KEY=value added to (or replacing in) the recorded environment (repeatable)")
	f.DurationVar(&settle, "settle", 2*time.Second, "how long to watch for the model dying after the last replayed exchange")
	f.DurationVar(&readyFor, "ready-timeout", 60*time.Second, "how long to wait for the model to answer before replaying")
	return cmd
}

func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if strings.HasPrefix(b, k+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func redactedVars(envv []string) []string {
	var out []string
	for _, kv := range envv {
		if k, v, _ := strings.Cut(kv, "="); v == "REDACTED" {
			out = append(out, k)
		}
	}
	return out
}

// pickExchanges chooses what to replay: the failures (5xx or a relay
// error other than a budget refusal), else the last exchange.
func pickExchanges(tr []sandbox.Exchange, all bool) []sandbox.Exchange {
	if all {
		return tr
	}
	var out []sandbox.Exchange
	for _, ex := range tr {
		if ex.Status >= 500 || (ex.Err != "" && ex.Status != http.StatusTooManyRequests) {
			out = append(out, ex)
		}
	}
	if len(out) == 0 && len(tr) > 0 {
		out = tr[len(tr)-1:]
	}
	return out
}

func replaySnapshot(ctx context.Context, env Env, p *sandbox.ProcessProvider, spec sandbox.Spec, picked []sandbox.Exchange, readyFor, settle time.Duration) error {
	s, err := p.Start(ctx, spec)
	if err != nil {
		return withCode(exitSandboxFailed, err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := s.Stop(stopCtx); err != nil {
			env.Logger.Warn("sandbox stop", "err", err)
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, readyFor)
	err = s.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return withCode(exitSandboxFailed, fmt.Errorf("replay: %w", err))
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	failedAgain := false
	for _, ex := range picked {
		if ex.RequestTruncated {
			fmt.Fprintf(env.Stderr, "warning: exchange %d's request body was recorded truncated (%d of %d bytes); replaying what was kept\n", ex.Seq, len(ex.Request), ex.BytesIn)
		}
		u := s.Endpoint() + ex.Path
		if ex.Query != "" {
			u += "?" + ex.Query
		}
		req, err := http.NewRequestWithContext(ctx, ex.Method, u, strings.NewReader(ex.Request))
		if err != nil {
			return withCode(ExitBadInput, fmt.Errorf("replay exchange %d: %w", ex.Seq, err))
		}
		if ex.ContentType != "" {
			req.Header.Set("Content-Type", ex.ContentType)
		}
		status, note := 0, ""
		resp, err := client.Do(req)
		if err != nil {
			note = err.Error()
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			status = resp.StatusCode
		}
		fmt.Fprintf(env.Stdout, "replayed exchange %d: %s %s -> %d (recorded %d) %s\n", ex.Seq, ex.Method, ex.Path, status, ex.Status, note)
		if status >= 500 || err != nil {
			failedAgain = true
		}
		select {
		case <-s.Done():
		default:
			continue
		}
		break
	}
	// A crash can follow the reply by a moment: watch for it until settle.
	t := time.NewTimer(settle)
	select {
	case <-s.Done():
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	select {
	case <-s.Done():
		st := s.Stats()
		how := fmt.Sprintf("exited with code %d", st.ExitCode)
		if st.KilledBy != "" || st.Signal != "" {
			how = fmt.Sprintf("was killed (%s %s, exit status %d)", st.KilledBy, st.Signal, st.ExitStatus)
		}
		fmt.Fprintf(env.Stdout, "reproduced: the model %s\n", how)
		return nil
	default:
	}
	if failedAgain {
		fmt.Fprintln(env.Stdout, "reproduced: the model answered 5xx again but is still running")
		return nil
	}
	fmt.Fprintln(env.Stdout, "not reproduced: every exchange was answered and the model is still running")
	return withCode(exitReplayNotReproduced, errors.New("snapshot replay: the failure did not reproduce"))
}
