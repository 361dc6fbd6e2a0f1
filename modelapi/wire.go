package modelapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
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
	Logprobs            bool      `json:"logprobs,omitempty"`
	TopLogprobs         int       `json:"top_logprobs,omitempty"`
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
	// Logprobs is set when the request asked for logprobs.
	Logprobs *ChatLogprobs `json:"logprobs,omitempty"`
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
	return parseCompletion(body, gojson.Unmarshal)
}

func parseCompletion(body []byte, unmarshal func([]byte, any) error) (ChatResponse, error) {
	var c struct {
		Completion
		// Shadows Completion.Choices: logprobs are decoded with pointers so
		// a missing value is told apart from a zero one.
		Choices []rawChatChoice `json:"choices"`
		// Some gateways answer 200 with an error envelope; that is not an
		// empty answer.
		Error *APIError `json:"error"`
	}
	// JSON is UTF-8 (RFC 8259); encoding/json would quietly turn invalid
	// bytes into U+FFFD and hand the detectors a reply the model never sent.
	if !utf8.Valid(body) {
		return ChatResponse{}, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	// go-json decodes into the same struct tags as encoding/json at about
	// half the CPU; a red-team run parses one reply per attempt, thousands
	// per second (bench/redteam). It skips unknown fields without checking
	// their syntax, so the body is validated first, and encoding/json
	// reports what is wrong. FuzzParseCompletionMatchesStdlib holds it to
	// encoding/json's results.
	if !json.Valid(body) {
		unmarshal = json.Unmarshal
	}
	if err := unmarshal(body, &c); err != nil {
		if nonFinite.Match(body) {
			return ChatResponse{}, &LogprobError{Field: "logprobs", Index: -1, Reason: "a number is NaN or Infinity, which JSON cannot carry"}
		}
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
	lp, err := ch.Logprobs.validate()
	if err != nil {
		return ChatResponse{}, err
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
		Logprobs:     lp,
	}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ChatLogprobs is the logprobs object of a chat choice: one entry per
// generated token.
type ChatLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one generated token with its natural-log probability and,
// when top_logprobs was asked for, the likeliest alternatives at its
// position.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes,omitempty"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one alternative token at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes,omitempty"`
}

// LogprobError is a 2xx reply whose logprobs cannot be used: a value is
// missing, not finite or above 0, or parallel arrays disagree in length. It
// matches ErrMalformed with errors.Is.
type LogprobError struct {
	Choice int    // choice index, 0 for chat
	Field  string // JSON path below the choice, e.g. "logprobs.token_logprobs"
	Index  int    // token position, -1 when the whole field is wrong
	Reason string
}

func (e *LogprobError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%v: choices[%d].%s: %s", ErrMalformed, e.Choice, e.Field, e.Reason)
	}
	return fmt.Sprintf("%v: choices[%d].%s[%d]: %s", ErrMalformed, e.Choice, e.Field, e.Index, e.Reason)
}

func (e *LogprobError) Unwrap() error { return ErrMalformed }

// ErrLogprobsUnsupported marks a 2xx reply that ignored a requested
// logprobs or echo: the endpoint does not support scoring, which is a
// property of the endpoint to report, not a failure of the run.
var ErrLogprobsUnsupported = errors.New("logprobs not supported by the endpoint")

// nonFinite spots the NaN/Infinity literals Python's json module writes;
// encoding/json rejects the whole body for them, and the caller deserves to
// know that a logprob, not the envelope, was broken.
var nonFinite = regexp.MustCompile(`[:,\[]\s*-?(?:NaN|Infinity)\s*[,\]}]`)

// maxLogprob tolerates the rounding a server's float32 softmax leaves above 0.
const maxLogprob = 1e-3

func checkLogprob(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprintf("logprob is %g; want a finite value ≤ 0", v)
	case v > maxLogprob:
		return fmt.Sprintf("logprob is %g; a log-probability cannot be positive", v)
	}
	return ""
}

type rawChatChoice struct {
	Index        int              `json:"index"`
	Message      *Message         `json:"message"`
	FinishReason string           `json:"finish_reason"`
	Logprobs     *rawChatLogprobs `json:"logprobs"`
}

type rawChatLogprobs struct {
	Content []struct {
		Token       *string  `json:"token"`
		Logprob     *float64 `json:"logprob"`
		Bytes       []int    `json:"bytes"`
		TopLogprobs []struct {
			Token   *string  `json:"token"`
			Logprob *float64 `json:"logprob"`
			Bytes   []int    `json:"bytes"`
		} `json:"top_logprobs"`
	} `json:"content"`
}

// validate converts raw chat logprobs, naming the first unusable entry.
func (r *rawChatLogprobs) validate() (*ChatLogprobs, error) {
	if r == nil {
		return nil, nil
	}
	out := &ChatLogprobs{Content: make([]TokenLogprob, 0, len(r.Content))}
	for i, t := range r.Content {
		if t.Token == nil {
			return nil, &LogprobError{Field: "logprobs.content", Index: i, Reason: "token is missing"}
		}
		if t.Logprob == nil {
			return nil, &LogprobError{Field: "logprobs.content", Index: i, Reason: "logprob is missing"}
		}
		if msg := checkLogprob(*t.Logprob); msg != "" {
			return nil, &LogprobError{Field: "logprobs.content", Index: i, Reason: msg}
		}
		tl := TokenLogprob{Token: *t.Token, Logprob: *t.Logprob, Bytes: t.Bytes}
		for j, a := range t.TopLogprobs {
			if a.Token == nil || a.Logprob == nil {
				return nil, &LogprobError{Field: "logprobs.content", Index: i, Reason: fmt.Sprintf("top_logprobs[%d] lacks token or logprob", j)}
			}
			if msg := checkLogprob(*a.Logprob); msg != "" {
				return nil, &LogprobError{Field: "logprobs.content", Index: i, Reason: fmt.Sprintf("top_logprobs[%d]: %s", j, msg)}
			}
			tl.TopLogprobs = append(tl.TopLogprobs, TopLogprob{Token: *a.Token, Logprob: *a.Logprob, Bytes: a.Bytes})
		}
		out.Content = append(out.Content, tl)
	}
	return out, nil
}

// ObjectTextCompletion is the "object" value of a legacy completion.
const ObjectTextCompletion = "text_completion"

// Prompts is the prompt of a legacy completion request: one string or an
// array of strings (a batch). Token-id arrays are not supported.
type Prompts []string

// UnmarshalJSON accepts "text" or ["a", "b"].
func (p *Prompts) UnmarshalJSON(b []byte) error {
	raw := strings.TrimSpace(string(b))
	if raw != "" && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = Prompts{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return fmt.Errorf("prompt: want a string or an array of strings (token ids are not supported): %w", err)
	}
	*p = ss
	return nil
}

// TextCompletionRequest is the body of POST /v1/completions, the legacy
// completions API that vLLM, llama.cpp and TGI still serve. With Echo and
// MaxTokens 0 it scores a text: the reply's logprobs are the prompt's own.
type TextCompletionRequest struct {
	Model  string  `json:"model"`
	Prompt Prompts `json:"prompt"`
	// MaxTokens is a pointer because 0 (score only) differs from absent
	// (the server's default, 16 in OpenAI's API).
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	// Logprobs asks for per-token logprobs with that many alternatives per
	// position (0 = the chosen token only).
	Logprobs *int `json:"logprobs,omitempty"`
	Echo     bool `json:"echo,omitempty"`
	Stream   bool `json:"stream,omitempty"`
	N        int  `json:"n,omitempty"`
}

// TextCompletion is the response body of POST /v1/completions.
type TextCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []TextChoice `json:"choices"`
	Usage   Usage        `json:"usage"`
}

// TextChoice is one completion; with Echo its Text starts with the prompt.
type TextChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
}

// CompletionLogprobs holds parallel per-token arrays, legacy style.
// TokenLogprobs entries are nil where the server has no context to score a
// token (the first prompt token). TextOffset is each token's start in Text
// in code points; it may be absent.
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs,omitempty"`
	TextOffset    []int                `json:"text_offset,omitempty"`
}

// ParseTextCompletion validates a 2xx /v1/completions body and returns it
// with choices ordered by index. Every failure wraps ErrMalformed; bad
// logprobs are a *LogprobError.
func ParseTextCompletion(body []byte) (TextCompletion, error) {
	var c struct {
		TextCompletion
		Error *APIError `json:"error"`
	}
	if !utf8.Valid(body) {
		return TextCompletion{}, fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		if nonFinite.Match(body) {
			return TextCompletion{}, &LogprobError{Field: "logprobs", Index: -1, Reason: "a number is NaN or Infinity, which JSON cannot carry"}
		}
		return TextCompletion{}, fmt.Errorf("%w: body is not JSON: %v", ErrMalformed, err)
	}
	if c.Error != nil {
		return TextCompletion{}, fmt.Errorf("%w: error: %q", ErrMalformed, truncate(c.Error.Message, 200))
	}
	out := c.TextCompletion
	if out.Object != "" && out.Object != ObjectTextCompletion {
		return TextCompletion{}, fmt.Errorf("%w: object is %q, want %q", ErrMalformed, truncate(out.Object, 64), ObjectTextCompletion)
	}
	if len(out.Choices) == 0 {
		return TextCompletion{}, fmt.Errorf("%w: choices is empty", ErrMalformed)
	}
	if u := out.Usage; u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens < 0 {
		return TextCompletion{}, fmt.Errorf("%w: usage has a negative count (%+v)", ErrMalformed, u)
	}
	sort.SliceStable(out.Choices, func(i, j int) bool { return out.Choices[i].Index < out.Choices[j].Index })
	for i, ch := range out.Choices {
		if ch.Index != i {
			return TextCompletion{}, fmt.Errorf("%w: choice indices are not 0..%d (found %d at position %d)", ErrMalformed, len(out.Choices)-1, ch.Index, i)
		}
		if err := ch.Logprobs.validate(i, ch.Text); err != nil {
			return TextCompletion{}, err
		}
	}
	return out, nil
}

func (l *CompletionLogprobs) validate(choice int, text string) error {
	if l == nil {
		return nil
	}
	n := len(l.Tokens)
	bad := func(field string, i int, format string, a ...any) error {
		return &LogprobError{Choice: choice, Field: "logprobs." + field, Index: i, Reason: fmt.Sprintf(format, a...)}
	}
	if len(l.TokenLogprobs) != n {
		return bad("token_logprobs", -1, "has %d entries for %d tokens", len(l.TokenLogprobs), n)
	}
	if l.TopLogprobs != nil && len(l.TopLogprobs) != n {
		return bad("top_logprobs", -1, "has %d entries for %d tokens", len(l.TopLogprobs), n)
	}
	if l.TextOffset != nil && len(l.TextOffset) != n {
		return bad("text_offset", -1, "has %d entries for %d tokens", len(l.TextOffset), n)
	}
	for i, v := range l.TokenLogprobs {
		if v == nil {
			continue
		}
		if msg := checkLogprob(*v); msg != "" {
			return bad("token_logprobs", i, "%s", msg)
		}
	}
	for i, m := range l.TopLogprobs {
		for tok, v := range m {
			if msg := checkLogprob(v); msg != "" {
				return bad("top_logprobs", i, "%q: %s", truncate(tok, 32), msg)
			}
		}
	}
	size := utf8.RuneCountInString(text)
	for i, o := range l.TextOffset {
		if o < 0 || o > size || (i > 0 && o < l.TextOffset[i-1]) {
			return bad("text_offset", i, "offset %d is outside the text (%d code points) or goes backwards", o, size)
		}
	}
	return nil
}
