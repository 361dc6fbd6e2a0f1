package stress

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sandgate/sandgate/refmodel"
	"github.com/sandgate/sandgate/sandbox"
)

// refUpstream serves the chat reference model with slots on loopback and
// returns the Upstream a relay reaches it by.
func refUpstream(t *testing.T, slots int, latency time.Duration) sandbox.Upstream {
	t.Helper()
	m, err := refmodel.New(refmodel.Hardened)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: refmodel.NewHandler(m, refmodel.ServerOptions{Latency: latency, Slots: slots})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	return sandbox.Upstream{Host: addr, Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
}

// The acceptance criterion at the domain level: the same model (4 slots,
// 10 ms: 400/s), the same caller (4 connections), a lower knee under wan
// than under lan. Each exchange holds a connection for its network delay
// too, so 4 connections carry about 4/(10.5 ms) ≈ 380/s under lan and
// 4/(~53 ms) ≈ 75/s under wan: 160/s is twice what wan carries and under
// half of what lan does.
func TestWANKneeBelowLAN(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("ramps two profiles for about 15 s, timing that -race distorts")
	}
	up := refUpstream(t, 4, 10*time.Millisecond)
	body, err := ChatBody("refmodel-hardened", 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	lan, _ := sandbox.LookupProfile("lan")
	wan, _ := sandbox.LookupProfile("wan")
	var progress int
	opt := Options{
		Profiles: []sandbox.NetProfile{lan, wan}, Rates: []float64{10, 20, 40, 80, 160}, ExpectedRPS: 40, Connections: 4,
		StepDuration: 1500 * time.Millisecond, Timeout: 2 * time.Second, Criteria: Criteria{SLOP99: 300 * time.Millisecond},
		Path: "/v1/chat/completions", Body: body, Seed: 7, Logger: slog.New(slog.DiscardHandler),
		Progress: func(StepRow) { progress++ },
	}
	steps, reqs, err := Run(context.Background(), up, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		t.Logf("%s %3.0f/s: achieved %6.1f/s p50 %6.1f p99 %7.1f ms, %d timeouts, %d errors, %.1f MB in, held %v %s",
			s.Profile, s.OfferedRPS, s.AchievedRPS, s.P50MS, s.P99MS, s.Timeouts, s.Errors, float64(s.BytesIn)/1e6, s.Held, s.Reason)
	}
	if progress != len(steps) {
		t.Errorf("progress called %d times for %d steps", progress, len(steps))
	}
	var sent int64
	for _, s := range steps {
		sent += s.Sent
	}
	if int64(len(reqs)) != sent {
		t.Errorf("%d request rows for %d sent", len(reqs), sent)
	}
	m := Metrics(steps)
	if !(m["stress.knee_rps.wan"] < m["stress.knee_rps.lan"]) {
		t.Errorf("knee wan %v, lan %v: want wan below lan", m["stress.knee_rps.wan"], m["stress.knee_rps.lan"])
	}
	if m["stress.knee_rps.wan"] >= 160 {
		t.Errorf("wan knee %v: 4 connections cannot carry 160/s over wan", m["stress.knee_rps.wan"])
	}
	if _, ok := m["stress.timeout_rate.wan"]; !ok {
		t.Error("no timeout rate at the expected load under wan")
	}
}
