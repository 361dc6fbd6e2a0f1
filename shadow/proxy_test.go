package shadow

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandgate/sandgate/datasets"
)

const candMarker = "CANDIDATE-MARKER-9f1c"

// waitFor polls cond until it holds or the deadline passes: no fixed sleeps.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// modelServer answers chat (plain and SSE) and OIP v2 with text as the content.
func modelServer(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/chat/completions") && isStream(body):
			w.Header().Set("Content-Type", "text/event-stream")
			for _, part := range []string{text[:len(text)/2], text[len(text)/2:]} {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", part)
				w.(http.Flusher).Flush()
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
		case strings.HasSuffix(r.URL.Path, "/chat/completions"):
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":%q}}]}`, text)
		case strings.HasPrefix(r.URL.Path, "/v2/models/"):
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"model_name":"m","outputs":[{"name":"label","datatype":"BYTES","shape":[1],"data":[%q]}]}`, text)
		default:
			fmt.Fprintf(w, `{"data":[{"id":%q}]}`, text)
		}
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// startProxy serves p on a loopback listener and closes both at cleanup.
func startProxy(t testing.TB, cfg ProxyConfig) (*Proxy, string) {
	t.Helper()
	p, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p, srv.URL
}

func post(t testing.TB, c *http.Client, u, body string, hdr map[string]string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return string(b)
}

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hello there"}]}`
const streamBody = `{"model":"m","stream":true,"messages":[{"role":"user","content":"stream please"}]}`
const oipBody = `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`

func TestProxyNeverReturnsCandidateBytes(t *testing.T) {
	inc := httptest.NewServer(modelServer("incumbent says hi"))
	defer inc.Close()
	cand := httptest.NewServer(modelServer(candMarker + " " + candMarker))
	defer cand.Close()
	dir := t.TempDir()
	rec, err := NewRecorder(context.Background(), RecorderConfig{Sink: DirSink{Dir: dir}, BatchRows: 2, ReleaseID: "rel-1"})
	if err != nil {
		t.Fatal(err)
	}
	p, purl := startProxy(t, ProxyConfig{
		Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL),
		SampleRate: 1, Recorder: rec, ReleaseID: "rel-1",
	})
	c := &http.Client{Timeout: 10 * time.Second}
	var bodies []string
	for i := range 3 {
		hdr := map[string]string{"X-Request-Id": fmt.Sprintf("req-%d", i)}
		bodies = append(bodies,
			post(t, c, purl+"/v1/chat/completions", chatBody, hdr),
			post(t, c, purl+"/v1/chat/completions", streamBody, hdr),
			post(t, c, purl+"/v2/models/m/infer", oipBody, hdr))
	}
	resp, err := c.Get(purl + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	bodies = append(bodies, string(b))
	for i, b := range bodies {
		if strings.Contains(b, candMarker) || strings.Contains(b, "CANDIDATE") {
			t.Fatalf("response %d carries candidate bytes: %s", i, b)
		}
		if !strings.Contains(b, "incumben") {
			t.Fatalf("response %d is not the incumbent's: %s", i, b)
		}
	}
	waitFor(t, "9 recorded pairs", func() bool { return p.Stats().Recorded.Load() == 9 })
	m, err := rec.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := p.Snapshot()
	if s.Requests != 10 || s.Sampled != 9 || s.Mirrored != 9 || s.CandidateErrors != 0 || s.DroppedQueueFull != 0 {
		t.Fatalf("stats %+v", s)
	}
	if m.Rows != 9 || len(m.Files) != 5 || m.Files[0].Key != "part-00000.parquet" || m.Files[4].Key != "part-00004.parquet" {
		t.Fatalf("manifest %+v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	var rows []ProxyPairRow
	for _, f := range m.Files {
		r, err := datasets.ReadRows[ProxyPairRow](filepath.Join(dir, f.Key), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	streams := 0
	for _, r := range rows {
		if r.IncumbentStatus != StatusOK || r.CandidateStatus != StatusOK || !strings.Contains(r.CandidateResponse, candMarker) {
			t.Fatalf("row %+v", r)
		}
		if r.API == APIOpenAIChat && r.IncumbentResponse != "incumbent says hi" {
			t.Fatalf("chat row not reduced to text: %+v", r)
		}
		if r.Stream {
			streams++
			if r.CandidateResponse != candMarker+" "+candMarker {
				t.Fatalf("SSE not reassembled: %q", r.CandidateResponse)
			}
		}
		if r.IncumbentLatencyMS <= 0 || r.CandidateLatencyMS <= 0 || r.ReleaseID != "rel-1" {
			t.Fatalf("row %+v", r)
		}
	}
	if streams != 3 {
		t.Fatalf("%d streamed rows, want 3", streams)
	}
	var acc Accumulator
	for _, r := range rows {
		acc.Add(r.ToPairRow())
	}
	if sum := acc.Summary(); sum.Requests != 9 || sum.Compared != 9 || sum.ExactAgreement != 0 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestProxyStripsCredentials(t *testing.T) {
	inc := httptest.NewServer(modelServer("incumbent"))
	defer inc.Close()
	got := make(chan http.Header, 4)
	cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		modelServer(candMarker)(w, r)
	}))
	defer cand.Close()
	hdr := map[string]string{
		"Authorization": "Bearer user-secret", "Cookie": "session=abc", "X-Api-Key": "k1",
		"Api-Key": "k2", "X-Auth-Token": "t", "Proxy-Authorization": "Basic x", "X-Trace": "keep-me",
	}
	stripped := []string{"Cookie", "Api-Key", "X-Auth-Token", "Proxy-Authorization"}

	_, purl := startProxy(t, ProxyConfig{Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL), SampleRate: 1})
	post(t, http.DefaultClient, purl+"/v1/chat/completions", chatBody, hdr)
	h := <-got
	for _, k := range append(stripped, "Authorization", "X-Api-Key") {
		if v := h.Get(k); v != "" {
			t.Errorf("%s reached the candidate: %q", k, v)
		}
	}
	if h.Get("X-Trace") != "keep-me" || h.Get("X-Sandgate-Shadow") != "1" {
		t.Errorf("ordinary headers lost: %v", h)
	}

	_, purl = startProxy(t, ProxyConfig{
		Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL), SampleRate: 1,
		ForwardCredentials: []string{"x-api-key"},
		CandidateHeader:    http.Header{"Authorization": {"Bearer candidate-own"}},
	})
	post(t, http.DefaultClient, purl+"/v1/chat/completions", chatBody, hdr)
	h = <-got
	if h.Get("X-Api-Key") != "k1" || h.Get("Authorization") != "Bearer candidate-own" {
		t.Errorf("configured headers: %v", h)
	}
	for _, k := range stripped {
		if v := h.Get(k); v != "" {
			t.Errorf("%s reached the candidate: %q", k, v)
		}
	}
}

func TestProxyQueueFullDropsWithoutBlocking(t *testing.T) {
	inc := httptest.NewServer(modelServer("incumbent"))
	defer inc.Close()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a candidate that hangs until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer cand.Close()
	defer unblock()
	p, purl := startProxy(t, ProxyConfig{
		Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL), SampleRate: 1,
		QueueSize: 1, Workers: 1, MirrorTimeout: time.Minute,
	})
	c := &http.Client{Timeout: 5 * time.Second} // a blocked primary fails here
	post(t, c, purl+"/v1/chat/completions", chatBody, nil)
	waitFor(t, "the worker to take the first mirror", func() bool { return p.Stats().Mirrored.Load() == 1 })
	for range 10 {
		if b := post(t, c, purl+"/v1/chat/completions", chatBody, nil); !strings.Contains(b, "incumbent") {
			t.Fatalf("primary reply %s", b)
		}
	}
	s := p.Snapshot()
	// 1 in flight, 1 queued, the other 9 dropped — and every one counted.
	if s.Sampled != 11 || s.DroppedQueueFull != 9 || s.QueueLen != 1 || s.Mirrored != 1 {
		t.Fatalf("stats %+v", s)
	}
	unblock()
	waitFor(t, "the queue to drain", func() bool { return p.Stats().Mirrored.Load() == 2 })
}

func TestProxyLargeBodySkippedAndCounted(t *testing.T) {
	var incGot sync.Map
	inc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		incGot.Store(len(b), true)
		fmt.Fprintf(w, `{"choices":[{"message":{"content":"incumbent %d"}}]}`, len(b))
	}))
	defer inc.Close()
	candHits := make(chan int, 10)
	cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		candHits <- len(b)
		fmt.Fprint(w, candMarker)
	}))
	defer cand.Close()
	p, purl := startProxy(t, ProxyConfig{
		Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL), SampleRate: 1, MaxMirrorBody: 1024,
	})
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 4000) + `"}]}`
	// With Content-Length, and chunked (length unknown until read).
	post(t, http.DefaultClient, purl+"/v1/chat/completions", big, nil)
	req, _ := http.NewRequest(http.MethodPost, purl+"/v1/chat/completions", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("incumbent %d", len(big)); !strings.Contains(string(b), want) {
		t.Fatalf("incumbent did not get the whole chunked body: %s", b)
	}
	post(t, http.DefaultClient, purl+"/v1/chat/completions", chatBody, nil) // small: mirrored
	if n := <-candHits; n != len(chatBody) {
		t.Fatalf("candidate got a %d-byte body, want only the small one (%d)", n, len(chatBody))
	}
	if s := p.Snapshot(); s.SkippedTooLarge != 2 || s.Sampled != 3 || s.Mirrored != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestProxyStreamsIncrementally(t *testing.T) {
	release := make(chan struct{})
	inc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-release // the incumbent is still generating
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\" second\"}}]}\n\ndata: [DONE]\n\n")
	}))
	defer inc.Close()
	cand := httptest.NewServer(modelServer(candMarker))
	defer cand.Close()
	p, purl := startProxy(t, ProxyConfig{Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, cand.URL), SampleRate: 1})

	resp, err := http.Post(purl+"/v1/chat/completions", "application/json", strings.NewReader(streamBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() { l, _ := br.ReadString('\n'); first <- l }()
	select {
	case l := <-first:
		if !strings.Contains(l, "first") {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first SSE event did not reach the client while the incumbent was still streaming")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "second") || strings.Contains(string(rest), candMarker) {
		t.Fatalf("rest of stream %q", rest)
	}
	waitFor(t, "the mirror", func() bool { return p.Stats().Mirrored.Load() == 1 })
}

func TestProxyCandidateDownCounted(t *testing.T) {
	inc := httptest.NewServer(modelServer("incumbent"))
	defer inc.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	p, purl := startProxy(t, ProxyConfig{Incumbent: mustURL(t, inc.URL), Candidate: mustURL(t, down), SampleRate: 1})
	post(t, http.DefaultClient, purl+"/v1/chat/completions", chatBody, nil)
	waitFor(t, "a candidate error", func() bool { return p.Stats().CandidateErrors.Load() == 1 })

	admin := httptest.NewServer(p.AdminHandler())
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/debug/shadow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requests", "sampled", "mirrored", "dropped_queue_full", "skipped_too_large", "candidate_errors"} {
		if _, ok := s[k]; !ok {
			t.Errorf("/debug/shadow lacks %q: %v", k, s)
		}
	}
	if s["candidate_errors"] != float64(1) {
		t.Errorf("/debug/shadow %v", s)
	}
}

func TestProxySamplingDeterministic(t *testing.T) {
	p, err := NewProxy(ProxyConfig{Incumbent: mustURL(t, "http://127.0.0.1:1"), Candidate: mustURL(t, "http://127.0.0.1:2"), SampleRate: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	n := 0
	for range 100 {
		if p.sample(httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)) {
			n++
		}
	}
	if n != 25 {
		t.Fatalf("counter sampling picked %d of 100, want 25", n)
	}
	hits := 0
	for i := range 4000 {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		r.Header.Set("X-Request-Id", fmt.Sprint("id-", i))
		a, b := p.sample(r), p.sample(r)
		if a != b {
			t.Fatal("the same request id was sampled differently")
		}
		if a {
			hits++
		}
	}
	if hits < 800 || hits > 1200 {
		t.Fatalf("hash sampling picked %d of 4000 at rate 0.25", hits)
	}
	if _, err := NewProxy(ProxyConfig{SampleRate: 2}); err == nil || !strings.Contains(err.Error(), "incumbent") || !strings.Contains(err.Error(), "sample rate") {
		t.Fatalf("bad config error: %v", err)
	}
}

func TestRecorderFlushesOnTimer(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecorder(context.Background(), RecorderConfig{Sink: DirSink{Dir: dir}, BatchRows: 1000, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Add(context.Background(), ProxyPairRow{RequestID: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a timed part", func() bool {
		_, err := os.Stat(filepath.Join(dir, "part-00000.parquet"))
		return err == nil
	})
	m, err := rec.Close(context.Background())
	if err != nil || m.Rows != 1 || len(m.Files) != 1 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	if err := rec.Add(context.Background(), ProxyPairRow{}); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}
