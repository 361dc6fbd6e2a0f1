// Package docker runs a model under test in a Docker container that has no
// network, through the Docker Engine API (github.com/moby/moby/client).
//
// The container gets NetworkMode "none" (a network namespace holding only
// lo), a read-only root filesystem, every capability dropped,
// no-new-privileges, the engine's default seccomp profile, CPU, memory and
// pids limits and size-capped tmpfs scratch areas. The harness reaches the
// model without giving it egress: the provider bind-mounts a fresh host
// directory into the container and runs the static sandgate-splice helper
// (cmd/sandgate-splice) as the entrypoint; the helper starts the model and
// joins every connection on a unix socket in that directory to the model's
// TCP port on the container's own loopback. A sandbox.Relay on host loopback
// dials that socket, so budgets, latency and the transcript work exactly as
// for the process provider.
//
// The engine must run on the same host as the harness (a unix socket
// DOCKER_HOST), since the way in is a bind mount. See
// docs/sandbox-providers.md for what was and was not run.
package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sandgate/sandgate/sandbox"
)

// Paths inside the container.
const (
	// RunDir is where the host's per-sandbox directory is bound; the splice
	// helper's socket lives in it.
	RunDir = "/.sandgate/run"
	// SpliceBin is where the splice helper binary is bound, read-only.
	SpliceBin = "/.sandgate/splice"
	// LabelSandbox carries the sandbox ID on the container, so a crashed
	// worker's leftovers can be found and removed by label.
	LabelSandbox = "io.sandgate.sandbox"

	socketName = "model.sock"
)

// API is the part of the Docker Engine client the provider uses;
// *client.Client implements it.
type API interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, containerID string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerWait(ctx context.Context, containerID string, options client.ContainerWaitOptions) client.ContainerWaitResult
	ContainerKill(ctx context.Context, containerID string, options client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerStop(ctx context.Context, containerID string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRemove(ctx context.Context, containerID string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerPause(ctx context.Context, containerID string, options client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, containerID string, options client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
}

// Options configure the provider.
type Options struct {
	// Image is the model server's image; Spec.Command is run in it as the
	// whole argv (the image's ENTRYPOINT is replaced by the splice helper).
	Image string
	// SpliceBinary is the host path of a static sandgate-splice build
	// (CGO_ENABLED=0 go build ./cmd/sandgate-splice).
	SpliceBinary string
	// Host is the engine's address (default: DOCKER_HOST, else
	// unix:///var/run/docker.sock). It must be a unix socket: the way in
	// is a bind mount, so the engine must share this host's filesystem.
	Host string
	// Client replaces the client built from Host (tests, or a caller that
	// already has one).
	Client API
	// SocketRoot holds one directory per sandbox, bound into its container
	// (default /run/sandgate/docker). Keep it short: socket paths are
	// limited to 107 bytes.
	SocketRoot string
	// User is "uid:gid" the model runs as (default "65534:65534", nobody).
	// Numeric, so the provider can hand the socket directory to it.
	User string
	// TmpfsBytes caps each writable tmpfs (/tmp) (default 64 MiB).
	TmpfsBytes int64
	// StopGrace is how long Stop lets the model exit after SIGTERM
	// (default 2s).
	StopGrace time.Duration
	// Relay sets budgets and simulated latency; Spec.Relay overrides it.
	Relay  sandbox.RelayOptions
	Logger *slog.Logger
}

// Provider starts docker sandboxes. Safe for concurrent use.
type Provider struct {
	opt      Options
	api      API
	uid, gid int
}

// New checks the options and connects a client (no request is made until
// Start).
func New(opt Options) (*Provider, error) {
	if opt.Image == "" {
		return nil, errors.New("docker provider: Image is empty; name the model server's image, e.g. ghcr.io/acme/model:1.4")
	}
	if opt.SpliceBinary == "" {
		return nil, errors.New("docker provider: SpliceBinary is empty; build one with CGO_ENABLED=0 go build -o sandgate-splice ./cmd/sandgate-splice and give its path")
	}
	st, err := os.Stat(opt.SpliceBinary)
	if err != nil {
		return nil, fmt.Errorf("docker provider: SpliceBinary: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("docker provider: SpliceBinary %s is not an executable file", opt.SpliceBinary)
	}
	if !filepath.IsAbs(opt.SpliceBinary) {
		return nil, fmt.Errorf("docker provider: SpliceBinary %q must be an absolute path (it is bind-mounted)", opt.SpliceBinary)
	}
	if opt.SocketRoot == "" {
		opt.SocketRoot = "/run/sandgate/docker"
	}
	if max := 107 - 1 - maxIDLen - 1 - len(socketName); len(opt.SocketRoot) > max {
		return nil, fmt.Errorf("docker provider: SocketRoot %q is longer than %d bytes; the socket path would not fit a unix socket address", opt.SocketRoot, max)
	}
	if opt.User == "" {
		opt.User = "65534:65534"
	}
	uid, gid, err := parseUser(opt.User)
	if err != nil {
		return nil, fmt.Errorf("docker provider: User: %w", err)
	}
	if opt.TmpfsBytes <= 0 {
		opt.TmpfsBytes = 64 << 20
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 2 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	api := opt.Client
	if api == nil {
		host := opt.Host
		if host == "" {
			host = os.Getenv("DOCKER_HOST")
		}
		if host == "" {
			host = "unix:///var/run/docker.sock"
		}
		if !strings.HasPrefix(host, "unix://") {
			return nil, fmt.Errorf("docker provider: Host %q is not a unix socket; the model is reached through a bind-mounted socket, so the engine must run on this host", host)
		}
		c, err := client.New(client.WithHost(host))
		if err != nil {
			return nil, fmt.Errorf("docker provider: client for %s: %w", host, err)
		}
		api = c
	}
	return &Provider{opt: opt, api: api, uid: uid, gid: gid}, nil
}

func parseUser(u string) (uid, gid int, err error) {
	us, gs, ok := strings.Cut(u, ":")
	if ok {
		uid, err = strconv.Atoi(us)
		if err == nil {
			gid, err = strconv.Atoi(gs)
		}
	}
	if !ok || err != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("%q is not numeric uid:gid; use e.g. \"65534:65534\"", u)
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("%q runs the model as root; use a non-root uid", u)
	}
	return uid, gid, nil
}

// maxIDLen bounds a sandbox ID: "sg-", 24 name bytes, '-', 8 hex digits.
const maxIDLen = 3 + 24 + 1 + 8

func newID(name string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sandbox id: %w", err)
	}
	clean := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		}
		return '-'
	}, name)
	if len(clean) > 24 {
		clean = clean[:24]
	}
	clean = strings.Trim(clean, "-")
	if clean == "" {
		clean = "model"
	}
	return "sg-" + clean + "-" + hex.EncodeToString(b[:]), nil
}

// CreateRequest is what the provider asks the engine for, kept as
// evidence next to what the engine reports it applied.
type CreateRequest struct {
	Name       string                `json:"name"`
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"host_config"`
}

// createRequest builds the container: the one place the restrictions are
// decided.
func (p *Provider) createRequest(id, hostDir string, spec sandbox.Spec) CreateRequest {
	env := append([]string(nil), spec.Env...)
	for _, kv := range []string{"HOME=/tmp", "TMPDIR=/tmp"} {
		k, _, _ := strings.Cut(kv, "=")
		if !hasKey(env, k) {
			env = append(env, kv)
		}
	}
	workDir := "/tmp"
	mounts := []mount.Mount{
		{Type: mount.TypeBind, Source: hostDir, Target: RunDir},
		{Type: mount.TypeBind, Source: p.opt.SpliceBinary, Target: SpliceBin, ReadOnly: true},
	}
	if spec.WorkDir != "" {
		workDir = spec.WorkDir
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: spec.WorkDir, Target: spec.WorkDir, ReadOnly: true})
	}
	for _, ro := range spec.ReadOnlyPaths {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: ro, Target: ro, ReadOnly: true})
	}
	stopTimeout := int(p.opt.StopGrace.Round(time.Second) / time.Second)
	init := true
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		// The default seccomp profile applies because no seccomp= option
		// is given; Evidence.Check refuses "unconfined".
		SecurityOpt:   []string{"no-new-privileges:true"},
		Privileged:    false,
		IpcMode:       "private",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Tmpfs: map[string]string{
			"/tmp": fmt.Sprintf("rw,noexec,nosuid,nodev,size=%d", p.opt.TmpfsBytes),
		},
		Mounts: mounts,
		Init:   &init,
	}
	if l := spec.Limits; l.MemoryBytes > 0 {
		hc.Memory = l.MemoryBytes
		hc.MemorySwap = l.MemoryBytes // no swap on top of the limit
	}
	if c := spec.Limits.CPUs; c > 0 {
		hc.NanoCPUs = int64(c * 1e9)
	}
	if n := spec.Limits.Pids; n > 0 {
		hc.PidsLimit = &n
	}
	cfg := &container.Config{
		Image:      p.opt.Image,
		User:       p.opt.User,
		Env:        env,
		WorkingDir: workDir,
		Entrypoint: []string{SpliceBin, "-socket", RunDir + "/" + socketName, "-port", strconv.Itoa(spec.Port), "--"},
		Cmd:        append([]string(nil), spec.Command...),
		Labels:     map[string]string{LabelSandbox: id},
		// Not NetworkDisabled: NetworkMode none keeps lo up, which the
		// model and the splice helper need.
		StopTimeout: &stopTimeout,
	}
	return CreateRequest{Name: id, Config: cfg, HostConfig: hc}
}

func hasKey(env []string, k string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return true
		}
	}
	return false
}

// Start creates and starts the container, checks what the engine applied,
// and puts a relay in front. On any failure it removes what it created.
func (p *Provider) Start(ctx context.Context, spec sandbox.Spec) (*Sandbox, error) {
	if len(spec.Egress) > 0 {
		return nil, errors.New("docker provider: Spec.Egress is not supported (the container has no network); an egress allowlist needs the process provider's egress relay")
	}
	if spec.NoRelay {
		return nil, errors.New("docker provider: Spec.NoRelay is not supported; one-shot commands use the process provider")
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("docker provider: Spec.Command is empty; give the model server's argv inside the image")
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return nil, fmt.Errorf("docker provider: Spec.Port is %d; give the TCP port the model listens on (1-65535)", spec.Port)
	}
	id, err := newID(spec.Name)
	if err != nil {
		return nil, err
	}
	log := p.opt.Logger.With("sandbox", id, "provider", "docker")
	hostDir := filepath.Join(p.opt.SocketRoot, id)
	if err := os.MkdirAll(p.opt.SocketRoot, 0o711); err != nil {
		return nil, fmt.Errorf("docker sandbox %s: socket root: %w", id, err)
	}
	if err := os.Mkdir(hostDir, 0o700); err != nil {
		return nil, fmt.Errorf("docker sandbox %s: socket dir: %w", id, err)
	}
	// The helper runs as User and must create its socket here.
	if err := os.Chown(hostDir, p.uid, p.gid); err != nil {
		os.RemoveAll(hostDir)
		return nil, fmt.Errorf("docker sandbox %s: hand socket dir to %s (the worker must run as root or as that user): %w", id, p.opt.User, err)
	}
	relayOpt := p.opt.Relay
	if spec.Relay != nil {
		relayOpt = *spec.Relay
	}
	s := &Sandbox{
		id: id, spec: spec, api: p.api, log: log, hostDir: hostDir,
		socket: filepath.Join(hostDir, socketName), stopGrace: p.opt.StopGrace,
		done: make(chan struct{}),
	}
	req := p.createRequest(id, hostDir, spec)
	s.evidence.Requested = req
	created, err := p.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: req.Name, Config: req.Config, HostConfig: req.HostConfig,
	})
	if err != nil {
		os.RemoveAll(hostDir)
		return nil, fmt.Errorf("docker sandbox %s: create container: %w", id, err)
	}
	s.containerID = created.ID
	s.evidence.ContainerID = created.ID
	s.evidence.Warnings = created.Warnings
	fail := func(err error) (*Sandbox, error) {
		if _, terr := s.Stop(context.WithoutCancel(ctx)); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, err
	}
	// Check before starting: the model never runs in a container the
	// engine did not restrict as asked.
	applied, err := p.api.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fail(fmt.Errorf("docker sandbox %s: inspect created container: %w", id, err))
	}
	s.evidence.Applied = applied.Container.HostConfig
	if applied.Container.Config != nil {
		s.evidence.User = applied.Container.Config.User
	}
	if err := s.evidence.Check(spec.Limits); err != nil {
		return fail(fmt.Errorf("docker sandbox %s: %w", id, err))
	}
	s.up = sandbox.Upstream{Host: "sandbox", Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.socket)
	}}
	s.relay, err = sandbox.NewRelay(relayOpt, s.up, log)
	if err != nil {
		return fail(fmt.Errorf("docker sandbox %s: %w", id, err))
	}
	if _, err := p.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("docker sandbox %s: start container: %w", id, err))
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	// The wait request outlives Start: it ends when the container stops.
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelWait = cancelWait
	wait := p.api.ContainerWait(waitCtx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	go s.watch(waitCtx, wait)
	if d := spec.Limits.WallClock; d > 0 {
		s.deadline = time.AfterFunc(d, func() { s.kill(sandbox.KilledByDeadline) })
	}
	log.Info("docker sandbox started", "container", created.ID, "image", p.opt.Image, "relay", s.relay.URL())
	return s, nil
}
