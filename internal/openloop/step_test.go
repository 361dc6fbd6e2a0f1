package openloop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Every scheduled request comes back with its outcome: fast ones OK, a
// hanging one as a timeout at exactly the timeout, a 500 as an error.
func TestStepOutcomes(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, "/") {
		case "hang":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "fail":
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want Outcome
	}{{"ok", OK}, {"hang", TimedOut}, {"fail", Failed}} {
		reqs, err := Step(ctx, srv.Client(), StepOptions{URL: srv.URL + "/" + tc.path, Body: []byte(`{}`), Rate: 50, Duration: 200 * time.Millisecond, Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != 10 {
			t.Fatalf("%s: %d requests, want 10", tc.path, len(reqs))
		}
		for i, r := range reqs {
			if r.Outcome != tc.want {
				t.Errorf("%s: request %d: %v (%s), want %v", tc.path, i, r.Outcome, r.Err, tc.want)
			}
			if want := time.Duration(i) * 20 * time.Millisecond; r.Scheduled != want {
				t.Errorf("%s: request %d scheduled at %v, want %v", tc.path, i, r.Scheduled, want)
			}
			if tc.want == TimedOut && r.Latency != 100*time.Millisecond {
				t.Errorf("timeout recorded as %v, want the 100ms timeout", r.Latency)
			}
		}
	}
	if _, err := Step(ctx, srv.Client(), StepOptions{URL: srv.URL, Rate: 0, Duration: time.Second, Timeout: time.Second}); err == nil {
		t.Error("rate 0 accepted")
	}
}
