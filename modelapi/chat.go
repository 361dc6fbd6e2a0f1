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
	"encoding/json"
	"fmt"
	"strings"
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
}
