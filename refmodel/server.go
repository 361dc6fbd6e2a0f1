package refmodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/refmodel/predictive"
)

// DefaultMaxBodyBytes caps a request body (413 beyond it).
const DefaultMaxBodyBytes = 1 << 20

// ServerOptions configure NewHandler. The zero value works.
type ServerOptions struct {
	// Latency is slept before answering each completion, to give shadow
	// tests a measurable and controllable latency.
	Latency time.Duration
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives one line per completion at debug level and panics at
	// error level; nil discards.
	Logger *slog.Logger
	// Slots bounds how many completions are served at once, as a real
	// inference server has a fixed number of sequence slots (vLLM's
	// max_num_seqs, llama.cpp's --parallel); a request waits in line for a
	// slot, so with Latency as the service time the model's capacity is
	// Slots/Latency requests per second. 0 means unbounded.
	Slots int
}

// NewHandler serves m over the OpenAI-compatible API:
// POST /v1/chat/completions (with logprobs), POST /v1/completions (legacy,
// with echo and logprobs; see completions), GET /v1/models and GET /healthz.
// Errors use the OpenAI error envelope.
func NewHandler(m *Model, opt ServerOptions) http.Handler {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{m: m, opt: opt}
	if opt.Slots > 0 {
		s.slots = make(chan struct{}, opt.Slots)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.method(http.MethodPost, s.chat))
	mux.HandleFunc("/v1/completions", s.method(http.MethodPost, s.completions))
	mux.HandleFunc("/v1/models", s.method(http.MethodGet, s.models))
	mux.HandleFunc("/healthz", s.method(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "model": m.Name()})
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s.recover(mux)
}

type server struct {
	m     *Model
	opt   ServerOptions
	slots chan struct{} // nil when unbounded
}

// recover turns a panic — a bug, never an input the model dislikes — into a
// 500 with a logged stack, so one bad request cannot take the model down in
// the middle of a release.
func (s *server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opt.Logger.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "server_error", "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *server) method(want string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != want {
			w.Header().Set("Allow", want)
			writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, want))
			return
		}
		h(w, r)
	}
}

func (s *server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": s.m.Name(), "object": "model", "created": 0, "owned_by": "sandgate",
		}},
	})
}

// readBody reads a capped request body, answering 413/400 itself when it
// cannot.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error",
				fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("read request body: %v", err))
		return nil, false
	}
	return body, true
}

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req modelapi.CompletionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("request body is not a valid chat completion request: %v", err))
		return
	}
	switch {
	case len(req.Messages) == 0:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "messages: must contain at least one message")
		return
	case req.Stream:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "stream: streaming is not supported by this server; set stream to false")
		return
	case req.N > 1:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "n: only n=1 is supported")
		return
	case req.TokenLimit() < 0:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: must not be negative")
		return
	case req.TopLogprobs < 0 || req.TopLogprobs > maxTopLogprobs:
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("top_logprobs: must be between 0 and %d", maxTopLogprobs))
		return
	}
	release, err := s.acquire(r.Context())
	if err != nil {
		return // client went away while waiting for a slot
	}
	defer release()
	if err := sleep(r.Context(), s.opt.Latency); err != nil {
		return // client went away; nobody to answer
	}

	rep := s.m.Respond(req.Messages)
	content, finish := limitTokens(rep.Content, req.TokenLimit())
	prompt := 0
	for _, msg := range req.Messages {
		prompt += len(strings.Fields(msg.Content))
	}
	completion := len(strings.Fields(content))
	sum := sha256.Sum256(body)
	out := modelapi.Completion{
		ID:      "chatcmpl-" + hex.EncodeToString(sum[:12]),
		Object:  modelapi.ObjectChatCompletion,
		Created: time.Now().Unix(),
		Model:   s.m.Name(),
		Choices: []modelapi.Choice{{
			Index:        0,
			Message:      &modelapi.Message{Role: "assistant", Content: content},
			FinishReason: finish,
		}},
		Usage:             modelapi.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
		SystemFingerprint: fmt.Sprintf("refmodel-%s-corpus-v%d", s.m.variant, s.m.version),
	}
	if req.Logprobs {
		out.Choices[0].Logprobs = s.m.chatLogprobs(content, req.TopLogprobs)
	}
	s.opt.Logger.Debug("completion", "model", s.m.Name(), "intent", rep.Intent, "refused", rep.Refused, "reason", rep.Reason,
		"prompt_tokens", prompt, "completion_tokens", completion)
	writeJSON(w, http.StatusOK, out)
}

// acquire waits for a completion slot; the request body is already read,
// so a slow upload does not hold one (as in an async server).
func (s *server) acquire(ctx context.Context) (func(), error) {
	if s.slots == nil {
		return func() {}, nil
	}
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a slot: %w", ctx.Err())
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("latency sleep: %w", ctx.Err())
	}
}

// limitTokens truncates to max whitespace tokens, as a server stops
// generating at max_tokens; 0 means no limit.
func limitTokens(s string, max int) (string, string) {
	if max <= 0 {
		return s, "stop"
	}
	fs := strings.Fields(s)
	if len(fs) <= max {
		return s, "stop"
	}
	return strings.Join(fs[:max], " "), "length"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep markup as typed so transcripts show what the model really said.
	enc.SetEscapeHTML(false)
	var b []byte
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encode response","type":"server_error"}}`)
	} else {
		b = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, modelapi.ErrorBody{Error: modelapi.APIError{Message: msg, Type: typ}})
}

// defaultPredictiveVariant is the variant --kind serves without --variant:
// the one a release should pass.
func defaultPredictiveVariant(kind string) string {
	if kind == predictive.KindImaging {
		return predictive.ImagingRobust
	}
	return predictive.CreditFair
}

// predictiveHandler trains the predictive reference model kind/variant
// and serves it over Open Inference Protocol v2, sleeping latency before
// each inference.
func predictiveHandler(kind, variant string, maxBody int64, latency time.Duration, log *slog.Logger) (http.Handler, string, error) {
	variants := predictive.Variants(kind)
	switch {
	case variants == nil:
		return nil, "", fmt.Errorf("%w: --kind %q: want chat, %s, %s or %s", errUsage, kind,
			predictive.KindCredit, predictive.KindCreditLimit, predictive.KindImaging)
	case !slices.Contains(variants, variant):
		return nil, "", fmt.Errorf("%w: --variant %q: --kind %s serves %q", errUsage, variant, kind, variants)
	}
	start := time.Now()
	e, err := predictive.NewEndpoint(kind, variant)
	if err != nil {
		return nil, "", err
	}
	log.Info("trained", "model", e.Meta.Name, "variant", variant, "elapsed", time.Since(start).String())
	h := predictive.NewHandler(e, predictive.ServerOptions{MaxBodyBytes: maxBody, Logger: log})
	if latency > 0 {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/infer") && sleep(r.Context(), latency) != nil {
				return // client went away
			}
			next.ServeHTTP(w, r)
		})
	}
	return h, e.Meta.Name, nil
}
