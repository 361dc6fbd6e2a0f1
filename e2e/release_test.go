package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
	"github.com/sandgate/sandgate/internal/cli"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/workflows"
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	w := &testutil.LockedBuffer{}
	code := cli.Run(ctx, cli.Env{Stdout: w, Stderr: w, Logger: testLogger(t), Getenv: func(string) string { return "" }}, args)
	return code, w.String()
}

// TestDevDefaultReleasesAndLeakyIsBlocked runs `starter dev` as a user does,
// on the default example (released, exit 0) and on the leaky candidate
// (blocked, exit 3, failing gates named); then restarts the embedded stack on
// the same data dir and reads every Parquet file back with Arrow.
func TestDevDefaultReleasesAndLeakyIsBlocked(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	ports := []string{"--data-dir", dataDir, "--temporal-port", "0", "--ui-port", "0", "--s3-port", "0"}

	code, out := runCLI(t, ctx, append([]string{"dev", "-f", "../examples/release.yaml"}, ports...)...)
	t.Log(out)
	if code != cli.ExitReleased {
		t.Fatalf("dev on the default example: exit %d, want %d", code, cli.ExitReleased)
	}
	for _, want := range []string{"verdict: RELEASED", "web UI:  http://", "results: s3://sandgate/releases/release-"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	code, out = runCLI(t, ctx, append([]string{"dev", "-f", "../examples/release-leaky.yaml"}, ports...)...)
	t.Log(out)
	if code != cli.ExitBlocked {
		t.Fatalf("dev on the leaky example: exit %d, want %d", code, cli.ExitBlocked)
	}
	if !strings.Contains(out, "verdict: BLOCKED") || !strings.Contains(out, "failed gates: ") {
		t.Errorf("blocked output does not name the failing gates")
	}

	// Both releases' data survive a restart of the stack and read back with Arrow.
	env := startStack(t, ctx, dataDir)
	for _, name := range []string{"release.yaml", "release-leaky.yaml"} {
		cfg, raw, err := config.Load(filepath.Join("..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		id := cfg.ReleaseID(config.Digest(raw))
		ms := verifyParquet(t, ctx, env.store, id)
		adv, ok := ms[resultManifestKey(t, id, "adversarial")]
		if !ok || adv.Rows != int64(cfg.Suites.Adversarial.Prompts) {
			t.Errorf("%s: adversarial results hold %d rows, want one per prompt (%d)", id, adv.Rows, cfg.Suites.Adversarial.Prompts)
		}
		for _, k := range []string{layout(t, id).ReportMarkdown(), layout(t, id).ReportJSON()} {
			if ok, err := env.store.Exists(ctx, k); err != nil || !ok {
				t.Errorf("%s missing (err %v)", k, err)
			}
		}
	}
}

// TestMalformedConfigExitsTwoAndStartsNothing covers unknown fields, wrong
// types and a missing model: exit 2, the field named, no stack started.
func TestMalformedConfigExitsTwoAndStartsNothing(t *testing.T) {
	good, err := os.ReadFile("../examples/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml, field string
	}{
		{"unknown field", strings.Replace(string(good), "  version:", "  verison: x\n  version:", 1), "model.verison"},
		{"wrong type", strings.Replace(string(good), "seed: ", "seed: not-a-number #", 1), "seed"},
		{"missing model", "apiVersion: sandgate.dev/v1\nkind: Release\nseed: 1\nsuites:\n  adversarial:\n    prompts: 10\ngate:\n  rules:\n    - {name: a, metric: adversarial.asr, max: 0.1}\n", "model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "release.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			dataDir := filepath.Join(dir, "data")
			code, out := runCLI(t, context.Background(), "dev", "-f", f, "--data-dir", dataDir, "--temporal-port", "0", "--ui-port", "0", "--s3-port", "0")
			if code != cli.ExitBadInput {
				t.Fatalf("exit %d, want %d; output:\n%s", code, cli.ExitBadInput, out)
			}
			if !strings.Contains(out, tc.field+":") {
				t.Errorf("error does not name %q:\n%s", tc.field, out)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("data dir was created: something started (stat err %v)", err)
			}
		})
	}
}

// TestHistoryDoesNotGrowWithPrompts runs the same release with 500 and 5,000
// prompts: shards are fixed, so the history has the same number of events.
func TestHistoryDoesNotGrowWithPrompts(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := startStack(t, ctx, t.TempDir())
	const tq = "history-test"
	env.startWorker(t, ctx, tq)
	counts := map[int]int{}
	for _, n := range []int{500, 5000} {
		in := loadExample(t, "release.yaml", func(c *config.Release) {
			c.Suites.Adversarial.Prompts = n
			c.Suites.Adversarial.PartSize = 250
			c.Suites.Adversarial.Concurrency = 8
			c.Suites.Shadow.Requests = 20
		})
		res := waitResult(t, ctx, startRelease(t, ctx, env.client, tq, in))
		if res.Verdict == "" {
			t.Fatalf("%d prompts: no verdict", n)
		}
		counts[n] = historyEvents(t, ctx, env.client, in.ReleaseID)
		t.Logf("%d prompts: %d history events, verdict %s", n, counts[n], res.Verdict)
		if os.Getenv("SANDGATE_RECORD_HISTORY") != "" && n == 500 {
			recordHistory(t, ctx, env, in.ReleaseID, os.Getenv("SANDGATE_RECORD_HISTORY"))
		}
	}
	// Activities that finish together share a workflow task, so counts vary
	// by a few events between runs; growth with prompts would be ~10x.
	if counts[5000] > counts[500]*5/4 {
		t.Errorf("history grew with prompts: %d events for 500, %d for 5000", counts[500], counts[5000])
	}
}

// TestWorkerKilledMidAdversarialResumesExactlyOnce SIGKILLs a worker process
// in the middle of the adversarial stage, starts a new one, and checks the
// release completes with exactly one result row per prompt.
func TestWorkerKilledMidAdversarialResumesExactlyOnce(t *testing.T) {
	killMidAdversarial(t, 1)
}

// TestThreeWorkersOneKilledCompletesExactlyOnce runs one release on three
// worker processes, SIGKILLs the one holding the sandbox session, and checks
// the other two finish it with exactly one result row per prompt.
func TestThreeWorkersOneKilledCompletesExactlyOnce(t *testing.T) {
	killMidAdversarial(t, 3)
}

// sandboxHolder is the worker process whose child is the sandbox init shim.
func sandboxHolder(t *testing.T, workers []*exec.Cmd) *exec.Cmd {
	t.Helper()
	for _, w := range workers {
		// Children are listed per thread: the shim is forked from whichever
		// thread ran the provision activity.
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", w.Process.Pid))
		for _, task := range tasks {
			kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", w.Process.Pid, task.Name()))
			for _, k := range strings.Fields(string(kids)) {
				comm, _ := os.ReadFile("/proc/" + k + "/cmdline")
				if strings.HasPrefix(string(comm), "sandgate-sandbox-init") {
					return w
				}
			}
		}
	}
	return nil
}

func killMidAdversarial(t *testing.T, workers int) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "worker")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	env := startStack(t, ctx, t.TempDir())
	const tq = "kill-test"
	startProc := func(name string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "--task-queue", tq)
		cmd.Env = append(os.Environ(),
			"TEMPORAL_ADDRESS="+env.stack.FrontendAddress(),
			"TEMPORAL_NAMESPACE="+env.stack.Namespace(),
			"AWS_ENDPOINT_URL_S3="+env.s3cfg.Endpoint,
			"AWS_ACCESS_KEY_ID="+env.s3cfg.AccessKeyID,
			"AWS_SECRET_ACCESS_KEY="+env.s3cfg.SecretAccessKey,
			"AWS_REGION="+env.s3cfg.Region,
			"SANDGATE_BUCKET="+env.s3cfg.Bucket,
			"TMPDIR="+t.TempDir(),
		)
		log, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = log.Close()
			if t.Failed() {
				b, _ := os.ReadFile(log.Name())
				t.Logf("%s log:\n%s", name, b)
			}
		})
		return cmd
	}

	const prompts = 3000
	in := loadExample(t, "release.yaml", func(c *config.Release) {
		c.Suites.Adversarial.Prompts = prompts
		c.Suites.Adversarial.Shards = 3
		c.Suites.Adversarial.PartSize = 50
		c.Suites.Adversarial.Concurrency = 2
		c.Suites.Shadow.Requests = 20
	})
	var procs []*exec.Cmd
	for i := 1; i <= workers; i++ {
		procs = append(procs, startProc(fmt.Sprintf("worker-%d", i)))
	}
	run := startRelease(t, ctx, env.client, tq, in)

	// Kill once a few parts are on S3 but the stage is far from done.
	prefix := layout(t, in.ReleaseID).Prefix() + "results/adversarial/"
	eventually(t, ctx, 3*time.Minute, "adversarial parts written", func() error {
		objs, err := env.store.List(ctx, prefix)
		if err != nil {
			return err
		}
		if len(objs) < 4 {
			return fmt.Errorf("%d parts so far", len(objs))
		}
		return nil
	})
	victim := sandboxHolder(t, procs)
	if victim == nil {
		t.Fatal("no worker holds the sandbox")
	}
	objs, _ := env.store.List(ctx, prefix)
	if err := syscall.Kill(victim.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.Wait()
	t.Logf("killed the sandbox's worker (one of %d) with %d adversarial parts on S3", workers, len(objs))
	if len(objs) >= prompts/50 {
		t.Fatalf("the stage finished before the kill (%d parts); nothing was tested", len(objs))
	}
	if workers == 1 {
		startProc("worker-2")
	}
	res := waitResult(t, ctx, run)
	if res.Verdict == "" {
		t.Fatal("no verdict")
	}
	ms := verifyParquet(t, ctx, env.store, in.ReleaseID)
	adv := ms[resultManifestKey(t, in.ReleaseID, "adversarial")]
	if adv.Rows != prompts {
		t.Fatalf("adversarial manifest: %d rows, want %d", adv.Rows, prompts)
	}
	ids := map[string]int{}
	dir := t.TempDir()
	for i, f := range adv.Files {
		path := filepath.Join(dir, fmt.Sprintf("p%d.parquet", i))
		if _, err := env.store.Download(ctx, f.Key, path); err != nil {
			t.Fatal(err)
		}
		col, err := arrowcheck.ReadColumnStrings(path, "prompt_id")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range col {
			ids[id]++
		}
	}
	if len(ids) != prompts {
		t.Errorf("%d distinct prompts have results, want %d (rows lost)", len(ids), prompts)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("prompt %s has %d result rows, want exactly 1", id, n)
		}
	}
	var provision workflows.StageStatus
	for _, s := range res.Stages {
		if s.Name == workflows.StageProvision {
			provision = s
		}
	}
	t.Logf("provision after the kill: %s", provision.Summary)
}
