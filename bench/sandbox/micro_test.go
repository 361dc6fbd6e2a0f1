package sandboxbench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/sandbox"
)

// BenchmarkRelayClosedLoop is a CPU-profiling aid: one relayed request per
// iteration, parallel, no pacing.
func BenchmarkRelayClosedLoop(b *testing.B) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, reply)
	}))
	defer model.Close()
	addr := model.Listener.Addr().String()
	relay, err := sandbox.NewRelay(sandbox.RelayOptions{MaxRequests: 1 << 40}, sandbox.Upstream{Host: addr, Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()
	for _, tc := range []struct{ name, url string }{{"direct", model.URL}, {"relay", relay.URL()}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Post(tc.url+"/v1/chat/completions", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
