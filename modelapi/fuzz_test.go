package modelapi_test

import (
	"errors"
	"testing"

	"github.com/sandgate/sandgate/modelapi"
)

func FuzzParseCompletion(f *testing.F) {
	for _, s := range []string{
		okBody,
		`{}`,
		`null`,
		`[]`,
		`{"choices":null}`,
		`{"choices":[{}]}`,
		`{"choices":[{"message":null}]}`,
		`{"choices":[{"message":{"content":[{"type":"text","text":"a"}]}}]}`,
		`{"choices":[{"message":{"content":{"x":1}}}]}`,
		`{"choices":[{"message":{"content":"\u0000\ud800"}}],"usage":{"total_tokens":1e99}}`,
		`{"error":{"message":"x","code":400}}`,
		`{"object":"chat.completion.chunk"}`,
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := modelapi.ParseCompletion(body)
		if err != nil {
			if !errors.Is(err, modelapi.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			if r != (modelapi.ChatResponse{}) {
				t.Fatalf("non-zero response with error: %+v", r)
			}
			return
		}
		if r.Usage.PromptTokens < 0 || r.Usage.CompletionTokens < 0 || r.Usage.TotalTokens < 0 {
			t.Fatalf("negative usage accepted: %+v", r.Usage)
		}
	})
}
