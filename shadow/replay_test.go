package shadow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sandgate/sandgate/modelapi"
)

const marker = "CANDIDATE-ONLY-7f3a"

// chatServer speaks OpenAI chat completions; reply computes the answer from
// the last message and may block or fail.
func chatServer(t *testing.T, reply func(r *http.Request, prompt string) (string, int)) (*httptest.Server, *bodies) {
	t.Helper()
	seen := &bodies{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		seen.add(string(raw))
		var req modelapi.CompletionRequest
		if err := json.Unmarshal(raw, &req); err != nil || len(req.Messages) == 0 {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		content, code := reply(r, req.Messages[len(req.Messages)-1].Content)
		if code != http.StatusOK {
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":{"message":%q}}`, content)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(modelapi.Completion{
			ID: "c1", Object: modelapi.ObjectChatCompletion, Model: req.Model,
			Choices: []modelapi.Choice{{Message: &modelapi.Message{Role: "assistant", Content: content}, FinishReason: "stop"}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

type bodies struct {
	mu  sync.Mutex
	all []string
}

func (b *bodies) add(s string) { b.mu.Lock(); b.all = append(b.all, s); b.mu.Unlock() }
func (b *bodies) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.all...)
}

func client(srv *httptest.Server) *modelapi.Client {
	return &modelapi.Client{BaseURL: srv.URL, HTTP: srv.Client()}
}

func requests(n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{ID: fmt.Sprintf("r%03d", i), Messages: []modelapi.Message{
			{Role: "system", Content: "be brief"},
			{Role: "user", Content: fmt.Sprintf("question %d", i)},
		}}
	}
	return reqs
}

func collect(rows *[]PairRow) func(PairRow) error {
	return func(r PairRow) error { *rows = append(*rows, r); return nil }
}

func TestReplayMarkerStaysInCandidateColumn(t *testing.T) {
	var incCalls atomic.Int64
	inc, incSeen := chatServer(t, func(_ *http.Request, p string) (string, int) {
		incCalls.Add(1)
		return "answer to " + p, http.StatusOK
	})
	cand, _ := chatServer(t, func(_ *http.Request, p string) (string, int) {
		return marker + " answer to " + p, http.StatusOK
	})
	reqs := requests(12)
	var rows []PairRow
	err := Replay(t.Context(), client(inc), client(cand), reqs,
		ReplayOptions{ReleaseID: "rel-1", IncumbentModel: "inc", CandidateModel: "cand", Concurrency: 3}, collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(reqs) {
		t.Fatalf("%d rows, want %d", len(rows), len(reqs))
	}
	if got := incCalls.Load(); got != int64(2*len(reqs)) {
		t.Errorf("incumbent called %d times, want %d (once plus the noise-floor repeat)", got, 2*len(reqs))
	}
	var acc Accumulator
	for i, r := range rows {
		if r.RequestID != reqs[i].ID {
			t.Fatalf("row %d is %q, want %q: rows must come out in request order", i, r.RequestID, reqs[i].ID)
		}
		if !strings.Contains(r.CandidateResponse, marker) {
			t.Errorf("row %d: candidate response %q lacks the marker", i, r.CandidateResponse)
		}
		// The marker may live in candidate_response and nowhere else.
		r2 := r
		r2.CandidateResponse = ""
		if b, _ := json.Marshal(r2); bytes.Contains(b, []byte(marker)) {
			t.Errorf("row %d: marker leaked outside candidate_response: %s", i, b)
		}
		want := fmt.Sprintf("answer to question %d", i)
		if r.IncumbentResponse != want || r.IncumbentRepeatResponse != want {
			t.Errorf("row %d: incumbent %q / %q, want %q", i, r.IncumbentResponse, r.IncumbentRepeatResponse, want)
		}
		if r.Prompt != fmt.Sprintf("question %d", i) || r.ReleaseID != "rel-1" {
			t.Errorf("row %d: prompt %q release %q", i, r.Prompt, r.ReleaseID)
		}
		if r.IncumbentStatus != StatusOK || r.CandidateStatus != StatusOK || r.IncumbentRepeatStatus != StatusOK || r.Error != "" {
			t.Errorf("row %d: statuses %s/%s/%s err %q", i, r.IncumbentStatus, r.CandidateStatus, r.IncumbentRepeatStatus, r.Error)
		}
		if r.ExactMatch || !r.NoiseExactMatch || r.NoiseSimilarity != 1 {
			t.Errorf("row %d: exact %v noise exact %v noise sim %v", i, r.ExactMatch, r.NoiseExactMatch, r.NoiseSimilarity)
		}
		// The marker tokenises to 3 new tokens ("candidate", "only", "7f3a") beside the 4 shared: Jaccard 4/7.
		if !near(r.Similarity, 4.0/7) {
			t.Errorf("row %d: similarity %v", i, r.Similarity)
		}
		acc.Add(r)
	}
	for _, b := range incSeen.list() {
		if strings.Contains(b, marker) {
			t.Fatalf("candidate output reached the incumbent: %s", b)
		}
	}
	s := acc.Summary()
	if sb, _ := json.Marshal(s); bytes.Contains(sb, []byte(marker)) {
		t.Fatal("marker in summary")
	}
	if s.Requests != 12 || s.ExactAgreement != 0 || s.NoiseFloorAgreement != 1 || s.Compared != 12 {
		t.Fatalf("summary %+v", s)
	}
}

// The candidate is a mirror: the incumbent's repeat must go out while the
// candidate is still working on the same request.
func TestReplayCandidateNeverDelaysIncumbent(t *testing.T) {
	var mu sync.Mutex
	repeated := map[string]chan struct{}{}
	calls := map[string]int{}
	gate := func(p string) chan struct{} {
		if repeated[p] == nil {
			repeated[p] = make(chan struct{})
		}
		return repeated[p]
	}
	inc, _ := chatServer(t, func(_ *http.Request, p string) (string, int) {
		mu.Lock()
		calls[p]++
		if calls[p] == 2 {
			close(gate(p))
		}
		mu.Unlock()
		return "fixed", http.StatusOK
	})
	cand, _ := chatServer(t, func(r *http.Request, p string) (string, int) {
		mu.Lock()
		ch := gate(p)
		mu.Unlock()
		select {
		case <-ch:
			time.Sleep(50 * time.Millisecond) // so latency ordering is unambiguous
			return "fixed", http.StatusOK
		case <-time.After(5 * time.Second):
			return "incumbent repeat never came while the candidate was pending", http.StatusOK
		case <-r.Context().Done():
			return "", http.StatusServiceUnavailable
		}
	})
	var rows []PairRow
	if err := Replay(t.Context(), client(inc), client(cand), requests(4), ReplayOptions{Concurrency: 2}, collect(&rows)); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.CandidateResponse != "fixed" {
			t.Fatalf("row %d: %s", i, r.CandidateResponse)
		}
		// The candidate answered only after the repeat was sent, i.e. after the
		// incumbent's first reply, plus a margin for scheduling noise.
		if !(r.CandidateLatencyMS > r.IncumbentLatencyMS) {
			t.Errorf("row %d: candidate %.2f ms should exceed incumbent %.2f ms", i, r.CandidateLatencyMS, r.IncumbentLatencyMS)
		}
		if !r.ExactMatch {
			t.Errorf("row %d: identical answers not matched", i)
		}
	}
}

func TestReplayOrderAndConcurrencyBound(t *testing.T) {
	const limit = 3
	var inFlight, peak atomic.Int64
	track := func() func() {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return func() { inFlight.Add(-1) }
	}
	// Later requests answer faster, so completion order is the reverse of request order.
	delay := func(p string) time.Duration {
		var i int
		fmt.Sscanf(p, "question %d", &i)
		return time.Duration(20-i) * time.Millisecond
	}
	inc, _ := chatServer(t, func(_ *http.Request, p string) (string, int) {
		defer track()()
		time.Sleep(delay(p))
		return p, http.StatusOK
	})
	cand, _ := chatServer(t, func(_ *http.Request, p string) (string, int) {
		time.Sleep(delay(p))
		return p, http.StatusOK
	})
	reqs := requests(20)
	var rows []PairRow
	if err := Replay(t.Context(), client(inc), client(cand), reqs, ReplayOptions{Concurrency: limit}, collect(&rows)); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.RequestID != reqs[i].ID {
			t.Fatalf("row %d is %s", i, r.RequestID)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d incumbent calls in flight, limit %d", p, limit)
	}
}

func TestReplayFailuresAreRecorded(t *testing.T) {
	inc, _ := chatServer(t, func(_ *http.Request, p string) (string, int) {
		if p == "question 2" {
			return "overloaded", http.StatusServiceUnavailable
		}
		return "ok " + p, http.StatusOK
	})
	cand, _ := chatServer(t, func(r *http.Request, p string) (string, int) {
		switch p {
		case "question 0":
			select { // slower than the per-call timeout
			case <-time.After(20 * time.Second):
			case <-r.Context().Done():
			}
			return "late", http.StatusOK
		case "question 1":
			return "boom", http.StatusInternalServerError
		}
		return "ok " + p, http.StatusOK
	})
	var rows []PairRow
	err := Replay(t.Context(), client(inc), client(cand), requests(4),
		ReplayOptions{Timeout: time.Second}, collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ inc, cand, rep string }{
		{StatusOK, StatusTimeout, StatusOK},
		{StatusOK, "http_500", StatusOK},
		{"http_503", StatusOK, StatusSkipped},
		{StatusOK, StatusOK, StatusOK},
	}
	for i, w := range want {
		r := rows[i]
		if r.IncumbentStatus != w.inc || r.CandidateStatus != w.cand || r.IncumbentRepeatStatus != w.rep {
			t.Errorf("row %d: statuses %s/%s/%s, want %s/%s/%s", i, r.IncumbentStatus, r.CandidateStatus, r.IncumbentRepeatStatus, w.inc, w.cand, w.rep)
		}
		if (w.inc != StatusOK || w.cand != StatusOK) && r.Error == "" {
			t.Errorf("row %d: failure without an error message", i)
		}
	}
	if !strings.HasPrefix(rows[1].Error, "candidate: ") || !strings.Contains(rows[1].Error, "boom") {
		t.Errorf("row 1 error %q", rows[1].Error)
	}
	if rows[0].CandidateResponse != "" || rows[0].IncumbentResponse != "ok question 0" {
		t.Errorf("row 0: %+v", rows[0])
	}
	var acc Accumulator
	for _, r := range rows {
		acc.Add(r)
	}
	if s := acc.Summary(); s.Errors != 2 || s.IncumbentErrors != 1 || s.Compared != 1 || s.NoiseCompared != 3 {
		t.Errorf("summary %+v", s)
	}
}

func TestReplayStops(t *testing.T) {
	inc, _ := chatServer(t, func(r *http.Request, p string) (string, int) { return p, http.StatusOK })
	slow, _ := chatServer(t, func(r *http.Request, p string) (string, int) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
		return p, http.StatusOK
	})

	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("disk full")
		n := 0
		err := Replay(t.Context(), client(inc), client(inc), requests(10), ReplayOptions{}, func(PairRow) error {
			if n++; n == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || n != 3 {
			t.Fatalf("err %v after %d rows", err, n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		var rows []PairRow
		err := Replay(ctx, client(inc), client(slow), requests(10), ReplayOptions{}, collect(&rows))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		if time.Since(start) > 5*time.Second || len(rows) != 0 {
			t.Fatalf("cancel took %v and emitted %d rows", time.Since(start), len(rows))
		}
	})
	t.Run("bad input", func(t *testing.T) {
		reqs := requests(3)
		reqs[1].ID = reqs[0].ID
		reqs[2].Messages = nil
		err := Replay(t.Context(), client(inc), client(inc), reqs, ReplayOptions{}, collect(new([]PairRow)))
		if err == nil || !strings.Contains(err.Error(), "requests[1]") || !strings.Contains(err.Error(), "requests[2]") {
			t.Fatalf("err %v", err)
		}
		if err := Replay(t.Context(), nil, client(inc), nil, ReplayOptions{}, collect(new([]PairRow))); err == nil {
			t.Fatal("nil client accepted")
		}
	})
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := "ab€cd" // € is 3 bytes at offset 2
	for n, want := range map[int]string{2: "ab", 3: "ab", 4: "ab", 5: "ab€", 10: s} {
		if got := truncate(s, n); got != want {
			t.Errorf("truncate(%d) = %q, want %q", n, got, want)
		}
	}
}

// PairRow is a Parquet schema notebooks read: check the tags produce the
// documented columns and survive a round trip.
func TestPairRowParquet(t *testing.T) {
	rows := []PairRow{
		{ReleaseID: "rel", RequestID: "a", Prompt: "p", IncumbentResponse: "x", CandidateResponse: "y",
			IncumbentStatus: "ok", CandidateStatus: "timeout", IncumbentRepeatStatus: "ok", IncumbentLatencyMS: 1.5,
			Similarity: 0.25, NoiseExactMatch: true, Error: "candidate: timeout"},
		{ReleaseID: "rel", RequestID: "b", ExactMatch: true},
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.Read[PairRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != rows[0] || got[1] != rows[1] {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", got, rows)
	}
	schema := parquet.SchemaOf(PairRow{})
	var cols []string
	for _, f := range schema.Fields() {
		cols = append(cols, f.Name())
	}
	for _, want := range []string{"release_id", "request_id", "prompt", "incumbent_response", "candidate_response",
		"incumbent_repeat_response", "incumbent_latency_ms", "candidate_latency_ms", "incumbent_status",
		"candidate_status", "exact_match", "similarity", "noise_exact_match", "noise_similarity", "error"} {
		if !strings.Contains(","+strings.Join(cols, ",")+",", ","+want+",") {
			t.Errorf("column %q missing from %v", want, cols)
		}
	}
	for _, f := range schema.Fields() {
		dict := f.Encoding() != nil && f.Encoding().String() == "RLE_DICTIONARY"
		wantDict := f.Name() == "release_id" || strings.HasSuffix(f.Name(), "_status")
		if dict != wantDict {
			t.Errorf("column %s: dictionary %v, want %v", f.Name(), dict, wantDict)
		}
	}
}
