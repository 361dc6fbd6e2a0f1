package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/devstack"
	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/sandbox"
	"github.com/sandgate/sandgate/workflows"
)

// DefaultConfig is the release `starter dev` runs when -f is not given.
const DefaultConfig = "examples/release.yaml"

func newDevCmd(env Env) *cobra.Command {
	opt := devstack.DefaultOptions()
	var file string
	var serve, noUI bool
	var metricsListen string
	cmd := &cobra.Command{
		Use:   "dev [-f CONFIG]",
		Short: "Run a release on the embedded stack (Temporal + Web UI + S3) with an in-process worker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if noUI {
				opt.UIPort = -1
			}
			opt.Logger = env.Logger
			return runDev(cmd.Context(), env, file, serve, metricsListen, opt)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", DefaultConfig, "release config (YAML)")
	f.BoolVar(&serve, "serve", false, "keep the stack up after the release until interrupted")
	f.StringVar(&opt.DataDir, "data-dir", opt.DataDir, "where the Temporal database and the S3 objects live (survives restarts)")
	f.IntVar(&opt.FrontendPort, "temporal-port", opt.FrontendPort, "Temporal frontend gRPC port (0 = any free port)")
	f.IntVar(&opt.UIPort, "ui-port", opt.UIPort, "Temporal Web UI port (0 = any free port)")
	f.IntVar(&opt.S3Port, "s3-port", opt.S3Port, "S3-compatible server port (0 = any free port)")
	f.BoolVar(&noUI, "no-ui", false, "do not start the Web UI")
	f.StringVar(&metricsListen, "metrics-listen", "", "serve the worker's Prometheus metrics on host:port at /metrics (e.g. 127.0.0.1:9090); empty: none")
	return cmd
}

func runDev(ctx context.Context, env Env, file string, serve bool, metricsListen string, opt devstack.Options) error {
	// Everything that can be wrong with the input is checked before anything starts.
	in, locals, err := loadRelease(file)
	if err != nil {
		return err
	}
	if _, err := sandbox.NewProcessProvider(sandbox.ProcessOptions{Logger: env.Logger}); err != nil {
		if errors.Is(err, sandbox.ErrUnsupported) {
			return withCode(ExitBadInput, err)
		}
		return err
	}
	pc, err := codec.Load("", env.Getenv)
	if err != nil {
		return withCode(ExitBadInput, err)
	}
	// With encryption on, the Web UI can only show payloads through a codec
	// endpoint, which it must be given before it starts: listening first
	// fixes the port, and requests queue until the handler is served below.
	var codecLn net.Listener
	if pc != nil && opt.UIPort != devstack.NoUI {
		host := opt.Host
		if host == "" {
			host = devstack.DefaultHost
		}
		if codecLn, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return fmt.Errorf("codec endpoint for the Web UI: %w", err)
		}
		defer codecLn.Close()
		opt.CodecEndpoint = "http://" + codecLn.Addr().String()
	}

	// Listening now makes a bad --metrics-listen bad input, before the stack starts.
	var metrics *app.Metrics
	if metricsListen != "" {
		metrics = app.NewMetrics()
		addr, err := app.ServeMetrics(ctx, metricsListen, metrics, env.Logger)
		if err != nil {
			return withCode(ExitBadInput, err)
		}
		fmt.Fprintf(env.Stdout, "metrics: http://%s/metrics\n", addr)
	}

	fmt.Fprintf(env.Stdout, "starting embedded stack in %s ...\n", opt.DataDir)
	began := time.Now()
	stack, err := devstack.Start(ctx, opt)
	if err != nil {
		return withCode(ExitBadInput, fmt.Errorf("start embedded stack: %w", err))
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			env.Logger.Warn("stop embedded stack", "err", err)
		}
	}()
	fmt.Fprintf(env.Stdout, "temporal %s  ui %s  s3 %s (bucket %s)\n", stack.FrontendAddress(), orNone(stack.UIURL()), stack.S3Endpoint(), stack.Bucket())
	if codecLn != nil {
		// Loopback only and reachable by the local browser alone: no token,
		// since the UI has no login to take one from.
		origins := []string{stack.UIURL(), strings.Replace(stack.UIURL(), "127.0.0.1", "localhost", 1)}
		srv := serveCodec(codecLn, newCodecHandler(pc, "", origins), env)
		defer func() {
			if err := shutdownCodec(srv); err != nil {
				env.Logger.Warn("stop codec endpoint", "err", err)
			}
		}()
		fmt.Fprintf(env.Stdout, "payloads encrypted (key %s); the UI decodes them through %s\n", activeKey(pc), opt.CodecEndpoint)
	} else if pc != nil {
		fmt.Fprintf(env.Stdout, "payloads encrypted (key %s)\n", activeKey(pc))
	}

	c, err := app.Dial(ctx, app.TemporalConfig{Address: stack.FrontendAddress(), Namespace: stack.Namespace(), Codec: pc, Metrics: metrics}, env.Logger)
	if err != nil {
		return err
	}
	defer c.Close()
	acts, err := app.NewActivities(ctx, objstore.Config{
		Endpoint:        stack.S3Endpoint(),
		Region:          devstack.DevRegion,
		Bucket:          stack.Bucket(),
		AccessKeyID:     devstack.DevAccessKeyID,
		SecretAccessKey: devstack.DevSecretAccessKey,
		PathStyle:       true,
	}, env.Logger)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := acts.Close(cctx); err != nil {
			env.Logger.Warn("stop sandboxes", "err", err)
		}
	}()
	// A dev stack signs with a key of its own, kept beside its data.
	priv, pubPath, err := devAttestationKey(opt.DataDir)
	if err != nil {
		return err
	}
	acts.AttestationKey = priv
	w := app.NewWorkerWithOptions(c, workflows.TaskQueue, acts, app.WorkerOptions{Metrics: metrics})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	if err := uploadInputs(ctx, acts.Store, locals); err != nil {
		return err
	}
	stackUp := time.Now()
	run, err := startRelease(ctx, c, workflows.TaskQueue, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "release %s\n", in.ReleaseID)
	res, err := follow(ctx, c, run, env.Stdout)
	if err != nil {
		return err
	}
	resultErr := printResult(env.Stdout, res, stack.UIURL(), stack.Namespace())
	printTiming(env.Stdout, began, stackUp, time.Now(), res.Stages)
	if res.AttestationKey != "" {
		fmt.Fprintf(env.Stdout, "verify:  AWS_ENDPOINT_URL_S3=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s starter attest verify --key %s --release %s\n",
			stack.S3Endpoint(), devstack.DevAccessKeyID, devstack.DevSecretAccessKey, pubPath, res.ReleaseID)
	}
	query := fmt.Sprintf("SELECT outcome, count(*) FROM read_parquet('%sresults/adversarial/*/*.parquet', hive_partitioning=true) GROUP BY 1", res.Prefix)
	switch s := in.Config.Suites; {
	case s.Fairness != nil:
		query = fmt.Sprintf("SELECT attributes, \"group\", size, selection_rate, tpr, fpr FROM read_parquet('%sresults/fairness/groups/*.parquet')", res.Prefix)
	case s.Robustness != nil:
		query = fmt.Sprintf("SELECT attack, succeeded, failed, skipped, flip_rate_upper, queries FROM read_parquet('%sresults/robustness/attacks/*.parquet')", res.Prefix)
	case s.Membership != nil:
		query = fmt.Sprintf("SELECT attack, fpr, tpr FROM read_parquet('%sresults/membership/roc/*.parquet') WHERE fpr <= 0.01", res.Prefix)
	}
	fmt.Fprintf(env.Stdout, "open the results: duckdb -c \"SET s3_endpoint='%s'; SET s3_url_style='path'; SET s3_use_ssl=false; %s\"\n", trimScheme(stack.S3Endpoint()), query)
	if serve {
		fmt.Fprintln(env.Stdout, "serving until interrupted (Ctrl-C)")
		<-ctx.Done()
	}
	return resultErr
}

// printTiming says where the wall time went: starting the stack, the stages
// that call the model, and the rest of the release (orchestration overhead).
func printTiming(out io.Writer, began, stackUp, end time.Time, stages []workflows.StageStatus) {
	var model time.Duration
	for _, s := range stages {
		switch s.Name {
		case workflows.StageAdversarial, workflows.StagePrivacy, workflows.StageShadow:
			if !s.Started.IsZero() && !s.Finished.IsZero() {
				model += s.Finished.Sub(s.Started)
			}
		}
	}
	release := end.Sub(stackUp)
	overhead := max(release-model, 0)
	share := 0.0
	if release > 0 {
		share = float64(overhead) / float64(release)
	}
	fmt.Fprintf(out, "timing:  %.1fs total = stack start %.1fs + release %.1fs (model-calling stages %.1fs, everything else %.1fs = %.0f%% of the release)\n",
		end.Sub(began).Seconds(), stackUp.Sub(began).Seconds(), release.Seconds(), model.Seconds(), overhead.Seconds(), 100*share)
}

// devAttestationKey loads the dev stack's signing key, creating it on first use.
func devAttestationKey(dataDir string) (ed25519.PrivateKey, string, error) {
	dir := filepath.Join(dataDir, "attestation")
	privPath, pubPath := filepath.Join(dir, "attestation.key"), filepath.Join(dir, "attestation.pub")
	if _, err := os.Stat(privPath); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("attestation key dir: %w", err)
		}
		if privPath, pubPath, err = audit.GenerateKeyPair(dir); err != nil {
			return nil, "", fmt.Errorf("generate dev attestation key: %w", err)
		}
	}
	priv, err := audit.LoadPrivateKey(privPath)
	if err != nil {
		return nil, "", err
	}
	return priv, pubPath, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func trimScheme(u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
}

// activeKey names the key new payloads are encrypted with, for the user.
func activeKey(pc converter.PayloadCodec) string {
	if c, ok := pc.(*codec.Codec); ok {
		return c.ActiveKeyID()
	}
	return "(custom codec)"
}
