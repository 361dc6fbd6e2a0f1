// Package modelapi is a client for the model endpoints users already run:
// the OpenAI-compatible chat completions API (vLLM, Ollama, llama.cpp
// server, TGI, OpenAI). It also exports the wire types so sandgate's
// reference model server speaks exactly what the client parses.
//
// The model under test is adversarial: every response is size-limited and
// validated, and a 2xx body that is not a chat completion is an error
// (ErrMalformed), never an empty answer that a detector would score as
// "defended".
package modelapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// UnmarshalJSON accepts content as a string, null, or an array of content
// parts ([{"type":"text","text":"..."}]), the three shapes OpenAI-compatible
// peers send; text parts are concatenated and other part types ignored,
// since sandgate only evaluates text.
func (m *Message) UnmarshalJSON(b []byte) error {
	var w struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	m.Role = w.Role
	m.Content = ""
	raw := strings.TrimSpace(string(w.Content))
	switch {
	case raw == "" || raw == "null":
		return nil
	case raw[0] == '"':
		return json.Unmarshal(w.Content, &m.Content)
	case raw[0] == '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(w.Content, &parts); err != nil {
			return fmt.Errorf("content parts: %w", err)
		}
		var sb strings.Builder
		for _, p := range parts {
			if p.Type == "text" || (p.Type == "" && p.Text != "") {
				sb.WriteString(p.Text)
			}
		}
		m.Content = sb.String()
		return nil
	default:
		return fmt.Errorf("content: want string, null or array of parts, got %.20s", raw)
	}
}

// ChatRequest is what sandgate asks of a model. It marshals to the OpenAI
// request body.
type ChatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
	Seed        *int64    `json:"seed,omitempty"`
	// Logprobs asks for the generated tokens' logprobs, TopLogprobs (0–20)
	// for that many alternatives per token. An endpoint that ignores them
	// leaves ChatResponse.Logprobs nil.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs int  `json:"top_logprobs,omitempty"`
}

// Usage is the token accounting the server reports.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatResponse is the first choice of a completion, flattened.
type ChatResponse struct {
	ID           string `json:"id"`
	Model        string `json:"model"`
	Content      string `json:"content"`
	FinishReason string `json:"finish_reason"`
	Usage        Usage  `json:"usage"`
	// Logprobs is nil unless the request asked for logprobs and the
	// endpoint supports them. A pointer keeps ChatResponse comparable.
	Logprobs *ChatLogprobs `json:"logprobs,omitempty"`
}

// CompletionsEndpoint is the URL Complete posts to.
func (c *Client) CompletionsEndpoint() string { return c.v1("completions") }

// Complete sends one legacy completions request (POST /v1/completions),
// possibly a batch of prompts, and returns every choice ordered by index:
// choice i·n+j is the j-th completion of prompt i.
//
// Errors are Chat's, plus: a reply whose choice count does not match the
// batch is ErrMalformed; a reply that ignored a requested Logprobs or Echo
// wraps ErrLogprobsUnsupported.
func (c *Client) Complete(ctx context.Context, req TextCompletionRequest) (TextCompletion, error) {
	switch {
	case c.BaseURL == "":
		return TextCompletion{}, errors.New("modelapi: Client.BaseURL is empty; set it to the server root, e.g. http://127.0.0.1:8000")
	case len(req.Prompt) == 0:
		return TextCompletion{}, errors.New("modelapi: TextCompletionRequest.Prompt is empty; give at least one prompt")
	case req.MaxTokens != nil && *req.MaxTokens < 0:
		return TextCompletion{}, fmt.Errorf("modelapi: TextCompletionRequest.MaxTokens is negative (%d); use 0 to score the prompt only", *req.MaxTokens)
	case req.Stream:
		return TextCompletion{}, errors.New("modelapi: TextCompletionRequest.Stream is not supported; leave it false")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return TextCompletion{}, fmt.Errorf("modelapi: encode request: %w", err)
	}
	url := c.CompletionsEndpoint()
	b, err := c.post(ctx, url, body)
	if err != nil {
		return TextCompletion{}, err
	}
	out, err := ParseTextCompletion(b)
	if err != nil {
		return TextCompletion{}, fmt.Errorf("modelapi: response from %s: %w", url, err)
	}
	if want := len(req.Prompt) * max(req.N, 1); len(out.Choices) != want {
		return TextCompletion{}, fmt.Errorf("modelapi: response from %s: %w: %d choices for %d prompts × n=%d",
			url, ErrMalformed, len(out.Choices), len(req.Prompt), max(req.N, 1))
	}
	for i, ch := range out.Choices {
		if req.Logprobs != nil && ch.Logprobs == nil {
			return TextCompletion{}, fmt.Errorf("modelapi: response from %s: choices[%d] has no logprobs although the request asked for them: %w", url, i, ErrLogprobsUnsupported)
		}
		if p := req.Prompt[i/max(req.N, 1)]; req.Echo && !strings.HasPrefix(ch.Text, p) {
			return TextCompletion{}, fmt.Errorf("modelapi: response from %s: choices[%d] does not echo its prompt although the request set echo: %w", url, i, ErrLogprobsUnsupported)
		}
	}
	return out, nil
}

// post sends a JSON body and returns a 2xx body, size-capped: Chat and
// Complete share it, so both APIs fail the same way.
func (c *Client) post(ctx context.Context, url string, body []byte) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("modelapi: build request for %s: %w", url, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("modelapi: post %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		// Drain a little so the connection can be reused; give up on more.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &StatusError{Code: resp.StatusCode, Body: string(b),
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = MaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("modelapi: read response from %s: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("modelapi: %w: body exceeds %d bytes", ErrMalformed, limit)
	}
	return b, nil
}
