package modelapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEndpointHTTPClientReachesOnlyItsEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer srv.Close()
	hc, err := NewEndpointHTTPClient(srv.URL, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok /v1/models" {
		t.Fatalf("reply %q", b)
	}
	if _, err := hc.Get("http://127.0.0.1:1/x"); err == nil || !strings.Contains(err.Error(), "only reaches") {
		t.Fatalf("another host: err = %v, want a refusal naming the endpoint", err)
	}
	// A chat call through it, end to end.
	chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	}))
	defer chat.Close()
	hc, _ = NewEndpointHTTPClient(chat.URL, 0, 4)
	c := &Client{BaseURL: chat.URL, HTTP: hc}
	got, err := c.Chat(context.Background(), ChatRequest{Model: "m", Messages: []Message{{Role: "user", Content: "hello"}}})
	if err != nil || got.Content != "hi" {
		t.Fatalf("chat = %+v, %v", got, err)
	}
}

func TestEndpointHTTPClientFallsBackForTLS(t *testing.T) {
	hc, err := NewEndpointHTTPClient("https://api.example.com/v1", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hc.Transport.(*http.Transport); !ok {
		t.Fatalf("https endpoint got %T, want net/http's transport", hc.Transport)
	}
	if _, err := NewEndpointHTTPClient("http://[::1", 0, 4); err == nil {
		t.Fatal("a malformed URL was accepted")
	}
}
