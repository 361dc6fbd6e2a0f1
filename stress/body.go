package stress

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sandgate/sandgate/modelapi"
)

// filler is the text a long context is made of: ordinary prose, so a model
// that looks at it sees nothing unusual.
const filler = "The store opens at nine and closes at six on weekdays. Returns are accepted within thirty days with a receipt. "

// ChatBody is an OpenAI chat completion request of about size bytes: a
// long document in an earlier turn (as a retrieval-augmented client sends),
// the model's acknowledgement, then a short question. A model reads the
// whole body off the link but answers only the last turn, so the size
// loads the link without changing the work of the answer. size 0 sends
// the question alone.
func ChatBody(model string, size, maxTokens int) ([]byte, error) {
	question := modelapi.Message{Role: "user", Content: "What are your opening hours?"}
	msgs := []modelapi.Message{question}
	base, err := json.Marshal(modelapi.CompletionRequest{Model: model, Messages: msgs, MaxTokens: maxTokens})
	if err != nil {
		return nil, fmt.Errorf("stress: chat body: %w", err)
	}
	if pad := size - len(base); pad > 0 {
		ack := modelapi.Message{Role: "assistant", Content: "I have read the document."}
		overhead := len(`,{"role":"user","content":"Here is the document:\n"},{"role":"assistant","content":""}`) + len(ack.Content)
		n := max(0, pad-overhead)
		doc := strings.Repeat(filler, n/len(filler)+1)[:n]
		msgs = []modelapi.Message{{Role: "user", Content: "Here is the document:\n" + doc}, ack, question}
	}
	b, err := json.Marshal(modelapi.CompletionRequest{Model: model, Messages: msgs, MaxTokens: maxTokens})
	if err != nil {
		return nil, fmt.Errorf("stress: chat body: %w", err)
	}
	return b, nil
}
