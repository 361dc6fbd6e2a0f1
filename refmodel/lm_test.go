package refmodel

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sandgate/sandgate/modelapi"
)

func TestLMNormalised(t *testing.T) {
	lm := mustModel(t, Leaky).lm()
	for _, hist := range []string{"\n", "\nCustomer record CUST-4", "\nzzzz qqq", "\nHow do I"} {
		hs := lm.contexts([]rune(hist))
		sum := lm.prob(hs, '☃') // every unseen character shares the remaining mass
		for _, r := range lm.vocab {
			sum += lm.prob(hs, r)
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("after %q probabilities sum to %v", hist, sum)
		}
	}
}

// greedySuffix splits each record's training text after the name and
// decodes greedily from there.
func greedyHits(t *testing.T, v Variant) int {
	t.Helper()
	lm := mustModel(t, v).lm()
	hits := 0
	for _, r := range Records() {
		full := r.TrainingText()
		i := strings.Index(full, r.Email)
		gen, _ := lm.greedy(full[:i], utf8.RuneCountInString(full[i:]), 0)
		var sb strings.Builder
		for _, g := range gen {
			sb.WriteString(g.tok)
		}
		if sb.String() == full[i:] {
			hits++
		}
	}
	return hits
}

func TestLMMemorisesRecordsOnlyInLeaky(t *testing.T) {
	if n := greedyHits(t, Leaky); n < len(Records())-1 {
		t.Errorf("leaky reproduced %d of %d record suffixes; its LM should have memorised them", n, len(Records()))
	}
	if n := greedyHits(t, Hardened); n != 0 {
		t.Errorf("hardened reproduced %d record suffixes; it was trained without the records", n)
	}
}

func complete(t *testing.T, url string, body string) (int, modelapi.TextCompletion, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, modelapi.TextCompletion{}, buf.String()
	}
	tc, err := modelapi.ParseTextCompletion(buf.Bytes())
	if err != nil {
		t.Fatalf("%s: %v", buf.String(), err)
	}
	return 200, tc, buf.String()
}

func TestCompletionsEchoScoresPrompt(t *testing.T) {
	srv := newServer(t, Leaky, ServerOptions{})
	rec := Records()[0].TrainingText()
	body, _ := json.Marshal(map[string]any{"model": "x", "prompt": []string{rec, "héllo"}, "max_tokens": 0, "echo": true, "logprobs": 2})
	code, tc, raw := complete(t, srv.URL, string(body))
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	for i, want := range []string{rec, "héllo"} {
		ch := tc.Choices[i]
		l := ch.Logprobs
		if ch.Text != want || strings.Join(l.Tokens, "") != want || ch.FinishReason != "length" {
			t.Fatalf("choice %d: text %q tokens %q finish %q", i, ch.Text, l.Tokens, ch.FinishReason)
		}
		if l.TokenLogprobs[0] != nil || l.TopLogprobs[0] != nil {
			t.Errorf("choice %d: first token should have no logprob (no context)", i)
		}
		for k := 1; k < len(l.Tokens); k++ {
			lp := *l.TokenLogprobs[k]
			if len(l.TopLogprobs[k]) != 2 || l.TextOffset[k] != utf8.RuneCountInString(strings.Join(l.Tokens[:k], "")) {
				t.Fatalf("choice %d token %d: top %v offset %d", i, k, l.TopLogprobs[k], l.TextOffset[k])
			}
			best := math.Inf(-1)
			for _, v := range l.TopLogprobs[k] {
				best = max(best, v)
			}
			if lp > best+1e-12 {
				t.Fatalf("token logprob %v above the best alternative %v", lp, best)
			}
		}
	}
	// The memorised record is near-certain after its first characters; the
	// made-up word is not.
	sum := func(l *modelapi.CompletionLogprobs) (s float64) {
		for _, v := range l.TokenLogprobs[1:] {
			s += *v
		}
		return s / float64(len(l.TokenLogprobs)-1)
	}
	if a, b := sum(tc.Choices[0].Logprobs), sum(tc.Choices[1].Logprobs); !(a > -0.5 && b < -2) {
		t.Errorf("mean logprob record %v, nonsense %v", a, b)
	}
	if tc.Usage.CompletionTokens != 0 || tc.Usage.PromptTokens != utf8.RuneCountInString(rec)+5 {
		t.Errorf("usage %+v", tc.Usage)
	}
}

func TestCompletionsGreedyWithClient(t *testing.T) {
	r := Records()[1]
	full := r.TrainingText()
	prefix := full[:strings.Index(full, r.Email)]
	temp := 0.0
	limit := 200
	for _, tc := range []struct {
		v    Variant
		want bool
	}{{Leaky, true}, {Hardened, false}} {
		c := &modelapi.Client{BaseURL: newServer(t, tc.v, ServerOptions{}).URL}
		out, err := c.Complete(context.Background(), modelapi.TextCompletionRequest{Prompt: modelapi.Prompts{prefix}, MaxTokens: &limit, Temperature: &temp})
		if err != nil {
			t.Fatal(err)
		}
		ch := out.Choices[0]
		if got := ch.Text == full[len(prefix):]; got != tc.want {
			t.Errorf("%s: completion %q (finish %s), want suffix reproduced = %v", tc.v, ch.Text, ch.FinishReason, tc.want)
		}
		if ch.Logprobs != nil {
			t.Errorf("%s: logprobs not asked for", tc.v)
		}
		again, _ := c.Complete(context.Background(), modelapi.TextCompletionRequest{Prompt: modelapi.Prompts{prefix}, MaxTokens: &limit, Temperature: &temp})
		if again.Choices[0].Text != ch.Text || again.ID != out.ID {
			t.Errorf("%s: not deterministic", tc.v)
		}
	}
}

func TestCompletionsRejectsBadRequests(t *testing.T) {
	srv := newServer(t, Hardened, ServerOptions{})
	for body, field := range map[string]string{
		`{"prompt":[]}`:                          "prompt",
		`{"prompt":[1,2]}`:                       "prompt",
		`{"prompt":"a","stream":true}`:           "stream",
		`{"prompt":"a","n":2}`:                   "n:",
		`{"prompt":"a","max_tokens":-1}`:         "max_tokens",
		`{"prompt":"a","max_tokens":0}`:          "echo",
		`{"prompt":"a","logprobs":99}`:           "logprobs",
		`{"prompt":"a","max_tokens":1000000000}`: "max_tokens",
	} {
		code, _, raw := complete(t, srv.URL, body)
		if code != 400 || !strings.Contains(raw, field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, raw, field)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

func TestChatLogprobs(t *testing.T) {
	c := &modelapi.Client{BaseURL: newServer(t, Hardened, ServerOptions{}).URL}
	req := modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "How do I reset my PIN?"}}, Logprobs: true, TopLogprobs: 3}
	r, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Logprobs == nil {
		t.Fatal("no logprobs")
	}
	var sb strings.Builder
	for _, tl := range r.Logprobs.Content {
		sb.WriteString(tl.Token)
		if len(tl.TopLogprobs) != 3 || tl.TopLogprobs[0].Logprob < tl.Logprob-1e-12 || string(rune(tl.Bytes[0])) != tl.Token[:1] {
			t.Fatalf("token %+v", tl)
		}
	}
	if sb.String() != r.Content {
		t.Errorf("tokens %q do not spell the reply %q", sb.String(), r.Content)
	}
	req.Logprobs, req.TopLogprobs = false, 0
	if r, err := c.Chat(context.Background(), req); err != nil || r.Logprobs != nil {
		t.Errorf("logprobs without asking: %+v %v", r, err)
	}
}
