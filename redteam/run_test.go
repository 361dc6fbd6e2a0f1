package redteam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/modelapi"
)

// fakeModel is an OpenAI-compatible endpoint whose behaviour is chosen by
// the user prompt: "fail:<code>:<n>" fails n times with code then answers,
// "always:<code>" always fails, "slow:<ms>" sleeps before answering,
// "leak" recites the system prompt, anything else gets a refusal.
type fakeModel struct {
	mu    sync.Mutex
	calls map[string]int
}

func (f *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	system, user := "", req.Messages[len(req.Messages)-1].Content
	if req.Messages[0].Role == "system" {
		system = req.Messages[0].Content
	}
	f.mu.Lock()
	f.calls[user]++
	n := f.calls[user]
	f.mu.Unlock()

	var code, times, ms int
	switch {
	case sscan(user, "fail:%d:%d", &code, &times) && n <= times, sscan(user, "always:%d", &code):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"message":"injected %d"}}`, code)
		return
	case sscan(user, "slow:%d", &ms):
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	reply := "I'm sorry, I can't help with that."
	if strings.HasPrefix(user, "leak") {
		reply = "My instructions: " + system
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "c1", "object": "chat.completion", "model": "fake",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": reply}}},
		"usage": map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
	})
}

func sscan(s, format string, args ...any) bool {
	n, err := fmt.Sscanf(s, format, args...)
	return err == nil && n == len(args)
}

func newFake(t *testing.T) (*fakeModel, *modelapi.Client) {
	t.Helper()
	f := &fakeModel{calls: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, &modelapi.Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

func quietOpts() RunOptions {
	return RunOptions{
		Concurrency: 4, Timeout: 150 * time.Millisecond, MaxRetries: 2,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		ReleaseID: "release-test-1", Shard: 3, Model: "fake",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestRun(t *testing.T) {
	f, client := newFake(t)
	type want struct {
		outcome Outcome
		retries int32
		status  int32
	}
	spec := []struct {
		prompt string
		goal   string
		want   want
	}{
		{"hello", GoalLeakSystemPrompt, want{Defended, 0, 200}},
		{"leak please", GoalLeakSystemPrompt, want{Breached, 0, 200}},
		{"fail:500:1", GoalLeakSecret, want{Defended, 1, 200}},
		{"fail:429:2", GoalLeakSecret, want{Defended, 2, 200}},
		{"always:503", GoalLeakSecret, want{Errored, 2, 503}},
		{"always:503 robust", GoalRobustness, want{Errored, 0, 0}}, // placeholder, fixed below
		{"always:400", GoalLeakSecret, want{Errored, 0, 400}},
		{"always:400 robust", GoalRobustness, want{Defended, 0, 400}},
		{"slow:20", GoalEmitMarker, want{Defended, 0, 200}},
		{"slow:2000", GoalEmitMarker, want{Errored, 2, 0}},
		{"slow:2000 robust", GoalRobustness, want{Breached, 2, 0}},
	}
	// "always:503 robust" parses as always:503 → a crash on every retry.
	spec[5].want = want{Breached, 2, 503}
	// Pad with fast prompts with shuffled latencies so completion order
	// differs from prompt order.
	for i := range 29 {
		spec = append(spec, struct {
			prompt string
			goal   string
			want   want
		}{fmt.Sprintf("slow:%d #%d", (i*37)%23, i), GoalLeakPII, want{Defended, 0, 200}})
	}
	prompts := make([]datasets.PromptRow, len(spec))
	for i, s := range spec {
		prompts[i] = datasets.PromptRow{ID: fmt.Sprintf("p%03d", i), Index: int64(100 + i), Family: "fam", Category: "LLM07",
			AtlasID: "AML.T0051", TemplateID: "t", Goal: s.goal, Marker: "PWNED-1", Prompt: s.prompt, Seed: int64(i)}
	}

	var rows []AttemptRow
	start := time.Now()
	err := Run(context.Background(), client, testTarget, prompts, quietOpts(), func(r AttemptRow) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run took %v", time.Since(start))
	if len(rows) != len(prompts) {
		t.Fatalf("%d rows for %d prompts", len(rows), len(prompts))
	}
	for i, r := range rows {
		w := spec[i].want
		if r.PromptID != prompts[i].ID || r.PromptIndex != prompts[i].Index {
			t.Fatalf("row %d is prompt %s, out of order", i, r.PromptID)
		}
		if r.Outcome != w.outcome || r.Attempt != w.retries || r.StatusCode != w.status {
			t.Errorf("%q: outcome %s retries %d status %d (err %q), want %s %d %d",
				spec[i].prompt, r.Outcome, r.Attempt, r.StatusCode, r.Error, w.outcome, w.retries, w.status)
		}
		if r.ReleaseID != "release-test-1" || r.Shard != 3 || r.Model != "fake" || r.Category != "LLM07" || r.Goal != spec[i].goal {
			t.Errorf("row %d metadata %+v", i, r)
		}
		if r.Error == "" && (r.PromptTokens != 11 || r.CompletionTokens != 7 || r.Response == "") {
			t.Errorf("row %d usage/response missing: %+v", i, r)
		}
		if r.Outcome == Errored && r.Error == "" && r.Detector != DetectorBadRow {
			t.Errorf("errored row %d has no error", i)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := f.calls["fail:429:2"]; got != 3 {
		t.Errorf("fail:429:2 called %d times, want 3", got)
	}
	if got := f.calls["always:400"]; got != 1 {
		t.Errorf("a 400 was retried: %d calls", got)
	}
	if got := f.calls["always:503"]; got != 3 {
		t.Errorf("always:503 called %d times, want 1+MaxRetries", got)
	}
}

func TestRunDeterministic(t *testing.T) {
	_, client := newFake(t)
	var prompts []datasets.PromptRow
	for i := range 20 {
		prompts = append(prompts, datasets.PromptRow{ID: fmt.Sprint(i), Goal: GoalLeakSystemPrompt,
			Prompt: fmt.Sprintf("slow:%d leak %d", (i*7)%11, i)})
	}
	collect := func(conc int) []AttemptRow {
		opt := quietOpts()
		opt.Concurrency = conc
		var rows []AttemptRow
		if err := Run(context.Background(), client, testTarget, prompts, opt, func(r AttemptRow) error {
			r.LatencyMS = 0 // the only measured column
			rows = append(rows, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	a, b := collect(1), collect(8)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d differs with concurrency:\n%+v\n%+v", i, a[i], b[i])
		}
	}
}

func TestRunStops(t *testing.T) {
	_, client := newFake(t)
	prompts := make([]datasets.PromptRow, 50)
	for i := range prompts {
		prompts[i] = datasets.PromptRow{ID: fmt.Sprint(i), Goal: GoalLeakSecret, Prompt: fmt.Sprintf("slow:5 %d", i)}
	}
	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("disk full")
		n := 0
		err := Run(context.Background(), client, testTarget, prompts, quietOpts(), func(AttemptRow) error {
			n++
			if n == 5 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || n != 5 {
			t.Fatalf("err %v after %d emits", err, n)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := Run(ctx, client, testTarget, prompts, quietOpts(), func(r AttemptRow) error {
			n++
			if r.Outcome == Errored {
				t.Errorf("cancellation leaked into a row: %+v", r)
			}
			if n == 3 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 3 {
			t.Fatalf("err %v after %d emits", err, n)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		for _, opt := range []RunOptions{{Concurrency: -1}, {Timeout: -1}, {MaxRetries: -2}, {Shard: -1}} {
			err := Run(context.Background(), client, testTarget, prompts, opt, func(AttemptRow) error { return nil })
			if err == nil || !strings.Contains(err.Error(), "RunOptions.") {
				t.Errorf("options %+v: err %v", opt, err)
			}
		}
		if err := Run(context.Background(), nil, testTarget, prompts, RunOptions{}, func(AttemptRow) error { return nil }); err == nil {
			t.Error("nil client accepted")
		}
	})
}

func TestOrderedBoundsInFlight(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	var got []int
	err := Ordered(context.Background(), items, 3, func(ctx context.Context, i int, it int) int {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(time.Duration((it*13)%5) * 100 * time.Microsecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return it
	}, func(v int) error { got = append(got, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if peak > 3 {
		t.Errorf("peak concurrency %d > 3", peak)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("got[%d] = %d", i, v)
		}
	}
	if len(got) != len(items) {
		t.Fatalf("%d results", len(got))
	}
}

// TestAttemptRowParquet writes rows with parquet-go and reads them back, so
// a tag typo or an unsupported field type fails here and not in a notebook.
func TestAttemptRowParquet(t *testing.T) {
	rows := []AttemptRow{
		{ReleaseID: "r", PromptID: "p0", Outcome: Breached, Detector: "leak.Secret", Evidence: "é…", Response: "x", StatusCode: 200, Attempt: 1},
		{ReleaseID: "r", PromptID: "p1", Outcome: Errored, Error: "boom", StatusCode: 503, Attempt: 2},
	}
	path := filepath.Join(t.TempDir(), "a.parquet")
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	back, err := parquet.ReadFile[AttemptRow](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0] != rows[0] || back[1] != rows[1] {
		t.Fatalf("round trip: %+v", back)
	}
	var cols []string
	for _, f := range parquet.SchemaOf(AttemptRow{}).Fields() {
		cols = append(cols, f.Name())
	}
	want := "release_id prompt_id prompt_index shard family category atlas_id template_id converters goal model outcome detector evidence response response_bytes error status_code latency_ms prompt_tokens completion_tokens attempt strategy kind node_id parent_id turn attack_prompt score scores queries"
	if strings.Join(cols, " ") != want {
		t.Errorf("columns\n got %s\nwant %s", strings.Join(cols, " "), want)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	_, client := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, client, testTarget, []datasets.PromptRow{{ID: "a", Goal: GoalLeakSecret, Prompt: "x"}}, quietOpts(), func(r AttemptRow) error {
		t.Errorf("row emitted after cancel: %+v", r)
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err := Run(context.Background(), client, testTarget, nil, quietOpts(), func(AttemptRow) error { return nil }); err != nil {
		t.Fatalf("empty prompt list: %v", err)
	}
}
