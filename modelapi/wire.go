package modelapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ObjectChatCompletion is the "object" value of a non-streaming completion.
const ObjectChatCompletion = "chat.completion"

// CompletionRequest is the request body as a server decodes it: ChatRequest
// plus the fields a server must look at to refuse what it does not
// implement (streaming, n > 1) instead of silently answering something else.
type CompletionRequest struct {
	Model               string    `json:"model"`
	Messages            []Message `json:"messages"`
	MaxTokens           int       `json:"max_tokens,omitempty"`
	MaxCompletionTokens int       `json:"max_completion_tokens,omitempty"`
	Temperature         *float64  `json:"temperature,omitempty"`
	Seed                *int64    `json:"seed,omitempty"`
	Stream              bool      `json:"stream,omitempty"`
	N                   int       `json:"n,omitempty"`
}

// TokenLimit is the completion-token cap the client asked for, 0 for none;
// max_completion_tokens is the newer spelling of max_tokens.
func (r CompletionRequest) TokenLimit() int {
	if r.MaxCompletionTokens > 0 {
		return r.MaxCompletionTokens
	}
	return r.MaxTokens
}

// Completion is the response body of POST /v1/chat/completions.
type Completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             Usage    `json:"usage"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
}

// Choice is one alternative of a completion. Message is a pointer so the
// parser can tell a missing message from an empty one.
type Choice struct {
	Index        int      `json:"index"`
	Message      *Message `json:"message"`
	FinishReason string   `json:"finish_reason"`
}

// ErrorBody is the OpenAI error envelope, {"error": {...}}.
type ErrorBody struct {
	Error APIError `json:"error"`
}

// APIError is the payload of ErrorBody. Code is a string in OpenAI
// ("context_length_exceeded") but a number in some servers, so it is raw.
type APIError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   *string         `json:"param"`
	Code    json.RawMessage `json:"code,omitempty"`
}

// ErrMalformed marks a 2xx response whose body is not a valid chat
// completion. It is always wrapped with the field that is wrong.
var ErrMalformed = errors.New("malformed chat completion")

// ParseCompletion validates a 2xx response body and flattens its first
// choice. Every failure wraps ErrMalformed and names the offending field.
func ParseCompletion(body []byte) (ChatResponse, error) {
	var c struct {
		Completion
		// Some gateways answer 200 with an error envelope; that is not an
		// empty answer.
		Error *APIError `json:"error"`
	}
	// JSON is UTF-8 (RFC 8259); encoding/json would quietly turn invalid
	// bytes into U+FFFD and hand the detectors a reply the model never sent.
	if !utf8.Valid(body) {
		return ChatResponse{}, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return ChatResponse{}, fmt.Errorf("%w: body is not JSON: %v", ErrMalformed, err)
	}
	if c.Error != nil {
		return ChatResponse{}, fmt.Errorf("%w: error: %q", ErrMalformed, truncate(c.Error.Message, 200))
	}
	if c.Object != "" && c.Object != ObjectChatCompletion {
		return ChatResponse{}, fmt.Errorf("%w: object is %q, want %q (streaming responses are not supported)",
			ErrMalformed, truncate(c.Object, 64), ObjectChatCompletion)
	}
	if len(c.Choices) == 0 {
		return ChatResponse{}, fmt.Errorf("%w: choices is empty", ErrMalformed)
	}
	ch := c.Choices[0]
	if ch.Message == nil {
		return ChatResponse{}, fmt.Errorf("%w: choices[0].message is missing", ErrMalformed)
	}
	u := c.Usage
	switch {
	case u.PromptTokens < 0:
		return ChatResponse{}, fmt.Errorf("%w: usage.prompt_tokens is negative (%d)", ErrMalformed, u.PromptTokens)
	case u.CompletionTokens < 0:
		return ChatResponse{}, fmt.Errorf("%w: usage.completion_tokens is negative (%d)", ErrMalformed, u.CompletionTokens)
	case u.TotalTokens < 0:
		return ChatResponse{}, fmt.Errorf("%w: usage.total_tokens is negative (%d)", ErrMalformed, u.TotalTokens)
	}
	return ChatResponse{
		ID:           c.ID,
		Model:        c.Model,
		Content:      ch.Message.Content,
		FinishReason: ch.FinishReason,
		Usage:        u,
	}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
