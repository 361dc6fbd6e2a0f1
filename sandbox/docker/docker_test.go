package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/sandgate/sandgate/sandbox"
)

func testOptions(t *testing.T, eng *fakeEngine) Options {
	t.Helper()
	dir, err := os.MkdirTemp("", "sgds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "sandgate-splice")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	user := "65534:65534"
	if os.Geteuid() != 0 {
		user = fmt.Sprintf("%d:%d", os.Geteuid(), os.Getegid())
	}
	return Options{
		Image: "ghcr.io/acme/model:1.4", SpliceBinary: bin, Host: eng.Host(),
		SocketRoot: filepath.Join(dir, "run"), User: user, TmpfsBytes: 32 << 20,
		StopGrace: time.Second,
	}
}

func modelServer(t *testing.T) (*httptest.Server, int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().(*net.TCPAddr).Port
}

func testSpec(port int) sandbox.Spec {
	return sandbox.Spec{
		Name:    "candidate-Harbor",
		Command: []string{"/usr/bin/model-server", "--listen", fmt.Sprintf("127.0.0.1:%d", port)},
		Port:    port,
		Env:     []string{"MODEL=harbor"},
		Limits:  sandbox.Limits{CPUs: 1.5, MemoryBytes: 256 << 20, Pids: 64, WallClock: time.Hour},
		Relay:   &sandbox.RelayOptions{MaxRequests: 1},
	}
}

func callsMatching(calls []apiCall, method, suffix string) []apiCall {
	var out []apiCall
	for _, c := range calls {
		if c.Method == method && strings.HasSuffix(c.Path, suffix) {
			out = append(out, c)
		}
	}
	return out
}

func TestStartCreatesSealedContainerAndTeardownRemovesIt(t *testing.T) {
	eng := newFakeEngine(t)
	_, port := modelServer(t)
	opt := testOptions(t, eng)
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, err := p.Start(ctx, testSpec(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(context.Background()) })

	creates := callsMatching(eng.Calls(), http.MethodPost, "/containers/create")
	if len(creates) != 1 {
		t.Fatalf("create calls: %v", eng.Calls())
	}
	body := creates[0].Body
	if got := creates[0].Query.Get("name"); got != sb.ID() || !strings.HasPrefix(got, "sg-candidate-harbor-") {
		t.Errorf("container name %q, sandbox id %q", got, sb.ID())
	}
	hc := body["HostConfig"].(map[string]any)
	for key, want := range map[string]any{
		"NetworkMode":    "none",
		"ReadonlyRootfs": true,
		"Privileged":     false,
		"Memory":         float64(256 << 20),
		"MemorySwap":     float64(256 << 20),
		"NanoCpus":       float64(1.5e9),
		"PidsLimit":      float64(64),
		"IpcMode":        "private",
		"Init":           true,
	} {
		if hc[key] != want {
			t.Errorf("HostConfig.%s = %v (%T), want %v", key, hc[key], hc[key], want)
		}
	}
	if got := fmt.Sprint(hc["CapDrop"]); got != "[ALL]" {
		t.Errorf("HostConfig.CapDrop = %s, want [ALL]", got)
	}
	if hc["CapAdd"] != nil && fmt.Sprint(hc["CapAdd"]) != "[]" {
		t.Errorf("HostConfig.CapAdd = %v, want none", hc["CapAdd"])
	}
	secOpt := fmt.Sprint(hc["SecurityOpt"])
	if !strings.Contains(secOpt, "no-new-privileges:true") || strings.Contains(secOpt, "seccomp") {
		t.Errorf("HostConfig.SecurityOpt = %s, want no-new-privileges and the default seccomp profile", secOpt)
	}
	if pb := hc["PortBindings"]; pb != nil && fmt.Sprint(pb) != "map[]" {
		t.Errorf("HostConfig.PortBindings = %v, want none", pb)
	}
	tmpfs := hc["Tmpfs"].(map[string]any)
	if got := tmpfs["/tmp"]; got != fmt.Sprintf("rw,noexec,nosuid,nodev,size=%d", 32<<20) {
		t.Errorf("HostConfig.Tmpfs[/tmp] = %v", got)
	}
	var runBind, spliceBind map[string]any
	for _, m := range hc["Mounts"].([]any) {
		mm := m.(map[string]any)
		switch mm["Target"] {
		case RunDir:
			runBind = mm
		case SpliceBin:
			spliceBind = mm
		}
	}
	if runBind == nil || runBind["Type"] != "bind" || runBind["Source"] != filepath.Join(opt.SocketRoot, sb.ID()) {
		t.Errorf("run dir bind = %v", runBind)
	}
	if spliceBind == nil || spliceBind["ReadOnly"] != true || spliceBind["Source"] != opt.SpliceBinary {
		t.Errorf("splice binary bind = %v, want read-only from %s", spliceBind, opt.SpliceBinary)
	}
	if body["User"] != opt.User {
		t.Errorf("User = %v, want %s", body["User"], opt.User)
	}
	wantEP := fmt.Sprintf("[%s -socket %s/model.sock -port %d --]", SpliceBin, RunDir, port)
	if got := fmt.Sprint(body["Entrypoint"]); got != wantEP {
		t.Errorf("Entrypoint = %s, want %s", got, wantEP)
	}
	if got := fmt.Sprint(body["Env"]); got != "[MODEL=harbor HOME=/tmp TMPDIR=/tmp]" {
		t.Errorf("Env = %s", got)
	}
	// The restrictions are checked before the model runs.
	calls := eng.Calls()
	iInspect := slices.IndexFunc(calls, func(c apiCall) bool { return c.Method == "GET" && strings.HasSuffix(c.Path, "/json") })
	iStart := slices.IndexFunc(calls, func(c apiCall) bool { return strings.HasSuffix(c.Path, "/start") })
	if iInspect < 0 || iStart < 0 || iInspect > iStart {
		t.Errorf("inspect (%d) must come before start (%d): %v", iInspect, iStart, calls)
	}
	ev := sb.Evidence()
	if err := ev.Check(testSpec(port).Limits); err != nil {
		t.Errorf("evidence of a sealed container fails its check: %v", err)
	}
	if ev.Applied == nil || ev.Applied.NetworkMode != "none" || ev.ContainerID != sb.ContainerID() {
		t.Errorf("evidence %+v", ev)
	}

	// The way in: relay -> socket -> splice -> model; budgets hold.
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sb.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(sb.Endpoint() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"ok":true}` {
		t.Fatalf("through the relay: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(sb.Endpoint() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("request over the budget: %d, want 429", resp.StatusCode)
	}

	fe, err := sb.Freeze(ctx)
	if err != nil || !fe.Paused {
		t.Fatalf("Freeze = %+v, %v", fe, err)
	}
	if err := sb.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if len(callsMatching(eng.Calls(), "POST", "/pause")) != 1 || len(callsMatching(eng.Calls(), "POST", "/unpause")) != 1 {
		t.Errorf("pause/unpause calls: %v", eng.Calls())
	}

	td, err := sb.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !td.ContainerGone || !td.SocketDirGone {
		t.Errorf("teardown %+v", td)
	}
	if _, err := os.Lstat(filepath.Join(opt.SocketRoot, sb.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir still there: %v", err)
	}
	select {
	case <-sb.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	after := eng.Calls()[len(calls):]
	stops := callsMatching(after, "POST", "/stop")
	dels := callsMatching(after, "DELETE", "/containers/"+sb.ContainerID())
	if len(stops) != 1 || stops[0].Query.Get("t") != "1" {
		t.Errorf("stop calls %v, want one with t=1", stops)
	}
	if len(dels) != 1 || dels[0].Query.Get("force") != "1" || dels[0].Query.Get("v") != "1" {
		t.Errorf("remove calls %v, want one with force=1&v=1", dels)
	}
	iDel := slices.IndexFunc(after, func(c apiCall) bool { return c.Method == "DELETE" })
	if !slices.ContainsFunc(after[iDel+1:], func(c apiCall) bool { return c.Method == "GET" && strings.HasSuffix(c.Path, "/json") }) {
		t.Errorf("no inspect after remove to verify the container is gone: %v", after)
	}
	if st := sb.Stats(); st.Running || st.KilledBy != sandbox.KilledBySignal {
		t.Errorf("stats after Stop: %+v", st)
	}
	// Idempotent.
	if td2, err := sb.Stop(ctx); err != nil || !td2.ContainerGone || td2.ContainerID != td.ContainerID {
		t.Errorf("second Stop = %+v, %v", td2, err)
	}
}

func TestEngineThatDropsARestrictionIsRefusedBeforeStart(t *testing.T) {
	eng := newFakeEngine(t)
	eng.mutateHostConfig = func(hc map[string]any) {
		hc["ReadonlyRootfs"] = false
		hc["SecurityOpt"] = []any{"seccomp=unconfined"}
	}
	_, port := modelServer(t)
	opt := testOptions(t, eng)
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Start(context.Background(), testSpec(port))
	if err == nil {
		t.Fatal("Start succeeded with a writable root filesystem")
	}
	for _, want := range []string{"root filesystem is writable", `"seccomp=unconfined"`, "no-new-privileges is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	calls := eng.Calls()
	if len(callsMatching(calls, "POST", "/start")) != 0 {
		t.Errorf("container was started: %v", calls)
	}
	if len(callsMatching(calls, "DELETE", "")) != 1 {
		t.Errorf("refused container not removed: %v", calls)
	}
	entries, _ := os.ReadDir(opt.SocketRoot)
	if len(entries) != 0 {
		t.Errorf("socket root not cleaned: %v", entries)
	}
}

func TestWallClockKillsContainer(t *testing.T) {
	eng := newFakeEngine(t)
	_, port := modelServer(t)
	p, err := New(testOptions(t, eng))
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(port)
	spec.Limits.WallClock = 50 * time.Millisecond
	sb, err := p.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(context.Background())
	select {
	case <-sb.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("container not killed at its deadline")
	}
	st := sb.Stats()
	if st.KilledBy != sandbox.KilledByDeadline || st.ExitCode != 137 || st.Running {
		t.Errorf("stats %+v, want killed by deadline with 137", st)
	}
	kills := callsMatching(eng.Calls(), "POST", "/kill")
	if len(kills) != 1 || kills[0].Query.Get("signal") != "KILL" {
		t.Errorf("kill calls %v", kills)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	eng := newFakeEngine(t)
	good := testOptions(t, eng)
	for _, c := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no image", func(o *Options) { o.Image = "" }, "Image is empty"},
		{"no splice", func(o *Options) { o.SpliceBinary = "" }, "SpliceBinary is empty"},
		{"missing splice", func(o *Options) { o.SpliceBinary = "/nonexistent/sandgate-splice" }, "SpliceBinary"},
		{"remote engine", func(o *Options) { o.Host = "tcp://10.0.0.5:2376" }, "not a unix socket"},
		{"root user", func(o *Options) { o.User = "0:0" }, "non-root"},
		{"named user", func(o *Options) { o.User = "nobody" }, "numeric uid:gid"},
		{"long socket root", func(o *Options) { o.SocketRoot = "/" + strings.Repeat("x", 80) }, "SocketRoot"},
	} {
		opt := good
		c.mod(&opt)
		_, err := New(opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestStartRefusesBadSpec(t *testing.T) {
	eng := newFakeEngine(t)
	p, err := New(testOptions(t, eng))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec sandbox.Spec
		want string
	}{
		{sandbox.Spec{Command: []string{"m"}, Port: 0}, "Spec.Port"},
		{sandbox.Spec{Port: 8000}, "Spec.Command"},
		{sandbox.Spec{Command: []string{"m"}, NoRelay: true}, "NoRelay"},
	} {
		if _, err := p.Start(context.Background(), c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%+v) = %v, want an error naming %s", c.spec, err, c.want)
		}
	}
	if n := len(eng.Calls()); n != 0 {
		t.Errorf("bad specs reached the engine: %d calls", n)
	}
}

func TestEvidenceCheckNamesEachGap(t *testing.T) {
	pids := int64(64)
	sealed := func() *container.HostConfig {
		return &container.HostConfig{
			NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges:true"},
			Resources:   container.Resources{Memory: 1 << 28, NanoCPUs: 1e9, PidsLimit: &pids},
		}
	}
	limits := sandbox.Limits{CPUs: 1, MemoryBytes: 1 << 28, Pids: 64}
	if err := (Evidence{Applied: sealed(), User: "65534:65534"}).Check(limits); err != nil {
		t.Fatalf("sealed: %v", err)
	}
	for _, c := range []struct {
		mod  func(*container.HostConfig)
		user string
		want string
	}{
		{func(h *container.HostConfig) { h.NetworkMode = "bridge" }, "", `NetworkMode is "bridge"`},
		{func(h *container.HostConfig) { h.PublishAllPorts = true }, "", "ports are published"},
		{func(h *container.HostConfig) { h.CapDrop = []string{"NET_RAW"} }, "", "CapDrop"},
		{func(h *container.HostConfig) { h.CapAdd = []string{"SYS_ADMIN"} }, "", "CapAdd"},
		{func(h *container.HostConfig) { h.Privileged = true }, "", "privileged"},
		{func(h *container.HostConfig) { h.PidMode = "host" }, "", "PidMode is host"},
		{func(h *container.HostConfig) { h.Memory = 0 }, "", "Memory is 0"},
		{func(h *container.HostConfig) { h.NanoCPUs = 0 }, "", "NanoCpus is 0"},
		{func(h *container.HostConfig) { h.PidsLimit = nil }, "", "PidsLimit"},
		{func(h *container.HostConfig) { h.Binds = []string{"/var/run/docker.sock:/var/run/docker.sock"} }, "", "unexpected binds"},
		{func(h *container.HostConfig) {}, "0:0", "non-root"},
	} {
		h := sealed()
		c.mod(h)
		user := c.user
		if user == "" {
			user = "65534:65534"
		}
		err := (Evidence{Applied: h, User: user}).Check(limits)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check = %v, want it to say %q", err, c.want)
		}
	}
}
