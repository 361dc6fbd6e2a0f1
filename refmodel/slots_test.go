package refmodel

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sandgate/sandgate/modelapi"
)

// With one slot and a service time L, k concurrent completions cannot all
// be done before k·L: they are served one after another. Without slots they
// overlap. Only lower bounds are asserted, which no scheduler can break.
func TestSlotsServeInLine(t *testing.T) {
	const latency = 40 * time.Millisecond
	const k = 4
	run := func(slots int) time.Duration {
		c := &modelapi.Client{BaseURL: newServer(t, Hardened, ServerOptions{Latency: latency, Slots: slots}).URL}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, k)
		for range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Chat(context.Background(), modelapi.ChatRequest{Messages: []modelapi.Message{{Role: "user", Content: "What are your opening hours?"}}})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start)
	}
	if got := run(1); got < k*latency {
		t.Errorf("1 slot: %d completions took %v, want at least %v (one at a time)", k, got, k*latency)
	}
	if got := run(2); got < k/2*latency {
		t.Errorf("2 slots: %d completions took %v, want at least %v", k, got, k/2*latency)
	}
}

func TestSlotsFlagRefusesNegative(t *testing.T) {
	err := Run(context.Background(), []string{"--slots", "-1"}, new(discard))
	if err == nil {
		t.Fatal("--slots -1 accepted")
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }
