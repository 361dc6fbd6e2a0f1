package modelapi

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseCompletionMatchesStdlib holds ParseCompletion's decoder
// (go-json, for speed) to encoding/json: the same bodies are accepted, and
// accepted bodies give the same reply.
func FuzzParseCompletionMatchesStdlib(f *testing.F) {
	for _, s := range []string{
		`{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`,
		`{"choices":[{"message":{"role":"assistant","content":"a\u00e9\ud83d\ude00\n"},"logprobs":{"content":[{"token":"a","logprob":-0.5,"top_logprobs":[{"token":"a","logprob":-0.5}]}]}}]}`,
		`{"choices":[{"message":{"content":"x"},"message":{"content":"y"}}]}`,
		`{"Choices":[{"MESSAGE":{"Content":"case"}}]}`,
		`{"choices":[{"message":null}]}`,
		`{"error":{"message":"overloaded"}}`,
		`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":-1}}`,
		`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1e2}}`,
		`{"choices":[{"message":{"content":"x\ud800"}}]}`,
		`{"choices":[]} trailing`,
		`{"object":"chat.completion.chunk","choices":[{"message":{"content":"x"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gerr := ParseCompletion(body)
		want, werr := parseCompletion(body, json.Unmarshal)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("body %q: go-json err %v, encoding/json err %v", body, gerr, werr)
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q:\n go-json       %+v\n encoding/json %+v", body, got, want)
		}
	})
}
