package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// usageHandler answers like an OpenAI chat endpoint charging n tokens, or
// streams SSE chunks whose last one carries the usage.
func usageHandler(n int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, n-1, 1, n)
	})
	mux.HandleFunc("/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}],\"usage\":null}\n\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"input_tokens\":%d,\"output_tokens\":3}}\n\ndata: [DONE]\n\n", n-3)
	})
	mux.HandleFunc("/bulk", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("z"), 600_000))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	return mux
}

func TestRelayTokenBudget(t *testing.T) {
	r := newTestRelay(t, RelayOptions{MaxTokens: 25}, usageHandler(10))
	for i, path := range []string{"/v1/chat/completions", "/v1/stream", "/v1/chat/completions"} {
		if code, body, _ := post(t, r.URL()+path, `{"messages":[]}`); code != 200 {
			t.Fatalf("request %d: %d %s", i+1, code, body)
		}
		want := int64(10 * (i + 1))
		eventually(t, 5*time.Second, "tokens to be booked", func() bool { return r.Stats().Tokens == want })
	}
	// 30 tokens used of 25: the next request is refused, naming the budget.
	code, body, _ := post(t, r.URL()+"/v1/chat/completions", `{"messages":[{"role":"user","content":"again"}]}`)
	var e struct {
		Error struct {
			Type, Budget string
			Limit, Used  int64
		}
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("429 body %q: %v", body, err)
	}
	if code != http.StatusTooManyRequests || e.Error.Type != "budget_exceeded" || e.Error.Budget != "tokens" || e.Error.Limit != 25 || e.Error.Used != 30 {
		t.Fatalf("request 4 = %d %s", code, body)
	}
	eventually(t, 5*time.Second, "the refusal in the transcript", func() bool { return len(r.Transcript()) == 4 })
	tr := r.Transcript()
	if tr[0].Tokens != 10 || tr[1].Tokens != 10 || tr[3].Status != 429 || tr[3].Seq != 4 ||
		!strings.Contains(tr[3].Request, "again") || tr[3].Err != "tokens budget exhausted" {
		t.Fatalf("transcript = %+v", tr)
	}
}

func TestParseUsage(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{`{"usage":{"total_tokens":7}}`, 7},
		{`{"usage": {"prompt_tokens":2,"completion_tokens":3}}`, 5},
		{`{"usage":{"input_tokens":4,"output_tokens":1}}`, 5},
		{`data: {"usage":{"total_tokens":9}}` + "\n\ndata: {\"usage\":null}\n\n", 9},
		{`{"usage":{"total_tokens":`, 0}, // cut off
		{`{"text":"the word usage"}`, 0},
		{``, 0},
	} {
		if got := parseUsage([]byte(c.in)); got != c.want {
			t.Errorf("parseUsage(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzParseUsage(f *testing.F) {
	f.Add([]byte(`{"usage":{"total_tokens":7}}`))
	f.Add([]byte(`"usage":"usage":{"prompt_tokens":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseUsage(b) // must not panic or loop
	})
}

func TestHeadTailKeepsBothEnds(t *testing.T) {
	h := newHeadTail(4)
	for i := 0; i < 3000; i++ {
		h.Write([]byte("abcd"))
	}
	h.Write([]byte(`{"usage":{"total_tokens":3}}`))
	head, trunc := h.headString()
	if head != "abcd" || !trunc || parseUsage(h.tailBytes()) != 3 || len(h.tailBytes()) != usageTail {
		t.Fatalf("head %q trunc %v tail %d", head, trunc, len(h.tailBytes()))
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(math.Ceil(p*float64(len(s))))-1]
}

func TestRelayInjectedDelayShowsInP50(t *testing.T) {
	const n = 30
	measure := func(r *Relay) []time.Duration {
		var out []time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			if code, _, _ := post(t, r.URL()+"/", "x"); code != 200 {
				t.Fatalf("code %d", code)
			}
			out = append(out, time.Since(start))
		}
		return out
	}
	// Control: the same relay path with no profile.
	base := percentile(measure(newTestRelay(t, RelayOptions{}, usageHandler(1))), 0.5)
	prof := NetProfile{Name: "custom", Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	r := newTestRelay(t, RelayOptions{Network: prof, Seed: 1}, usageHandler(1))
	got := measure(r)
	p50 := percentile(got, 0.5)
	t.Logf("p50 without profile %s, with %s", base, p50)
	// The median of U[20ms, 30ms) is 25 ms; the relay and client add
	// loopback time on top.
	if p50 < 20*time.Millisecond+base/2 || p50 > 30*time.Millisecond+base+20*time.Millisecond {
		t.Fatalf("p50 %s, want about 25ms over the %s baseline", p50, base)
	}
	eventually(t, 5*time.Second, "all exchanges booked", func() bool { return len(r.Transcript()) == n })
	for _, ex := range r.Transcript() {
		if ex.InjectedDelay < 20*time.Millisecond || ex.InjectedDelay >= 30*time.Millisecond || ex.Latency < ex.InjectedDelay {
			t.Fatalf("exchange %+v: injected delay outside [20ms, 30ms)", ex)
		}
	}
}

func TestDelaySamplerLognormalMedian(t *testing.T) {
	p := NetProfile{Name: "ln", Latency: 40 * time.Millisecond, Sigma: 0.5}
	draw := func(seed uint64) []time.Duration {
		d := newDelaySampler(p, 0, seed)
		out := make([]time.Duration, 4001)
		for i := range out {
			out[i] = d.next()
		}
		return out
	}
	a := draw(7)
	if !slices.Equal(a, draw(7)) {
		t.Fatal("same seed, different delays")
	}
	med := percentile(a, 0.5)
	if math.Abs(float64(med-p.Latency))/float64(p.Latency) > 0.05 {
		t.Fatalf("median %s, want %s ±5%%", med, p.Latency)
	}
	// Lognormal: p90/p50 = exp(1.2816 σ) ≈ 1.90 for σ = 0.5.
	if r := float64(percentile(a, 0.9)) / float64(med); r < 1.75 || r > 2.05 {
		t.Fatalf("p90/p50 = %.2f, want about 1.90", r)
	}
}

func TestRelayBandwidthWithinTenPercent(t *testing.T) {
	const bps = 2_000_000
	r := newTestRelay(t, RelayOptions{Network: NetProfile{Name: "slow", BytesPerSecond: bps}}, usageHandler(1))
	// Control: without the limit the same download is much faster.
	fast := newTestRelay(t, RelayOptions{}, usageHandler(1))
	get := func(u string) (int, time.Duration) {
		start := time.Now()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return int(n), time.Since(start)
	}
	n, took := get(fast.URL() + "/bulk")
	t.Logf("unlimited: %d bytes in %s", n, took)
	if took > 200*time.Millisecond {
		t.Logf("control slow (loaded machine?)")
	}
	// The first burst passes at once, so measure the rate after it.
	burst := newLink(bps).Burst()
	n, took = get(r.URL() + "/bulk")
	rate := float64(n-burst) / took.Seconds()
	t.Logf("limited to %d B/s: %d bytes in %s = %.0f B/s", bps, n, took, rate)
	if n != 600_000 || rate < 0.9*bps || rate > 1.1*bps {
		t.Fatalf("rate %.0f B/s, want %d ±10%%", rate, bps)
	}
	// Uploads are paced too.
	start := time.Now()
	code, body, _ := post(t, r.URL()+"/", strings.Repeat("u", 300_000))
	took = time.Since(start)
	// Echoed back, so 300 kB go each way through separate limiters.
	if up := float64(300_000-burst) / took.Seconds(); code != 200 || len(body) != 300_000 || up > 1.1*bps {
		t.Fatalf("upload: %d, %d bytes in %s (%.0f B/s)", code, len(body), took, up)
	}
}

func TestLookupProfile(t *testing.T) {
	for _, n := range []string{"lan", "wan", "mobile-3g"} {
		p, err := LookupProfile(n)
		if err != nil || p.Name != n || p.Validate() != nil || p.Latency <= 0 || p.BytesPerSecond <= 0 {
			t.Errorf("%s: %+v %v", n, p, err)
		}
	}
	if _, err := LookupProfile("satellite"); err == nil || !strings.Contains(err.Error(), "mobile-3g") {
		t.Errorf("unknown profile: %v", err)
	}
	if err := (NetProfile{Name: "x", Sigma: 1}).Validate(); err == nil || !strings.Contains(err.Error(), "sigma") {
		t.Errorf("sigma without latency: %v", err)
	}
	if _, err := NewRelay(RelayOptions{Network: NetProfile{Name: "neg", BytesPerSecond: -1}}, Upstream{}, nil); err == nil {
		t.Error("bad profile accepted")
	}
}
