package redteambench

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/internal/testutil"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/redteam"
)

// BenchmarkJudge is the detectors' share of one attempt of
// BenchmarkThroughput: every default detector judging the benchmark's reply
// to the generated prompts.
//
//	go test ./bench/redteam -run '^$' -bench Judge -benchmem
func BenchmarkJudge(b *testing.B) {
	var c modelapi.Completion
	if err := json.Unmarshal(reply, &c); err != nil {
		b.Fatal(err)
	}
	resp := modelapi.ChatResponse{Content: c.Choices[0].Message.Content, FinishReason: "stop"}
	prompts := slices.Collect(datasets.Prompts(1, 1000, datasets.PromptOptions{}))
	reg := redteam.DefaultDetectors()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testutil.ProcessCPU()
	for i := range b.N {
		v := reg.Judge(target, prompts[i%len(prompts)], resp, nil)
		if v.Outcome == redteam.Errored {
			b.Fatalf("errored: %+v", v)
		}
	}
	// CPU time, unlike ns/op, does not count the time other processes of
	// a shared machine held the cores.
	b.ReportMetric(float64((testutil.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkParseCompletion is the client's decoding share of one attempt.
func BenchmarkParseCompletion(b *testing.B) {
	b.ReportAllocs()
	cpu0 := testutil.ProcessCPU()
	for range b.N {
		if _, err := modelapi.ParseCompletion(reply); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((testutil.ProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
