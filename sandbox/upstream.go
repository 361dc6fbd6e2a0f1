package sandbox

import (
	"context"
	"net"
	"strconv"
)

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
