package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/sandbox"
)

// Exit statuses of `starter sandbox exec` that are not the command's own,
// following timeout(1) and docker run so scripts can tell them apart.
const (
	exitSandboxTimeout  = 124 // --timeout killed the command
	exitSandboxFailed   = 125 // the sandbox could not be set up; the command never ran
	exitSandboxCanceled = 130 // interrupted (SIGINT/SIGTERM to starter)
)

// newSandboxCmd is `starter sandbox`: the model sandbox, for users checking
// their own model command before a release runs it.
func newSandboxCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run commands inside the model sandbox",
	}
	cmd.AddCommand(newSandboxExecCmd(env))
	return cmd
}

func newSandboxExecCmd(env Env) *cobra.Command {
	var (
		memory, workDir string
		pids            int64
		cpus            float64
		timeout         time.Duration
		evidence        bool
		hostFS          bool
		readOnly, vars  []string
		allow           []string
		snapshotDir     string
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] -- CMD [ARGS...]",
		Short: "Run a command in the sandbox a model gets, and exit with its status",
		Long: `exec runs CMD inside the same sandbox the release pipeline gives a model:
new network (loopback only), pid, mount, uts and ipc namespaces; a pivot_root'ed
tree of read-only system directories plus size-capped tmpfs /tmp and home; no
capabilities, no_new_privs, a seccomp filter and Landlock rules; cgroup limits
and a wall-clock deadline. Nothing talks to it: there is no relay. Its stdout and
stderr are streamed; the environment is only what --env gives (plus PATH, HOME,
TMPDIR defaults). It needs root (or rootless user namespaces with a delegated
cgroup v2 subtree).

--allow HOST:PORT (repeatable) lets the command reach that service on the host
side, and nothing else: through the proxy in HTTP_PROXY, HTTPS_PROXY and
ALL_PROXY (HTTP CONNECT, absolute-URI HTTP and SOCKS5), and, for a loopback
address, at the same address inside. Every attempt, allowed or refused, is
printed on stderr after the command exits.

--evidence prints, after the command's own output, the isolation evidence
recorded inside the sandbox before the command ran, as JSON on stdout.

--snapshot-dir DIR writes a forensic snapshot into a new directory under DIR when
the command fails (non-zero exit, OOM kill, --timeout): manifest, cgroup stats,
processes, stdout/stderr tails and a tar of its /tmp and home. Inspect it with
'starter snapshot show'.

Exit status: the command's own (128+N when signal N killed it); 124 when
--timeout killed it; 125 when the sandbox could not be set up (the command
never ran); 130 when interrupted; 2 for bad flags or a host that cannot sandbox.

Example:
  starter sandbox exec --memory 256Mi --timeout 30s -- bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mem, err := config.ParseByteSize(memory)
			if err != nil {
				return withCode(ExitBadInput, fmt.Errorf("--memory: %w", err))
			}
			if pids < 0 || cpus < 0 || timeout < 0 {
				return withCode(ExitBadInput, errors.New("--pids, --cpus and --timeout must not be negative (0 means no limit)"))
			}
			popt := sandbox.ProcessOptions{
				Stdout: env.Stdout, Stderr: env.Stderr, Logger: env.Logger, HostFilesystem: hostFS,
			}
			if snapshotDir != "" {
				abs, err := filepath.Abs(snapshotDir)
				if err != nil {
					return withCode(ExitBadInput, fmt.Errorf("--snapshot-dir: %w", err))
				}
				popt.Snapshot = sandbox.SnapshotOptions{Root: abs, OnFailure: true}
			}
			p, err := sandbox.NewProcessProvider(popt)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			spec := sandbox.Spec{
				Name:          filepath.Base(args[0]),
				Command:       args,
				NoRelay:       true,
				Env:           vars,
				WorkDir:       workDir,
				ReadOnlyPaths: readOnly,
				Limits:        sandbox.Limits{CPUs: cpus, MemoryBytes: mem, Pids: pids, WallClock: timeout},
			}
			for _, a := range allow {
				spec.Egress = append(spec.Egress, sandbox.EgressRule{Address: a})
			}
			if err := sandbox.ValidateEgress(spec.Egress); err != nil {
				return withCode(ExitBadInput, fmt.Errorf("--allow: %w", err))
			}
			return runSandboxed(cmd.Context(), env, p, spec, evidence)
		},
	}
	f := cmd.Flags()
	// Flags after CMD belong to CMD: `exec bash -c ...` needs no "--".
	f.SetInterspersed(false)
	f.StringVar(&memory, "memory", "256Mi", "memory limit (\"256Mi\", \"1Gi\"; 0 for none)")
	f.Int64Var(&pids, "pids", 64, "process/thread limit (0 for none)")
	f.Float64Var(&cpus, "cpus", 1, "CPU quota in cores (0 for none)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "wall-clock limit (0 for none)")
	f.BoolVar(&evidence, "evidence", false, "print the isolation evidence as JSON after the command's output")
	f.StringVar(&workDir, "workdir", "", "host directory bound read-only at the same path and used as the working directory")
	f.StringArrayVar(&readOnly, "ro", nil, "further host path to bind read-only at the same path (repeatable)")
	f.StringArrayVar(&vars, "env", nil, "KEY=value for the command's environment (repeatable; nothing is inherited)")
	f.StringArrayVar(&allow, "allow", nil, "HOST:PORT the command may reach (repeatable; everything else stays unreachable)")
	f.StringVar(&snapshotDir, "snapshot-dir", "", "on failure, write a snapshot (see 'starter snapshot show') under this directory")
	f.BoolVar(&hostFS, "host-filesystem", false, "debug: show the host's tree instead of the scratch root (Landlock still confines writes)")
	return cmd
}

// runSandboxed starts spec, waits for it and turns its end into starter's
// exit status.
func runSandboxed(ctx context.Context, env Env, p *sandbox.ProcessProvider, spec sandbox.Spec, printEvidence bool) error {
	s, err := p.Start(ctx, spec)
	if err != nil {
		return withCode(exitSandboxFailed, err)
	}
	// Stop must run even when ctx is what ended: it is the wipe.
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := s.Stop(stopCtx); err != nil {
			env.Logger.Warn("sandbox stop", "err", err)
		}
	}()

	select {
	case <-s.Done():
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_ = s.Stop(stopCtx)
		return withCode(exitSandboxCanceled, fmt.Errorf("sandbox exec %s: %w", spec.Name, ctx.Err()))
	}
	for _, snap := range s.Snapshots() {
		fmt.Fprintf(env.Stderr, "snapshot (%s): %s\n", snap.Manifest.Reason, snap.Dir)
	}
	if len(spec.Egress) > 0 {
		// Stop closes the egress relay, so the transcript is complete.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		if err := s.Stop(stopCtx); err != nil {
			env.Logger.Warn("sandbox stop", "err", err)
		}
		cancel()
		printEgress(env, s.EgressTranscript())
	}
	if printEvidence {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.AllEvidence()); err != nil {
			return fmt.Errorf("print sandbox evidence: %w", err)
		}
	}
	st := s.Stats()
	switch {
	case st.KilledBy == sandbox.KilledByDeadline:
		return withCode(exitSandboxTimeout, fmt.Errorf("sandbox exec %s: killed at the --timeout of %s", spec.Name, spec.Limits.WallClock))
	case st.ExitStatus != 0:
		werr := s.Wait(ctx)
		if werr == nil {
			werr = fmt.Errorf("sandbox exec %s: exit status %d", spec.Name, st.ExitStatus)
		}
		return withCode(st.ExitStatus, werr)
	}
	return nil
}

// printEgress lists every connection the command attempted out of the
// sandbox, one line each, on stderr.
func printEgress(env Env, recs []sandbox.EgressRecord) {
	for _, r := range recs {
		if r.Via == sandbox.EgressViaProbe {
			continue // the harness's own check, not the command's
		}
		switch {
		case !r.Allowed:
			fmt.Fprintf(env.Stderr, "egress refused %s via %s: %s\n", r.Target, r.Via, r.Reason)
		case r.Err != "":
			fmt.Fprintf(env.Stderr, "egress allowed %s via %s, failed: %s\n", r.Target, r.Via, r.Err)
		default:
			fmt.Fprintf(env.Stderr, "egress allowed %s via %s: sent %d B, received %d B in %s\n", r.Target, r.Via, r.BytesSent, r.BytesReceived, r.Duration.Round(time.Millisecond))
		}
	}
}
