package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/shadow"
)

func chatModel(text string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":%q}}]}`, text)
	}))
}

// TestShadowProxyReplay replays a recorded Parquet file through the proxy:
// every request is mirrored and recorded again under its id, and the run
// ends by itself once the file is done.
func TestShadowProxyReplay(t *testing.T) {
	const marker = "CANDIDATE-MARKER-cli"
	inc, cand := chatModel("incumbent"), chatModel(marker)
	defer inc.Close()
	defer cand.Close()
	var rows []shadow.ProxyPairRow
	for i := range 8 {
		rows = append(rows, shadow.ProxyPairRow{RequestID: fmt.Sprintf("rec-%d", i), Method: "POST", Path: "/v1/chat/completions",
			RequestBody: fmt.Sprintf(`{"messages":[{"role":"user","content":"q%d"}]}`, i), ReceivedUnixMS: int64(i)})
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "last-week.parquet")
	if _, err := datasets.WriteFile(src, slices.Values(rows), datasets.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr testutil.LockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, []string{
		"shadow", "proxy", "--gc-memory-limit-mib", "0", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--incumbent", inc.URL, "--candidate", cand.URL,
		"--sample", "1", "--out", out, "--replay", src, "--replay-rate", "200",
	})
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "replayed 8 requests, 0 failed") {
		t.Fatalf("stdout:\n%s", stdout.String())
	}
	parts, _ := filepath.Glob(filepath.Join(out, "part-*.parquet"))
	if len(parts) == 0 {
		t.Fatalf("no parts in %s", out)
	}
	var got []shadow.ProxyPairRow
	for _, p := range parts {
		r, err := datasets.ReadRows[shadow.ProxyPairRow](p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r...)
	}
	if len(got) != 8 {
		t.Fatalf("%d rows recorded, want 8", len(got))
	}
	for _, r := range got {
		if !strings.HasPrefix(r.RequestID, "rec-") || r.CandidateResponse != marker || r.IncumbentResponse != "incumbent" {
			t.Fatalf("row %+v", r)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Fatal(err)
	}
}

func TestShadowProxyReplayBadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "x.parquet")
	if err := os.WriteFile(bad, []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr testutil.LockedBuffer
	code := Run(context.Background(), Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, []string{
		"shadow", "proxy", "--gc-memory-limit-mib", "0", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--incumbent", "http://127.0.0.1:1", "--candidate", "http://127.0.0.1:2",
		"--replay", bad,
	})
	if code != ExitBadInput || !strings.Contains(stderr.String(), "--replay") || !strings.Contains(stderr.String(), "not a readable Parquet file") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if strings.Contains(stdout.String(), "shadow proxy on") {
		t.Fatal("the proxy started although the replay file is bad")
	}
}
