package shadow

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
)

func writeParquet[T any](t testing.TB, rows []T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.parquet")
	if _, err := datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// plainLogRow is the documented minimal request-log schema a user exports
// from their gateway's access log.
type plainLogRow struct {
	RequestID string `parquet:"request_id"`
	Body      string `parquet:"request_body"`
	Received  int64  `parquet:"received_unix_ms"`
}

func chat(prompt string) string {
	return `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"` + prompt + `"}]}`
}

func TestReadRequestLogSchemas(t *testing.T) {
	t.Run("recorder pairs", func(t *testing.T) {
		var rows []ProxyPairRow
		for i := range 5 {
			rows = append(rows, ProxyPairRow{RequestID: "r" + string(rune('0'+i)), Method: "POST", Path: "/v2/models/m/infer",
				RequestBody: `{"inputs":[]}`, ReceivedUnixMS: int64(1000 + i), CandidateResponse: candMarker})
		}
		log, err := ReadRequestLog(writeParquet(t, rows), 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		if log.Total != 5 || len(log.Requests) != 3 || log.Requests[0].ID != "r1" || log.Requests[2].ID != "r3" ||
			log.Requests[0].Path != "/v2/models/m/infer" || log.Requests[0].ReceivedUnixMS != 1001 || string(log.Requests[0].Body) != `{"inputs":[]}` {
			t.Fatalf("got %+v", log)
		}
	})
	t.Run("plain log with defaults", func(t *testing.T) {
		log, err := ReadRequestLog(writeParquet(t, []plainLogRow{{"a", chat("hi"), 5}, {"", "", 6}, {"", chat("yo"), 7}}), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(log.Requests) != 2 || log.Skipped != 1 {
			t.Fatalf("got %d requests, %d skipped; want 2 and 1 (empty body)", len(log.Requests), log.Skipped)
		}
		r := log.Requests[1]
		if r.ID != "row-2" || r.Method != "POST" || r.Path != "/v1/chat/completions" || r.ReceivedUnixMS != 7 {
			t.Fatalf("defaults not applied: %+v", r)
		}
		reqs, skipped := ChatRequests(log.Requests)
		if skipped != 0 || len(reqs) != 2 || reqs[0].Messages[1].Content != "hi" || reqs[0].Messages[0].Role != "system" {
			t.Fatalf("chat requests %+v skipped %d", reqs, skipped)
		}
	})
	t.Run("replay result pairs via prompt", func(t *testing.T) {
		log, err := ReadRequestLog(writeParquet(t, []PairRow{{RequestID: "p1", Prompt: "what is 2+2?"}}), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		reqs, _ := ChatRequests(log.Requests)
		if len(reqs) != 1 || reqs[0].ID != "p1" || reqs[0].Messages[0].Content != "what is 2+2?" {
			t.Fatalf("got %+v", reqs)
		}
	})
	t.Run("errors name the column", func(t *testing.T) {
		type noBody struct {
			RequestID string `parquet:"request_id"`
		}
		type wrongType struct {
			Body     string `parquet:"request_body"`
			Received string `parquet:"received_unix_ms"`
		}
		_, err := ReadRequestLog(writeParquet(t, []noBody{{"a"}}), 0, 0)
		if err == nil || !strings.Contains(err.Error(), "no request_body (or prompt) column") {
			t.Errorf("missing body: %v", err)
		}
		_, err = ReadRequestLog(writeParquet(t, []wrongType{{"{}", "yesterday"}}), 0, 0)
		if err == nil || !strings.Contains(err.Error(), "column received_unix_ms has type BYTE_ARRAY; it must be INT64") {
			t.Errorf("wrong type: %v", err)
		}
		junk := filepath.Join(t.TempDir(), "junk.parquet")
		_ = os.WriteFile(junk, []byte("not parquet"), 0o644)
		if _, err := ReadRequestLog(junk, 0, 0); err == nil || !strings.Contains(err.Error(), "not a readable Parquet file") {
			t.Errorf("junk: %v", err)
		}
	})
}

func TestChatRequestsSkipsOtherAPIsAndDedupsIDs(t *testing.T) {
	reqs, skipped := ChatRequests([]RecordedRequest{
		{ID: "a", Path: "/v1/chat/completions", Body: []byte(chat("1"))},
		{ID: "a", Path: "/v1/chat/completions?x=1", Body: []byte(chat("2"))},
		{ID: "b", Path: "/v2/models/m/infer", Body: []byte(`{}`)},
		{ID: "c", Path: "/v1/chat/completions", Body: []byte(`not json`)},
	})
	if skipped != 2 || len(reqs) != 2 || reqs[0].ID != "a" || reqs[1].ID != "a#1" {
		t.Fatalf("reqs %+v skipped %d", reqs, skipped)
	}
	if err := validateRequests(reqs); err != nil {
		t.Fatal(err)
	}
}

// TestDriveRecordedThroughProxy replays the recorder's own output through a
// new proxy: the second recording holds the same requests under the same
// ids, and the client never sees the candidate's marker.
func TestDriveRecordedThroughProxy(t *testing.T) {
	var first []ProxyPairRow
	for i := range 20 {
		first = append(first, ProxyPairRow{RequestID: "id-" + string(rune('a'+i)), Method: "POST", Path: "/v1/chat/completions",
			RequestBody: chat("q" + string(rune('a'+i))), ReceivedUnixMS: int64(i * 5)})
	}
	log, err := ReadRequestLog(writeParquet(t, first), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := &memSink{}
	inc := serve(t, modelServer("incumbent"))
	cand := serve(t, modelServer(candMarker))
	p, purl := startProxy(t, ProxyConfig{Incumbent: mustURL(t, inc), Candidate: mustURL(t, cand), SampleRate: 1, Recorder: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := DriveRecorded(ctx, log.Requests, DriveOptions{Target: purl, Speed: 10, Concurrency: 4})
	if err != nil || st.Sent != 20 || st.Failed != 0 {
		t.Fatalf("drive: %+v %v", st, err)
	}
	waitFor(t, "20 recorded pairs", func() bool { return p.Stats().Recorded.Load() == 20 })
	ids := map[string]bool{}
	for _, r := range rec.rows() {
		ids[r.RequestID] = true
		if r.IncumbentResponse != "incumbent" || r.CandidateResponse != candMarker || !strings.Contains(r.RequestBody, `"content":"q`) {
			t.Fatalf("row %+v", r)
		}
	}
	for _, r := range first {
		if !ids[r.RequestID] {
			t.Errorf("request %s not recorded under its id", r.RequestID)
		}
	}
}

func FuzzReadRequestLog(f *testing.F) {
	seed, err := os.ReadFile(writeParquet(f, []plainLogRow{{"a", chat("hi"), 5}}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("PAR1PAR1"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.parquet")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		log, err := ReadRequestLog(path, 0, 100)
		if err == nil && int64(len(log.Requests)+log.Skipped) > log.Total {
			t.Fatalf("%d requests + %d skipped from %d rows", len(log.Requests), log.Skipped, log.Total)
		}
	})
}

// memSink keeps recorded rows in memory.
type memSink struct {
	mu   sync.Mutex
	list []ProxyPairRow
}

func (m *memSink) Add(_ context.Context, r ProxyPairRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, r)
	return nil
}

func (m *memSink) rows() []ProxyPairRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}
