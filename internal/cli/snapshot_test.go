package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
	"github.com/sandgate/sandgate/sandbox"
)

// roleCrashy is a model that dies (exit 42) on a request carrying the
// marker, unless CRASHY_OFF is set.
const roleCrashy = "sandgate-test-crashy"

func init() { reexec.Register(roleCrashy, crashyMain) }

func crashyMain() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.Contains(b, []byte("CRASH-MARKER")) && os.Getenv("CRASHY_OFF") == "" {
			fmt.Fprintln(os.Stderr, "crashy: marker seen, dying")
			os.Exit(42)
		}
		fmt.Fprintln(w, "ok")
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], nil); err != nil {
		os.Exit(1)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func post(t *testing.T, u, body string) int {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestSnapshotShowAndReplay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the process sandbox needs root here")
	}
	p, err := sandbox.NewProcessProvider(sandbox.ProcessOptions{
		ScratchRoot:  t.TempDir(),
		CgroupParent: "sandgate-test-cli",
		Snapshot:     sandbox.SnapshotOptions{Root: t.TempDir(), OnFailure: true},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/sys/fs/cgroup/memory/sandgate-test-cli") })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := p.Start(ctx, sandbox.Spec{Name: "crashy", Command: []string{roleCrashy, "18090"}, Port: 18090,
		Limits: sandbox.Limits{MemoryBytes: 256 << 20, Pids: 64, WallClock: 60 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if code := post(t, s.Endpoint()+"/v1/chat/completions", `{"messages":[{"content":"hello"}]}`); code != 200 {
		t.Fatalf("normal request: %d", code)
	}
	if code := post(t, s.Endpoint()+"/v1/chat/completions", `{"messages":[{"content":"CRASH-MARKER"}]}`); code != http.StatusBadGateway {
		t.Fatalf("marker request: %d, want 502 from the relay", code)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("model did not die on the marker")
	}
	snaps := s.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("snapshots = %+v", snaps)
	}
	dir := snaps[0].Dir

	run := func(args ...string) (int, string) {
		// The model's output is teed to Stderr from another goroutine.
		var out syncBuffer
		code := Run(ctx, Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, args)
		return code, out.String()
	}
	code, out := run("snapshot", "show", dir)
	t.Logf("show:\n%s", out)
	for _, want := range []string{"reason:", "exit code 42", "CRASH-MARKER", "last 2 of 2 exchanges", "skipped"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("show (exit %d) lacks %q", code, want)
		}
	}
	// The same from the tarball a caller uploads.
	tgz := filepath.Join(t.TempDir(), "snap.tar.gz")
	f, _ := os.Create(tgz)
	if err := sandbox.TarSnapshot(dir, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code, out := run("snapshot", "show", "--last", "1", tgz); code != 0 || !strings.Contains(out, "last 1 of 2") {
		t.Fatalf("show tar.gz: %d\n%s", code, out)
	}

	code, out = run("snapshot", "replay", dir)
	t.Logf("replay:\n%s", out)
	if code != 0 || !strings.Contains(out, "reproduced: the model exited with code 42") || !strings.Contains(out, "replayed exchange 2") {
		t.Fatalf("replay: exit %d", code)
	}
	// Control: the same model with the crash switched off does not fail.
	code, out = run("snapshot", "replay", "--env", "CRASHY_OFF=1", dir)
	if code != exitReplayNotReproduced || !strings.Contains(out, "not reproduced") {
		t.Fatalf("replay of a fixed model: exit %d\n%s", code, out)
	}
	if code, out := run("snapshot", "show", t.TempDir()); code != ExitBadInput || !strings.Contains(out, "snapshot directory") {
		t.Fatalf("show of an empty dir: %d %s", code, out)
	}
}

func TestPickExchanges(t *testing.T) {
	tr := []sandbox.Exchange{{Seq: 1, Status: 200}, {Seq: 2, Status: 502, Err: "EOF"}, {Seq: 3, Status: 429, Err: "requests budget exhausted"}}
	if got := pickExchanges(tr, false); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("failures = %+v", got)
	}
	if got := pickExchanges(tr[:1], false); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("no failure: %+v", got)
	}
	if got := pickExchanges(tr, true); len(got) != 3 {
		t.Fatalf("all = %+v", got)
	}
	if got := mergeEnv([]string{"A=1", "B=REDACTED"}, []string{"B=2", "C=3"}); strings.Join(got, ",") != "A=1,B=2,C=3" {
		t.Fatalf("mergeEnv = %v", got)
	}
}
