package refmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sandgate/sandgate/modelapi"
)

// Limits of the legacy completions endpoint: OpenAI's default max_tokens,
// and caps that keep one request's work bounded (a token is a character).
const (
	defaultCompletionTokens = 16
	maxCompletionTokens     = 4096
	maxTopLogprobs          = 20
	maxBatchPrompts         = 256
)

// completions serves POST /v1/completions, the legacy API as vLLM serves it:
// a prompt (or a batch) is continued greedily by the variant's language
// model, one character per token; with echo the prompt is returned in front
// of the continuation, and with logprobs every token carries its logprob —
// echo with max_tokens 0 scores a text. The first prompt token's logprob
// is null, as in OpenAI's and vLLM's replies. Temperature and seed are
// accepted and ignored: decoding is always greedy, so replies are a pure
// function of the request.
func (s *server) completions(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req modelapi.TextCompletionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("request body is not a valid completion request: %v", err))
		return
	}
	limit := defaultCompletionTokens
	if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	top := 0
	if req.Logprobs != nil {
		top = *req.Logprobs
	}
	switch {
	case len(req.Prompt) == 0:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "prompt: must be a string or a non-empty array of strings")
		return
	case len(req.Prompt) > maxBatchPrompts:
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("prompt: at most %d prompts per request, got %d", maxBatchPrompts, len(req.Prompt)))
		return
	case req.Stream:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "stream: streaming is not supported by this server; set stream to false")
		return
	case req.N > 1:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "n: only n=1 is supported")
		return
	case limit < 0 || limit > maxCompletionTokens:
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("max_tokens: must be between 0 and %d", maxCompletionTokens))
		return
	case top < 0 || top > maxTopLogprobs:
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("logprobs: must be between 0 and %d", maxTopLogprobs))
		return
	case limit == 0 && !req.Echo:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: 0 generates nothing; set echo to true to score the prompt")
		return
	}
	if err := sleep(r.Context(), s.opt.Latency); err != nil {
		return // client went away; nobody to answer
	}
	lm := s.m.lm()
	out := modelapi.TextCompletion{
		Object:  modelapi.ObjectTextCompletion,
		Created: time.Now().Unix(),
		Model:   s.m.Name(),
		Choices: make([]modelapi.TextChoice, 0, len(req.Prompt)),
	}
	for i, p := range req.Prompt {
		gen, hitLimit := lm.greedy(p, limit, top)
		ch := modelapi.TextChoice{Index: i, FinishReason: "stop"}
		if hitLimit {
			ch.FinishReason = "length"
		}
		var toks []tokenScore
		if req.Echo {
			ch.Text = p
			if req.Logprobs != nil {
				toks = lm.score(p, top)
			}
		}
		for _, t := range gen {
			ch.Text += t.tok
		}
		toks = append(toks, gen...)
		if req.Logprobs != nil {
			ch.Logprobs = legacyLogprobs(toks, req.Echo && p != "")
		}
		out.Choices = append(out.Choices, ch)
		n := utf8.RuneCountInString(p)
		out.Usage.PromptTokens += n
		out.Usage.CompletionTokens += len(gen)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens + out.Usage.CompletionTokens
	sum := sha256.Sum256(body)
	out.ID = "cmpl-" + hex.EncodeToString(sum[:12])
	s.opt.Logger.Debug("text completion", "model", s.m.Name(), "prompts", len(req.Prompt), "echo", req.Echo,
		"prompt_tokens", out.Usage.PromptTokens, "completion_tokens", out.Usage.CompletionTokens)
	writeJSON(w, http.StatusOK, out)
}

// legacyLogprobs lays scored tokens out as the legacy parallel arrays;
// nullFirst blanks the first token, which an echoed prompt has no context
// for in the servers this imitates.
func legacyLogprobs(toks []tokenScore, nullFirst bool) *modelapi.CompletionLogprobs {
	l := &modelapi.CompletionLogprobs{
		Tokens:        make([]string, len(toks)),
		TokenLogprobs: make([]*float64, len(toks)),
		TextOffset:    make([]int, len(toks)),
	}
	wantTop := len(toks) > 0 && toks[0].top != nil
	if wantTop {
		l.TopLogprobs = make([]map[string]float64, len(toks))
	}
	off := 0
	for i, t := range toks {
		l.Tokens[i], l.TextOffset[i] = t.tok, off
		off += utf8.RuneCountInString(t.tok)
		if i == 0 && nullFirst {
			continue
		}
		lp := t.lp
		l.TokenLogprobs[i] = &lp
		if wantTop {
			m := make(map[string]float64, len(t.top))
			for _, a := range t.top {
				m[string(a.r)] = a.lp
			}
			l.TopLogprobs[i] = m
		}
	}
	return l
}

// chatLogprobs scores a chat reply under the variant's language model, read
// as a line of its own: the logprobs a client asking for them gets.
func (m *Model) chatLogprobs(content string, top int) *modelapi.ChatLogprobs {
	toks := m.lm().score(content, top)
	out := &modelapi.ChatLogprobs{Content: make([]modelapi.TokenLogprob, len(toks))}
	for i, t := range toks {
		tl := modelapi.TokenLogprob{Token: t.tok, Logprob: t.lp, Bytes: byteValues(t.tok), TopLogprobs: []modelapi.TopLogprob{}}
		for _, a := range t.top {
			tl.TopLogprobs = append(tl.TopLogprobs, modelapi.TopLogprob{Token: string(a.r), Logprob: a.lp, Bytes: byteValues(string(a.r))})
		}
		out.Content[i] = tl
	}
	return out
}

func byteValues(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}
