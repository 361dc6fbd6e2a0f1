package modelapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/modelapi"
)

const chatLogprobsBody = `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},
"logprobs":{"content":[{"token":"H","logprob":-0.5,"bytes":[72],"top_logprobs":[{"token":"H","logprob":-0.5},{"token":"Y","logprob":-1.5}]},
{"token":"i","logprob":0}]},"finish_reason":"stop"}]}`

func TestParseCompletionLogprobs(t *testing.T) {
	r, err := modelapi.ParseCompletion([]byte(chatLogprobsBody))
	if err != nil {
		t.Fatal(err)
	}
	if r.Logprobs == nil || len(r.Logprobs.Content) != 2 {
		t.Fatalf("logprobs = %+v", r.Logprobs)
	}
	c := r.Logprobs.Content
	if c[0].Token != "H" || c[0].Logprob != -0.5 || len(c[0].TopLogprobs) != 2 || c[0].TopLogprobs[1].Token != "Y" || c[1].Logprob != 0 {
		t.Errorf("content = %+v", c)
	}
	// Without logprobs the pointer stays nil and the response comparable.
	r, err = modelapi.ParseCompletion([]byte(okBody))
	if err != nil || r.Logprobs != nil {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestParseCompletionHostileLogprobs(t *testing.T) {
	for name, lp := range map[string]string{
		"missing logprob": `{"content":[{"token":"a"}]}`,
		"missing token":   `{"content":[{"logprob":-1}]}`,
		"positive":        `{"content":[{"token":"a","logprob":3}]}`,
		"NaN literal":     `{"content":[{"token":"a","logprob":NaN}]}`,
		"-Infinity":       `{"content":[{"token":"a","logprob":-Infinity}]}`,
		"bad top":         `{"content":[{"token":"a","logprob":-1,"top_logprobs":[{"token":"b"}]}]}`,
		"positive top":    `{"content":[{"token":"a","logprob":-1,"top_logprobs":[{"token":"b","logprob":2}]}]}`,
	} {
		body := `{"choices":[{"message":{"content":"a"},"logprobs":` + lp + `}]}`
		_, err := modelapi.ParseCompletion([]byte(body))
		var le *modelapi.LogprobError
		if !errors.As(err, &le) || !errors.Is(err, modelapi.ErrMalformed) {
			t.Errorf("%s: err = %v, want *LogprobError wrapping ErrMalformed", name, err)
		}
	}
}

func f64(v float64) *float64 { return &v }

func textBody(t *testing.T, choices ...modelapi.TextChoice) string {
	t.Helper()
	b, err := json.Marshal(modelapi.TextCompletion{Object: modelapi.ObjectTextCompletion, Choices: choices})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseTextCompletion(t *testing.T) {
	lp := &modelapi.CompletionLogprobs{Tokens: []string{"ab", "c"}, TokenLogprobs: []*float64{nil, f64(-2)}, TextOffset: []int{0, 2}}
	body := textBody(t, modelapi.TextChoice{Index: 1, Text: "xyz"}, modelapi.TextChoice{Index: 0, Text: "abc", Logprobs: lp})
	got, err := modelapi.ParseTextCompletion([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 2 || got.Choices[0].Text != "abc" || got.Choices[1].Text != "xyz" {
		t.Fatalf("choices not ordered by index: %+v", got.Choices)
	}
	l := got.Choices[0].Logprobs
	if l.TokenLogprobs[0] != nil || *l.TokenLogprobs[1] != -2 {
		t.Errorf("logprobs = %+v", l)
	}
}

func TestParseTextCompletionHostile(t *testing.T) {
	for name, body := range map[string]string{
		"short logprobs":  `{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1]}}]}`,
		"short offsets":   `{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1,-1],"text_offset":[0]}}]}`,
		"short top":       `{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1,-1],"top_logprobs":[null]}}]}`,
		"offset past end": `{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1,-1],"text_offset":[0,9]}}]}`,
		"offset backward": `{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1,-1],"text_offset":[1,0]}}]}`,
		"NaN":             `{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[NaN]}}]}`,
		"positive":        `{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[0.5]}}]}`,
		"positive top":    `{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[-1],"top_logprobs":[{"b":1}]}}]}`,
	} {
		_, err := modelapi.ParseTextCompletion([]byte(body))
		var le *modelapi.LogprobError
		if !errors.As(err, &le) || !errors.Is(err, modelapi.ErrMalformed) {
			t.Errorf("%s: err = %v, want *LogprobError", name, err)
		}
	}
	for name, body := range map[string]string{
		"empty":       `{"choices":[]}`,
		"gap":         `{"choices":[{"index":0},{"index":2}]}`,
		"duplicate":   `{"choices":[{"index":0},{"index":0}]}`,
		"chat object": `{"object":"chat.completion","choices":[{"index":0}]}`,
		"error":       `{"error":{"message":"no"}}`,
		"not json":    `{`,
	} {
		if _, err := modelapi.ParseTextCompletion([]byte(body)); !errors.Is(err, modelapi.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestCompleteRequestAndChecks(t *testing.T) {
	var got map[string]any
	var reply string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/completions" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = nil
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("request body: %v", err)
		}
		io.WriteString(w, reply)
	}))
	defer srv.Close()
	c := &modelapi.Client{BaseURL: srv.URL + "/v1"}
	zero, one := 0, 1
	req := modelapi.TextCompletionRequest{Model: "m", Prompt: modelapi.Prompts{"ab", "cd"}, MaxTokens: &zero, Logprobs: &one, Echo: true}
	lp := func() *modelapi.CompletionLogprobs {
		return &modelapi.CompletionLogprobs{Tokens: []string{"a", "b"}, TokenLogprobs: []*float64{nil, f64(-1)}}
	}

	reply = textBody(t, modelapi.TextChoice{Index: 0, Text: "ab", Logprobs: lp()}, modelapi.TextChoice{Index: 1, Text: "cd", Logprobs: lp()})
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got["max_tokens"] != 0.0 || got["logprobs"] != 1.0 || got["echo"] != true || len(got["prompt"].([]any)) != 2 {
		t.Errorf("request = %v", got)
	}

	for name, tc := range map[string]struct {
		reply string
		want  error
	}{
		"no logprobs": {textBody(t, modelapi.TextChoice{Index: 0, Text: "ab"}, modelapi.TextChoice{Index: 1, Text: "cd"}), modelapi.ErrLogprobsUnsupported},
		"no echo":     {textBody(t, modelapi.TextChoice{Index: 0, Text: "", Logprobs: lp()}, modelapi.TextChoice{Index: 1, Text: "cd", Logprobs: lp()}), modelapi.ErrLogprobsUnsupported},
		"one choice":  {textBody(t, modelapi.TextChoice{Index: 0, Text: "ab", Logprobs: lp()}), modelapi.ErrMalformed},
	} {
		reply = tc.reply
		if _, err := c.Complete(context.Background(), req); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}

	if _, err := (&modelapi.Client{BaseURL: srv.URL}).Complete(context.Background(), modelapi.TextCompletionRequest{}); err == nil || !strings.Contains(err.Error(), "Prompt is empty") {
		t.Errorf("empty prompt: %v", err)
	}
	var se *modelapi.StatusError
	if _, err := (&modelapi.Client{BaseURL: srv.URL + "/nope"}).Complete(context.Background(), req); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("404: %v", err)
	}
}

func TestPromptsJSON(t *testing.T) {
	var r modelapi.TextCompletionRequest
	if err := json.Unmarshal([]byte(`{"prompt":"one"}`), &r); err != nil || len(r.Prompt) != 1 || r.Prompt[0] != "one" {
		t.Errorf("string prompt: %v %v", r.Prompt, err)
	}
	if err := json.Unmarshal([]byte(`{"prompt":["a","b"]}`), &r); err != nil || len(r.Prompt) != 2 {
		t.Errorf("array prompt: %v %v", r.Prompt, err)
	}
	if err := json.Unmarshal([]byte(`{"prompt":[1,2]}`), &r); err == nil {
		t.Error("token ids accepted")
	}
}

func FuzzParseTextCompletion(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[null,-1],"text_offset":[0,1],"top_logprobs":[null,{"b":-1}]}}]}`,
		`{"choices":[{"index":0,"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-1]}}]}`,
		`{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[NaN]}}]}`,
		`{"choices":[{"index":1},{"index":0}]}`,
		`{"choices":[{"index":0,"text":"é","logprobs":{"tokens":["é"],"token_logprobs":[-1],"text_offset":[1]}}]}`,
		chatLogprobsBody,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tc, err := modelapi.ParseTextCompletion(body)
		if err != nil {
			if !errors.Is(err, modelapi.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		for i, ch := range tc.Choices {
			if ch.Index != i {
				t.Fatalf("choice %d has index %d", i, ch.Index)
			}
			if l := ch.Logprobs; l != nil {
				if len(l.TokenLogprobs) != len(l.Tokens) || (l.TextOffset != nil && len(l.TextOffset) != len(l.Tokens)) {
					t.Fatalf("length mismatch accepted: %+v", l)
				}
				for _, v := range l.TokenLogprobs {
					if v != nil && !(*v <= 1e-3) {
						t.Fatalf("bad logprob accepted: %v", *v)
					}
				}
			}
		}
		// The chat parser must hold the same line on logprobs.
		if r, err := modelapi.ParseCompletion(body); err == nil && r.Logprobs != nil {
			for _, c := range r.Logprobs.Content {
				if !(c.Logprob <= 1e-3) {
					t.Fatalf("bad chat logprob accepted: %v", c.Logprob)
				}
			}
		}
	})
}
