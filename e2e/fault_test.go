package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/devstack"
	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/refmodel"
	"github.com/sandgate/sandgate/workflows"
)

// faultyModelRole is a model the sandbox runs from this test binary: the
// hardened reference model behind a layer that fails some chat requests
// for good, picked by a hash of the user message so the test knows which.
const faultyModelRole = "e2e-faulty-model"

func init() { reexec.Register(faultyModelRole, func() { os.Exit(faultyModelMain(os.Args[1:])) }) }

// Fault classes by fnv32a(user message) % 100.
const (
	faultStatus503 = "503"     // [0, 4): HTTP 503 every time
	faultHang      = "hang"    // [4, 6): no answer within the client's timeout
	faultGarbage   = "garbage" // [6, 10): HTTP 200 with a body that is not JSON
)

func faultOf(user string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	switch v := h.Sum32() % 100; {
	case v < 4:
		return faultStatus503
	case v < 6:
		return faultHang
	case v < 10:
		return faultGarbage
	}
	return ""
}

func faultyModelMain(args []string) int {
	fs := flag.NewFlagSet(faultyModelRole, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "address")
	hang := fs.Duration("hang", 3*time.Second, "how long a hanging request is held")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, err := refmodel.New(refmodel.Hardened)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	inner := refmodel.NewHandler(m, refmodel.ServerOptions{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Messages []struct{ Role, Content string }
		}
		_ = json.Unmarshal(body, &req)
		user := ""
		for _, msg := range req.Messages {
			if msg.Role == "user" {
				user = msg.Content
			}
		}
		switch faultOf(user) {
		case faultStatus503:
			http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
			return
		case faultHang:
			select {
			case <-r.Context().Done():
			case <-time.After(*hang):
			}
			return
		case faultGarbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("}{ this is not a completion"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		<-c
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	return 0
}

// faultConfig is smallConfig's release with edits as text replacements.
func faultConfig(t *testing.T, edits map[string]string) string {
	t.Helper()
	path := smallConfig(t, "release.yaml", false)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, repl := range edits {
		if !strings.Contains(s, old) {
			t.Fatalf("config has no %q", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadInput(t *testing.T, path string) workflows.ReleaseInput {
	t.Helper()
	cfg, raw, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := config.Digest(raw)
	return workflows.ReleaseInput{ReleaseID: cfg.ReleaseID(d), Config: *cfg, ConfigSHA256: d}
}

// readRows downloads every part of a manifest and reads its rows.
func readRows[T any](t *testing.T, ctx context.Context, store *objstore.Store, manifestKey string) []T {
	t.Helper()
	b, err := store.Get(ctx, manifestKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := datasets.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for i, f := range m.Files {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.parquet", i))
		if _, err := store.Download(ctx, f.Key, path); err != nil {
			t.Fatal(err)
		}
		rows, err := datasets.ReadRows[T](path, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

// TestFaultModelErrorsAreRecordedNotHidden runs a release against a model
// that answers some prompts with 503, never in time, or with garbage. The
// release must finish with one adversarial row per prompt; exactly the
// faulty prompts are errored (never counted defended), and the error-rate
// rule blocks the release.
func TestFaultModelErrorsAreRecordedNotHidden(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const queue = "fault-model"
	env.startWorker(t, ctx, queue)
	path := faultConfig(t, map[string]string{
		`command: ["sandgate-refmodel", "--variant", "hardened", "--listen", "127.0.0.1:8000"]`: `command: ["` + faultyModelRole + `", "--listen", "127.0.0.1:8000"]`,
		"    concurrency: 4\n    # Global": "    concurrency: 4\n    timeout: 1s\n    max_retries: 1\n    # Global",
	})
	in := loadInput(t, path)
	began := time.Now()
	run, err := env.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.ReleaseID, TaskQueue: queue}, workflows.ReleaseWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ReleaseResult
	if err := run.Get(ctx, &res); err != nil {
		// A clear error is an acceptable end too, but this release should finish.
		t.Fatalf("release ended with an error: %v", err)
	}
	pm, err := layout(t, in.ReleaseID).DatasetManifest("prompts")
	if err != nil {
		t.Fatal(err)
	}
	prompts := readRows[datasets.PromptRow](t, ctx, env.store, pm)
	rows := readRows[redteam.AttemptRow](t, ctx, env.store, resultManifestKey(t, in.ReleaseID, "adversarial"))
	if len(rows) != in.Config.Suites.Adversarial.Prompts || len(prompts) != len(rows) {
		t.Fatalf("%d adversarial rows for %d prompts, want %d", len(rows), len(prompts), in.Config.Suites.Adversarial.Prompts)
	}
	fault := map[string]string{}
	for _, p := range prompts {
		fault[p.ID] = faultOf(p.Prompt)
	}
	counts := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.PromptID] {
			t.Errorf("prompt %s has two rows", r.PromptID)
		}
		seen[r.PromptID] = true
		f := fault[r.PromptID]
		counts[f+"/"+string(r.Outcome)]++
		want := redteam.Errored
		switch {
		case f == "":
			want = r.Outcome // whatever the model's answer earned
			if r.Outcome == redteam.Errored {
				want = "defended or breached"
			}
		case r.Goal == redteam.GoalRobustness && (f == faultStatus503 || f == faultHang):
			// A robustness probe that makes the model fail has found a crash.
			want = redteam.Breached
			if r.Detector != redteam.DetectorCrash {
				t.Errorf("prompt %s: robustness crash judged by %s", r.PromptID, r.Detector)
			}
		}
		if r.Outcome != want {
			t.Errorf("prompt %s (fault %q): outcome %s, want %s; error %q, status %d, goal %s, detector %s, evidence %q, attempt %d", r.PromptID, f, r.Outcome, want, r.Error, r.StatusCode, r.Goal, r.Detector, r.Evidence, r.Attempt)
		}
		if f == faultStatus503 && r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("prompt %s: status %d, want 503", r.PromptID, r.StatusCode)
		}
	}
	faulty := 0
	for _, r := range rows {
		if r.Outcome == redteam.Errored {
			faulty++
		}
	}
	t.Logf("model faults: %d rows, outcomes by fault/outcome %v; verdict %s failed %v; %.0fs", len(rows), counts, res.Verdict, res.FailedRules, time.Since(began).Seconds())
	if faulty == 0 {
		t.Fatal("no prompt ended errored: the test proves nothing; change the fault classes")
	}
	// Errored attempts count against the model (error_rate), never as defended.
	if float64(faulty)/float64(len(rows)) > 0.05 && (res.Verdict != workflows.VerdictBlocked || !contains(res.FailedRules, "errors")) {
		t.Errorf("error rate %.3f > 0.05 but verdict %s, failed %v; want BLOCKED by errors", float64(faulty)/float64(len(rows)), res.Verdict, res.FailedRules)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// outageProxy forwards TCP connections to target until Down, which closes
// the listener and every open connection (clients see connection refused,
// as if the server had stopped); Up listens on the same address again.
type outageProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
	wg           sync.WaitGroup
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	p := &outageProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.Down(); p.wg.Wait() })
	return p
}

func (p *outageProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

func (p *outageProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *outageProxy) Up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("S3 proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// waitStage polls the status query until the release reaches stage.
func waitStage(t *testing.T, ctx context.Context, c client.Client, id, stage string, timeout time.Duration) workflows.Status {
	t.Helper()
	var st workflows.Status
	eventually(t, ctx, timeout, "release "+id+" reaches "+stage, func() error {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		if err != nil {
			return err
		}
		if err := v.Get(&st); err != nil {
			return err
		}
		for _, s := range st.Stages {
			if s.Name == stage && s.State != workflows.StatePending {
				return nil
			}
		}
		return fmt.Errorf("at %s", st.Stage)
	})
	return st
}

// checkRelease asserts a finished release has every row it should.
func checkRelease(t *testing.T, ctx context.Context, env *stackEnv, in workflows.ReleaseInput, res workflows.ReleaseResult) {
	t.Helper()
	if res.Verdict != workflows.VerdictReleased {
		t.Errorf("verdict %s (failed %v), want RELEASED", res.Verdict, res.FailedRules)
	}
	ms := verifyParquet(t, ctx, env.store, in.ReleaseID)
	if adv := ms[resultManifestKey(t, in.ReleaseID, "adversarial")]; adv.Rows != int64(in.Config.Suites.Adversarial.Prompts) {
		t.Errorf("%d adversarial rows, want exactly %d", adv.Rows, in.Config.Suites.Adversarial.Prompts)
	}
	if sh := ms[resultManifestKey(t, in.ReleaseID, "shadow")]; sh.Rows != int64(in.Config.Suites.Shadow.Requests) {
		t.Errorf("%d shadow rows, want exactly %d", sh.Rows, in.Config.Suites.Shadow.Requests)
	}
}

// TestFaultS3OutageMidRelease takes S3 away while the adversarial stage
// reads and writes its parts (the worker reaches S3 through a proxy that
// drops every connection and refuses new ones, as a stopped server does),
// then brings it back on the same address with the same data. Two rounds,
// 5 s and 30 s: each release must end with exactly one row per prompt or
// with an error that names the S3 object and the refused connection.
//
// Activities retry up to 8 times with backoff capped at 30 s (about 90 s
// in all), so both outages are ridden out; the test still accepts a clear
// error, which is what a longer outage gives.
//
// devstack cannot stop and restart only its S3 server; a proxy in front
// of it is the same outage from the worker's side.
func TestFaultS3OutageMidRelease(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	proxy := newOutageProxy(t, strings.TrimPrefix(env.stack.S3Endpoint(), "http://"))
	viaProxy := *env
	viaProxy.s3cfg.Endpoint = "http://" + proxy.addr
	const queue = "fault-s3"
	viaProxy.startWorker(t, ctx, queue)

	for round, outage := range []time.Duration{5 * time.Second, 30 * time.Second} {
		in := loadInput(t, faultConfig(t, map[string]string{
			"seed: 20261130\n":     fmt.Sprintf("seed: %d\n", 20261130+round),
			"    prompts: 80\n":    "    prompts: 400\n",
			"    part_size: 40\n":  "    part_size: 20\n",
			"    concurrency: 4\n": "    concurrency: 2\n",
		}))
		began := time.Now()
		run, err := env.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.ReleaseID, TaskQueue: queue}, workflows.ReleaseWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		st := waitStage(t, ctx, env.client, in.ReleaseID, workflows.StageAdversarial, time.Minute)
		proxy.Down()
		t.Logf("round %d: S3 down for %s at %.1fs (stage %s, %d/%d shards done)", round+1, outage, time.Since(began).Seconds(), st.Stage, st.ShardsDone, st.ShardsTotal)
		// The outage lasts a fixed time on purpose: this is the fault, not a wait.
		select {
		case <-time.After(outage):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		proxy.Up(t)
		var res workflows.ReleaseResult
		err = run.Get(ctx, &res)
		if err != nil {
			// Ending with an error is acceptable when it says what failed.
			t.Logf("round %d: S3 outage %s: release %s ended with an error after %.0fs: %s", round+1, outage, in.ReleaseID, time.Since(began).Seconds(), briefError(err))
			for _, want := range []string{"s3://sandgate/releases/" + in.ReleaseID + "/", "connection refused"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("round %d: the error does not say %q: %s", round+1, want, briefError(err))
				}
			}
			continue
		}
		t.Logf("round %d: S3 outage %s: release %s ended %s after %.0fs; stages %s", round+1, outage, in.ReleaseID, res.Verdict, time.Since(began).Seconds(), stageSummary(res.Stages))
		checkRelease(t, ctx, env, in, res)
	}
}

// TestFaultTemporalRestartMidRelease stops the whole embedded stack
// (Temporal and S3) mid-release and starts it again on the same SQLite
// file, ports and S3 data; the worker's client reconnects by itself. The
// release must finish with exactly one row per prompt.
func TestFaultTemporalRestartMidRelease(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	env := startStack(t, ctx, dataDir)
	const queue = "fault-temporal"
	env.startWorker(t, ctx, queue)
	in := loadInput(t, faultConfig(t, map[string]string{
		"    prompts: 80\n":    "    prompts: 400\n",
		"    part_size: 40\n":  "    part_size: 20\n",
		"    concurrency: 4\n": "    concurrency: 2\n",
	}))
	began := time.Now()
	run, err := env.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.ReleaseID, TaskQueue: queue}, workflows.ReleaseWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	st := waitStage(t, ctx, env.client, in.ReleaseID, workflows.StageAdversarial, time.Minute)

	port := func(hostport string) int {
		u, err := url.Parse("http://" + strings.TrimPrefix(hostport, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		var p int
		fmt.Sscan(u.Port(), &p)
		return p
	}
	frontend, s3 := port(env.stack.FrontendAddress()), port(env.stack.S3Endpoint())
	stoppedAt := time.Now()
	if err := env.stack.Stop(); err != nil {
		t.Fatalf("stop stack: %v", err)
	}
	t.Logf("stack stopped at %.1fs (stage %s, %d/%d shards done)", time.Since(began).Seconds(), st.Stage, st.ShardsDone, st.ShardsTotal)
	restarted, err := devstack.Start(ctx, devstack.Options{DataDir: dataDir, FrontendPort: frontend, S3Port: s3, UIPort: devstack.NoUI, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("restart stack on the same data: %v", err)
	}
	t.Cleanup(func() { _ = restarted.Stop() })
	t.Logf("stack back at %.1fs on %s", time.Since(began).Seconds(), restarted.FrontendAddress())

	res := waitResult(t, ctx, run)
	t.Logf("Temporal restart: release %s ended %s after %.0fs; stages %s", in.ReleaseID, res.Verdict, time.Since(began).Seconds(), stageSummary(res.Stages))
	for _, s := range res.Stages {
		if s.Name == workflows.StageAdversarial && !s.Finished.After(stoppedAt) {
			t.Errorf("the adversarial stage finished at %s, before the stack was stopped at %s: the restart hit no running stage", s.Finished, stoppedAt)
		}
	}
	checkRelease(t, ctx, env, in, res)
}

func stageSummary(stages []workflows.StageStatus) string {
	var parts []string
	for _, s := range stages {
		d := ""
		if !s.Started.IsZero() && !s.Finished.IsZero() {
			d = fmt.Sprintf(" %.1fs", s.Finished.Sub(s.Started).Seconds())
		}
		parts = append(parts, s.Name+" "+s.State+d)
	}
	return strings.Join(parts, ", ")
}

// typeNotes are the SDK's "(type: …, retryable: …)" annotations.
var typeNotes = regexp.MustCompile(` \(type: [^)]*\)`)

// briefError is the start of a workflow error without the SDK's
// annotations, which repeat the cause chain several times.
func briefError(err error) string {
	s := typeNotes.ReplaceAllString(err.Error(), "")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
