package sandbox

import (
	"bytes"
	"encoding/json"
	"sync"
)

// usageTail is how much of a reply's end is kept to find its usage object:
// in a stream it is the last event, in a JSON body usually the last field.
const usageTail = 8 << 10

// headTail keeps the first max bytes of a body (for the transcript) and its
// last usageTail bytes (for token counting), whatever its length. The
// request side is written by the transport's goroutine, hence the lock.
type headTail struct {
	mu    sync.Mutex
	max   int
	head  []byte
	tail  []byte
	total int64
}

func newHeadTail(max int) *headTail { return &headTail{max: max} }

func (h *headTail) Write(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total += int64(len(p))
	if room := h.max - len(h.head); room > 0 {
		h.head = append(h.head, p[:min(room, len(p))]...)
	}
	if len(p) >= usageTail {
		h.tail = append(h.tail[:0], p[len(p)-usageTail:]...)
		return
	}
	h.tail = append(h.tail, p...)
	if over := len(h.tail) - usageTail; over > 0 {
		h.tail = append(h.tail[:0], h.tail[over:]...)
	}
}

func (h *headTail) headString() (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.head), h.total > int64(len(h.head))
}

func (h *headTail) tailBytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Clone(h.tail)
}

// tokenUsage covers the OpenAI chat/completions names and the
// responses-API names.
type tokenUsage struct {
	TotalTokens      int64 `json:"total_tokens"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
}

func (u tokenUsage) total() int64 {
	if u.TotalTokens > 0 {
		return u.TotalTokens
	}
	return u.PromptTokens + u.CompletionTokens + u.InputTokens + u.OutputTokens
}

// usageTokens returns the tokens of the last parseable "usage" object in
// the reply's tail, 0 when there is none (a model that reports no usage is
// held to the request and byte budgets only).
func usageTokens(h *headTail) int64 { return parseUsage(h.tailBytes()) }

var usageKey = []byte(`"usage"`)

func parseUsage(b []byte) int64 {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], usageKey)
		if i < 0 {
			return 0
		}
		end = i
		rest := bytes.TrimLeft(b[i+len(usageKey):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		var u *tokenUsage
		dec := json.NewDecoder(bytes.NewReader(rest[1:]))
		if err := dec.Decode(&u); err != nil || u == nil {
			// A null usage (stream chunks before the last) or a cut-off
			// object: look further back.
			continue
		}
		if n := u.total(); n > 0 {
			return n
		}
	}
}
