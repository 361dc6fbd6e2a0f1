package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandgate/sandgate/internal/gctune"

	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/shadow"
)

// newShadowCmd is `starter shadow`: the live-traffic side of the shadow stage.
func newShadowCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{Use: "shadow", Short: "Mirror live traffic to a candidate model and record both replies"}
	var f struct {
		listen, admin, incumbent, candidate, out, releaseID string
		sample                                              float64
		queue, workers, batchRows, gcLimitMiB               int
		timeout, flush                                      time.Duration
		maxBody, maxCapture                                 int64
		forward, candHeaders                                []string
		replay                                              replayFlags
	}
	proxy := &cobra.Command{
		Use:   "proxy --listen ADDR --incumbent URL --candidate URL [--sample 0.1] [--out DIR|s3://bucket/prefix]",
		Short: "Reverse proxy in front of the incumbent that mirrors a sample of requests to the candidate",
		Long: `proxy serves clients from the incumbent only and copies a sample of inference
requests (OpenAI-compatible /v1/chat/completions, streamed or not, and OIP v2
/v2/models/{name}/infer) to the candidate. Mirrors go through a bounded queue:
when it is full they are dropped and counted, so the candidate can never slow
the clients down. The candidate's reply is recorded (with --out) and discarded.
Credential headers are stripped from mirrors unless named in --forward-header.

With --replay, recorded requests are read from a Parquet file (a local path or
s3://bucket/key: the Parquet files --out wrote, replay result pairs, or any
request log with a request_body column; see shadow.ReadRequestLog) and sent
through the proxy as clients would, at --replay-rate requests/s or at the
recorded pace times --replay-speed; the proxy stops when they are answered.

Counters are served as JSON on http://<admin>/debug/shadow. Stop with Ctrl-C:
queued mirrors finish (up to --mirror-timeout), the last Parquet part and
manifest.json are written, and the final counters are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inc, err := parseModelURL("--incumbent", f.incumbent)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			cand, err := parseModelURL("--candidate", f.candidate)
			if err != nil {
				return withCode(ExitBadInput, err)
			}
			hdr := http.Header{}
			for _, h := range f.candHeaders {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return withCode(ExitBadInput, fmt.Errorf("--candidate-header %q: use \"Name: value\"", h))
				}
				hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			cfg := shadow.ProxyConfig{
				Incumbent: inc, Candidate: cand, SampleRate: f.sample, QueueSize: f.queue, Workers: f.workers,
				MirrorTimeout: f.timeout, MaxMirrorBody: f.maxBody, MaxCaptureBytes: f.maxCapture,
				ForwardCredentials: f.forward, CandidateHeader: hdr, ReleaseID: f.releaseID, Logger: env.Logger,
			}
			if f.queue < 1 {
				return withCode(ExitBadInput, fmt.Errorf("--queue %d: must be at least 1", f.queue))
			}
			if err := f.replay.validate(); err != nil {
				return withCode(ExitBadInput, err)
			}
			if f.gcLimitMiB < 0 {
				return withCode(ExitBadInput, fmt.Errorf("--gc-memory-limit-mib %d: must not be negative (0 keeps Go's default collector)", f.gcLimitMiB))
			}
			tuneGC(env, f.gcLimitMiB)
			return runShadowProxy(cmd.Context(), env, cfg, f.listen, f.admin, f.out, f.batchRows, f.flush, f.replay)
		},
	}
	fl := proxy.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address clients connect to")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:9091", "address of the admin listener serving /debug/shadow (keep it private)")
	fl.StringVar(&f.incumbent, "incumbent", "", "incumbent model server root, e.g. http://127.0.0.1:8000")
	fl.StringVar(&f.candidate, "candidate", "", "candidate model server root")
	fl.Float64Var(&f.sample, "sample", 0.1, "share of inference requests mirrored, 0..1")
	fl.IntVar(&f.queue, "queue", 1024, "mirrors waiting for a worker; beyond it they are dropped and counted")
	fl.IntVar(&f.workers, "workers", 16, "mirrors in flight to the candidate")
	fl.DurationVar(&f.timeout, "mirror-timeout", 30*time.Second, "bound on one candidate exchange")
	fl.Int64Var(&f.maxBody, "max-body", 8<<20, "largest request body mirrored; larger ones are counted as skipped_too_large")
	fl.Int64Var(&f.maxCapture, "max-capture", 1<<20, "bytes of each reply kept in the record")
	fl.StringSliceVar(&f.forward, "forward-header", nil, "credential header copied to the candidate anyway (repeatable)")
	fl.StringSliceVar(&f.candHeaders, "candidate-header", nil, `header set on mirrored requests, "Name: value" (repeatable), e.g. the candidate's own Authorization`)
	fl.StringVar(&f.out, "out", "", "record mirrored pairs as Parquet to a directory or s3://bucket/prefix (empty: no recording)")
	fl.IntVar(&f.batchRows, "batch-rows", 10000, "rows per Parquet part file")
	fl.DurationVar(&f.flush, "flush-interval", 30*time.Second, "a non-empty batch is written at least this often")
	fl.StringVar(&f.releaseID, "release-id", "", "release id written to every row")
	fl.IntVar(&f.gcLimitMiB, "gc-memory-limit-mib", 512, "collect garbage only as the heap nears this many MiB (0: Go's default, every doubling of the live heap); GOGC or GOMEMLIMIT in the environment take precedence")
	fl.StringVar(&f.replay.source, "replay", "", "send recorded requests from this Parquet file (path or s3://bucket/key) through the proxy, then stop")
	fl.Float64Var(&f.replay.rate, "replay-rate", 0, "replayed requests per second, open loop (0: use --replay-speed)")
	fl.Float64Var(&f.replay.speed, "replay-speed", 0, "replay at the recorded pace times this factor (0 with --replay-rate 0: as fast as --replay-concurrency allows)")
	fl.IntVar(&f.replay.concurrency, "replay-concurrency", 64, "replayed requests in flight")
	fl.Int64Var(&f.replay.offset, "replay-offset", 0, "first row of the file to replay")
	fl.Int64Var(&f.replay.limit, "replay-limit", 0, "rows to replay (0: to the end)")
	_ = proxy.MarkFlagRequired("incumbent")
	_ = proxy.MarkFlagRequired("candidate")
	cmd.AddCommand(proxy)
	return cmd
}

func parseModelURL(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: give the server root as http(s)://host:port", flag, s)
	}
	return u, nil
}

// replayFlags drive recorded traffic through the proxy instead of waiting for clients.
type replayFlags struct {
	source        string
	rate, speed   float64
	concurrency   int
	offset, limit int64
}

func (r replayFlags) validate() error {
	if r.source == "" {
		return nil
	}
	switch {
	case r.rate < 0:
		return fmt.Errorf("--replay-rate %v: must not be negative", r.rate)
	case r.speed < 0:
		return fmt.Errorf("--replay-speed %v: must not be negative", r.speed)
	case r.offset < 0 || r.limit < 0:
		return fmt.Errorf("--replay-offset %d / --replay-limit %d: must not be negative", r.offset, r.limit)
	case r.concurrency < 1:
		return fmt.Errorf("--replay-concurrency %d: must be at least 1", r.concurrency)
	}
	return nil
}

// load reads the requests, downloading an s3:// source first.
func (r replayFlags) load(ctx context.Context) (shadow.RequestLog, error) {
	path := r.source
	if rest, ok := strings.CutPrefix(r.source, "s3://"); ok {
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" || key == "" {
			return shadow.RequestLog{}, withCode(ExitBadInput, fmt.Errorf("--replay %q: use s3://bucket/key", r.source))
		}
		ocfg := objstore.ConfigFromEnv()
		ocfg.Bucket = bucket
		store, err := objstore.New(ctx, ocfg)
		if err != nil {
			return shadow.RequestLog{}, withCode(ExitBadInput, fmt.Errorf("--replay %s: %w", r.source, err))
		}
		tmp, err := os.MkdirTemp("", "sandgate-replay-")
		if err != nil {
			return shadow.RequestLog{}, fmt.Errorf("--replay: staging directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		path = filepath.Join(tmp, "requests.parquet")
		if _, err := store.Download(ctx, key, path); err != nil {
			return shadow.RequestLog{}, fmt.Errorf("--replay %s: %w", r.source, err)
		}
	}
	log, err := shadow.ReadRequestLog(path, r.offset, r.limit)
	if err != nil {
		return log, withCode(ExitBadInput, fmt.Errorf("--replay: %w", err))
	}
	return log, nil
}

// tuneGC makes the proxy collect only as the heap nears limitMiB (see
// gctune): its live heap is a few MiB and its garbage per request, so with
// Go's default it collected several times a second at 1,000 req/s, each
// cycle delaying the requests in flight. The limit is soft: past it the
// collector runs as usual (its CPU capped at half), so a queue full of
// large mirrored bodies slows mirroring rather than failing.
func tuneGC(env Env, limitMiB int) {
	if limitMiB > 0 {
		gctune.Apply(env.Getenv, gctune.Policy{Percent: -1, LimitBytes: int64(limitMiB) << 20})
	}
}

func runShadowProxy(ctx context.Context, env Env, cfg shadow.ProxyConfig, listen, admin, out string, batchRows int, flush time.Duration, replay replayFlags) error {
	var log shadow.RequestLog
	if replay.source != "" {
		// Read before anything listens: a bad file is reported with nothing started.
		var err error
		if log, err = replay.load(ctx); err != nil {
			return err
		}
	}
	var rec *shadow.Recorder
	if out != "" {
		dest, err := parseDestination(out)
		if err != nil {
			return withCode(ExitBadInput, err)
		}
		var sink shadow.PartSink = shadow.DirSink{Dir: dest.dir}
		if dest.s3() {
			ocfg := objstore.ConfigFromEnv()
			ocfg.Bucket = dest.bucket
			store, err := objstore.New(ctx, ocfg)
			if err != nil {
				return withCode(ExitBadInput, fmt.Errorf("--out %s: %w", out, err))
			}
			if err := store.EnsureBucket(ctx); err != nil {
				return fmt.Errorf("--out %s: %w", out, err)
			}
			tmp, err := os.MkdirTemp("", "sandgate-shadow-")
			if err != nil {
				return fmt.Errorf("shadow proxy: staging directory: %w", err)
			}
			defer os.RemoveAll(tmp)
			sink = shadow.S3Sink{Store: store, Prefix: dest.prefix, Tmp: tmp}
		}
		// Uploads outlive the signal that stops the proxy: the last part
		// and the manifest must still be written.
		rec, err = shadow.NewRecorder(context.WithoutCancel(ctx), shadow.RecorderConfig{
			Sink: sink, BatchRows: batchRows, FlushInterval: flush, ReleaseID: cfg.ReleaseID, Logger: env.Logger,
		})
		if err != nil {
			return err
		}
		cfg.Recorder = rec
	}
	p, err := shadow.NewProxy(cfg)
	if err != nil {
		return withCode(ExitBadInput, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return withCode(ExitBadInput, fmt.Errorf("--listen %s: %w", listen, err))
	}
	aln, err := net.Listen("tcp", admin)
	if err != nil {
		ln.Close()
		return withCode(ExitBadInput, fmt.Errorf("--admin %s: %w", admin, err))
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	asrv := &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- asrv.Serve(aln) }()
	fmt.Fprintf(env.Stdout, "shadow proxy on http://%s → %s (mirror %.0f%% → %s); counters on http://%s/debug/shadow\n",
		ln.Addr(), cfg.Incumbent, cfg.SampleRate*100, cfg.Candidate, aln.Addr())

	replayDone := make(chan error, 1)
	if replay.source != "" {
		fmt.Fprintf(env.Stdout, "replaying %d recorded requests from %s (%d rows without a body skipped)\n", len(log.Requests), replay.source, log.Skipped)
		go func() {
			st, err := shadow.DriveRecorded(ctx, log.Requests, shadow.DriveOptions{
				Target: "http://" + ln.Addr().String(), Rate: replay.rate, Speed: replay.speed,
				Concurrency: replay.concurrency, RequestIDHeader: cfg.RequestIDHeader,
			})
			fmt.Fprintf(env.Stdout, "replayed %d requests, %d failed at the incumbent\n", st.Sent, st.Failed)
			replayDone <- err
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	case serveErr = <-replayDone:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.MirrorTimeout+30*time.Second)
	defer cancel()
	errs := []error{}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("shadow proxy: serve: %w", serveErr))
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shadow proxy: shutdown: %w", err))
	}
	_ = asrv.Shutdown(sctx)
	if err := p.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	if rec != nil {
		m, err := rec.Close(sctx)
		if err != nil {
			errs = append(errs, err)
		}
		fmt.Fprintf(env.Stdout, "recorded %d rows in %d part(s) to %s\n", m.Rows, len(m.Files), out)
	}
	fmt.Fprintln(env.Stdout, p.Stats().String())
	return errors.Join(errs...)
}
