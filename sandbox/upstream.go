package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// WaitUpstream polls the model through up, bypassing the relay so that no
// budget is spent, until it answers any HTTP request, ctx ends, or exited
// is closed (the model died first). The docker and kubernetes providers
// share it; their Upstream reaches the model through a socket or a
// port-forward rather than the process provider's shim.
func WaitUpstream(ctx context.Context, up Upstream, exited <-chan struct{}) error {
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return up.Dial(ctx) },
			DisableKeepAlives: true,
		},
		Timeout: 2 * time.Second,
	}
	defer client.CloseIdleConnections()
	host := up.Host
	if host == "" {
		host = "sandbox"
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
		if err != nil {
			return fmt.Errorf("readiness probe: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			return nil
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("model exited before it answered (last error: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("model not ready (last error: %v): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Upstream is a way to the model that bypasses the sandbox's own relay, so a
// stage can put a relay of its own in front of the same model (for example
// one per simulated network profile) without changing the sandbox's budgets
// or transcript. The model stays reachable only through the sandbox's unix
// socket: nothing new is opened into the sandbox.
func (s *Sandbox) Upstream() Upstream {
	socket := s.socket
	return Upstream{
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.spec.Port)),
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
}
