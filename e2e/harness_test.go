// Package e2e runs whole releases on the real parts: the embedded Temporal
// server (SQLite), the embedded S3-compatible server on loopback, the process
// sandbox (as root) and the reference model; every Parquet file is read back
// with Arrow, a reader independent of the writer.
package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/datasets/arrowcheck"
	"github.com/sandgate/sandgate/devstack"
	"github.com/sandgate/sandgate/internal/app"
	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/objstore"
	"github.com/sandgate/sandgate/workflows"

	// Roles the test binary re-runs itself as inside the sandbox.
	_ "github.com/sandgate/sandgate/refmodel"
	_ "github.com/sandgate/sandgate/sandbox"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the process sandbox needs root here; run the tests as root (CI does)")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// stackEnv is a running embedded stack with clients for it.
type stackEnv struct {
	stack  *devstack.Stack
	client client.Client
	store  *objstore.Store
	s3cfg  objstore.Config
}

func startStack(t *testing.T, ctx context.Context, dataDir string) *stackEnv {
	t.Helper()
	return startStackWithCodec(t, ctx, dataDir, nil)
}

// startStackWithCodec is startStack with a client (and so workers started
// from it) encoding payloads with pc, as a worker given codec keys does;
// nil means the SDK's default encoding.
func startStackWithCodec(t *testing.T, ctx context.Context, dataDir string, pc converter.PayloadCodec) *stackEnv {
	t.Helper()
	opt := devstack.Options{DataDir: dataDir, FrontendPort: 0, UIPort: devstack.NoUI, S3Port: 0, Logger: testLogger(t)}
	st, err := devstack.Start(ctx, opt)
	if err != nil {
		t.Fatalf("start devstack: %v", err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	c, err := app.Dial(ctx, app.TemporalConfig{Address: st.FrontendAddress(), Namespace: st.Namespace(), Codec: pc}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s3cfg := objstore.Config{Endpoint: st.S3Endpoint(), Region: devstack.DevRegion, Bucket: st.Bucket(),
		AccessKeyID: devstack.DevAccessKeyID, SecretAccessKey: devstack.DevSecretAccessKey, PathStyle: true}
	store, err := objstore.New(ctx, s3cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &stackEnv{stack: st, client: c, store: store, s3cfg: s3cfg}
}

// startWorker runs an in-process worker on its own task queue.
func (e *stackEnv) startWorker(t *testing.T, ctx context.Context, taskQueue string) {
	t.Helper()
	e.startWorkerWithKey(t, ctx, taskQueue, nil)
}

// startWorkerWithKey runs a worker that signs attestations with key; the
// returned func stops it (also run at cleanup).
func (e *stackEnv) startWorkerWithKey(t *testing.T, ctx context.Context, taskQueue string, key ed25519.PrivateKey) func() {
	t.Helper()
	acts, err := app.NewActivities(ctx, e.s3cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	acts.TempDir = t.TempDir()
	acts.AttestationKey = key
	w := app.NewWorker(e.client, taskQueue, acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			w.Stop()
			_ = acts.Close(context.Background())
		})
	}
	t.Cleanup(stop)
	return stop
}

// loadExample reads an example config and lets the test change it.
func loadExample(t *testing.T, name string, edit func(*config.Release)) workflows.ReleaseInput {
	t.Helper()
	cfg, raw, err := config.Load(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(cfg)
		raw = append(raw, b...)
	}
	digest := config.Digest(raw)
	return workflows.ReleaseInput{ReleaseID: cfg.ReleaseID(digest), Config: *cfg, ConfigSHA256: digest}
}

func startRelease(t *testing.T, ctx context.Context, c client.Client, taskQueue string, in workflows.ReleaseInput) client.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.ReleaseID, TaskQueue: taskQueue}, workflows.ReleaseWorkflow, in)
	if err != nil {
		t.Fatalf("start release: %v", err)
	}
	return run
}

func waitResult(t *testing.T, ctx context.Context, run client.WorkflowRun) workflows.ReleaseResult {
	t.Helper()
	var res workflows.ReleaseResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("release %s failed: %v", run.GetID(), err)
	}
	return res
}

// historyEvents counts the events of a closed workflow.
func historyEvents(t *testing.T, ctx context.Context, c client.Client, id string) int {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, "", false, 0)
	n := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// verifyParquet reads every manifest under the release prefix and checks
// each Parquet file it lists with Arrow: the file exists, its sha256 matches
// and its row count is the manifest's. It also checks no Parquet file is
// left out of every manifest. It returns the manifests by key.
func verifyParquet(t *testing.T, ctx context.Context, store *objstore.Store, releaseID string) map[string]datasets.Manifest {
	t.Helper()
	objs, err := store.List(ctx, layout(t, releaseID).Prefix())
	if err != nil {
		t.Fatal(err)
	}
	manifests := map[string]datasets.Manifest{}
	listed := map[string]bool{}
	dir := t.TempDir()
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, "manifest.json") || strings.Contains(o.Key, "_shard-") {
			continue
		}
		b, err := store.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		m, err := datasets.ParseManifest(b)
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		manifests[o.Key] = m
		var total int64
		for i, f := range m.Files {
			listed[f.Key] = true
			path := filepath.Join(dir, fmt.Sprintf("f%d-%d.parquet", len(manifests), i))
			info, err := store.Download(ctx, f.Key, path)
			if err != nil {
				t.Fatalf("%s lists %s: %v", o.Key, f.Key, err)
			}
			if f.SHA256 != "" && info.SHA256 != f.SHA256 {
				t.Errorf("%s: sha256 %s, manifest says %s", f.Key, info.SHA256, f.SHA256)
			}
			n, err := arrowcheck.CountRowsArrow(path)
			if err != nil {
				t.Fatalf("arrow cannot read %s: %v", f.Key, err)
			}
			if n != f.Rows {
				t.Errorf("%s: arrow reads %d rows, manifest says %d", f.Key, n, f.Rows)
			}
			total += n
		}
		if total != m.Rows {
			t.Errorf("%s: files hold %d rows, manifest says %d", o.Key, total, m.Rows)
		}
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") && !listed[o.Key] {
			t.Errorf("%s is in no manifest", o.Key)
		}
	}
	if len(manifests) == 0 {
		t.Fatalf("no manifests under %s", layout(t, releaseID).Prefix())
	}
	return manifests
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = f(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, last)
}

// recordHistory writes a closed workflow's history as JSON, for the replay
// test in workflows/testdata (SANDGATE_RECORD_HISTORY=path go test ./e2e -run History).
func recordHistory(t *testing.T, ctx context.Context, env *stackEnv, id, path string) {
	t.Helper()
	it := env.client.GetWorkflowHistory(ctx, id, "", false, 0)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events to %s", len(h.Events), path)
}

func layout(t *testing.T, releaseID string) datasets.Layout {
	t.Helper()
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func resultManifestKey(t *testing.T, releaseID, stage string) string {
	t.Helper()
	k, err := layout(t, releaseID).ResultManifest(stage)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
