package modelapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/modelapi"
)

const okBody = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],
"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`

func TestChatSendsOpenAIRequest(t *testing.T) {
	var got map[string]any
	var auth, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, auth = r.URL.Path, r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("request body: %v", err)
		}
		io.WriteString(w, okBody)
	}))
	defer srv.Close()

	temp, seed := 0.0, int64(7)
	c := &modelapi.Client{BaseURL: srv.URL + "/", APIKey: "k"}
	resp, err := c.Chat(context.Background(), modelapi.ChatRequest{
		Model:       "m",
		Messages:    []modelapi.Message{{Role: "user", Content: "hello"}},
		MaxTokens:   16,
		Temperature: &temp,
		Seed:        &seed,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := modelapi.ChatResponse{ID: "chatcmpl-1", Model: "m", Content: "hi there", FinishReason: "stop",
		Usage: modelapi.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5}}
	if resp != want {
		t.Errorf("resp = %+v, want %+v", resp, want)
	}
	if path != "/v1/chat/completions" || auth != "Bearer k" {
		t.Errorf("path %q auth %q", path, auth)
	}
	// temperature 0 must be sent (pointer), max_tokens and seed as numbers.
	if got["temperature"] != 0.0 || got["max_tokens"] != 16.0 || got["seed"] != 7.0 || got["model"] != "m" {
		t.Errorf("request = %v", got)
	}
}

func TestChatOmitsUnsetOptions(t *testing.T) {
	var raw string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		raw = string(b)
		if r.Header.Get("Authorization") != "" {
			t.Error("Authorization sent without APIKey")
		}
		io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c := &modelapi.Client{BaseURL: srv.URL + "/v1"} // OpenAI SDK style base URL
	if _, err := c.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"max_tokens", "temperature", "seed"} {
		if strings.Contains(raw, k) {
			t.Errorf("%s sent though unset: %s", k, raw)
		}
	}
}

func TestChatStatusError(t *testing.T) {
	long := strings.Repeat("x", 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit"}}`+long)
	}))
	defer srv.Close()
	c := &modelapi.Client{BaseURL: srv.URL}
	_, err := c.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}})
	var se *modelapi.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StatusError", err)
	}
	if se.Code != 429 || len(se.Body) != 1024 || !se.Retryable() {
		t.Errorf("code %d body len %d retryable %v", se.Code, len(se.Body), se.Retryable())
	}
	if (&modelapi.StatusError{Code: 400}).Retryable() {
		t.Error("400 retryable")
	}
	se2 := &modelapi.StatusError{Code: 400, Body: `{"error":{"message":"bad field"}}`}
	if !strings.Contains(se2.Error(), "400") || !strings.Contains(se2.Error(), "bad field") {
		t.Errorf("Error() = %q", se2.Error())
	}
}

func TestChatMalformed(t *testing.T) {
	cases := map[string]string{
		"not json":      `<html>oops</html>`,
		"no choices":    `{"object":"chat.completion","choices":[]}`,
		"no message":    `{"choices":[{"index":0}]}`,
		"chunk":         `{"object":"chat.completion.chunk","choices":[{"delta":{}}]}`,
		"error in 200":  `{"error":{"message":"upstream failed"}}`,
		"negative use":  `{"choices":[{"message":{"role":"assistant","content":"x"}}],"usage":{"prompt_tokens":-1}}`,
		"content type":  `{"choices":[{"message":{"role":"assistant","content":42}}]}`,
		"trailing junk": okBody + `}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body)
			}))
			defer srv.Close()
			c := &modelapi.Client{BaseURL: srv.URL}
			_, err := c.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}})
			if !errors.Is(err, modelapi.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestChatContentParts(t *testing.T) {
	body := `{"choices":[{"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]},"finish_reason":"stop"}]}`
	r, err := modelapi.ParseCompletion([]byte(body))
	if err != nil || r.Content != "ab" {
		t.Fatalf("r=%+v err=%v", r, err)
	}
	r, err = modelapi.ParseCompletion([]byte(`{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"tool_calls"}]}`))
	if err != nil || r.Content != "" || r.FinishReason != "tool_calls" {
		t.Fatalf("null content: r=%+v err=%v", r, err)
	}
}

func TestChatContextAndTransportErrors(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c := &modelapi.Client{BaseURL: srv.URL}
	_, err := c.Chat(ctx, modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if errors.Is(err, modelapi.ErrMalformed) {
		t.Fatal("transport error reported as malformed")
	}
}

func TestChatBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := (&modelapi.Client{}).Chat(ctx, modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user"}}}); err == nil || !strings.Contains(err.Error(), "BaseURL") {
		t.Errorf("empty BaseURL: %v", err)
	}
	if _, err := (&modelapi.Client{BaseURL: "http://127.0.0.1:1"}).Chat(ctx, modelapi.ChatRequest{}); err == nil || !strings.Contains(err.Error(), "Messages") {
		t.Errorf("no messages: %v", err)
	}
}

func ExampleClient_Chat() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, okBody)
	}))
	defer srv.Close()

	c := &modelapi.Client{BaseURL: srv.URL}
	resp, err := c.Chat(context.Background(), modelapi.ChatRequest{
		Model:    "m",
		Messages: []modelapi.Message{{Role: "user", Content: "hello"}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Content)
	// Output: hi there
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"abc", 0}, {"-3", 0}, {"0", 0}, {"2", 2 * time.Second},
		{"99999999", 10 * time.Minute},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := modelapi.ParseRetryAfter(c.in, now); got != c.want {
			t.Errorf("modelapi.ParseRetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestChatRetryAfterAndBodyCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("big") != "" || strings.Contains(r.Header.Get("X-Test"), "big") {
			w.WriteHeader(200)
			w.Write([]byte(`{"choices":[{"message":{"content":"` + strings.Repeat("a", 4096) + `"}}]}`))
			return
		}
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := &modelapi.Client{BaseURL: srv.URL}
	_, err := c.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}})
	var se *modelapi.StatusError
	if !errors.As(err, &se) || se.Code != 429 || se.RetryAfter != 3*time.Second {
		t.Fatalf("err = %v (%#v), want 429 with RetryAfter 3s", err, se)
	}
	big := &modelapi.Client{BaseURL: srv.URL, MaxResponseBytes: 1024, HTTP: &http.Client{Transport: headerRT{"X-Test", "big"}}}
	_, err = big.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "x"}}})
	if !errors.Is(err, modelapi.ErrMalformed) || !strings.Contains(err.Error(), "exceeds 1024 bytes") {
		t.Fatalf("err = %v, want modelapi.ErrMalformed naming the 1024-byte cap", err)
	}
}

type headerRT [2]string

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h[0], h[1])
	return http.DefaultTransport.RoundTrip(r)
}
