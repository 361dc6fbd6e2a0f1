package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	uiserver "github.com/temporalio/ui-server/v2/server"
	"go.temporal.io/server/temporal"
)

// Options configures a Stack. Empty strings and a nil Logger mean the
// defaults; a zero port means a free port chosen at start (tests), so start
// from DefaultOptions for the well-known ports. UIPort -1 disables the UI.
type Options struct {
	DataDir      string // default ".sandgate"
	Host         string // IP to bind and advertise; default "127.0.0.1"
	FrontendPort int    // default 7233; 0 = pick a free port
	UIPort       int    // default 8233; 0 = pick a free port; -1 = no UI
	S3Port       int    // default 9000; 0 = pick a free port
	Namespace    string // default "default"
	Bucket       string // default "sandgate"
	// CodecEndpoint is the codec server URL the Web UI calls (from the
	// browser) to show encrypted payloads; empty: payloads shown as stored.
	CodecEndpoint string
	Logger        *slog.Logger
}

// Defaults, matching the temporal CLI's dev server and MinIO, so existing
// tools and habits (localhost:7233, :8233, :9000) work unchanged.
const (
	DefaultDataDir      = ".sandgate"
	DefaultHost         = "127.0.0.1"
	DefaultFrontendPort = 7233
	DefaultUIPort       = 8233
	DefaultS3Port       = 9000
	DefaultNamespace    = "default"
	DefaultBucket       = "sandgate"
)

// NoUI as Options.UIPort runs the stack without the Web UI.
const NoUI = -1

// startupTimeout bounds Start when ctx has no deadline: a stack that is not
// ready by then is stuck, and hanging a CLI forever helps nobody.
const startupTimeout = 2 * time.Minute

// DefaultOptions returns the options `sandgate dev` uses.
func DefaultOptions() Options {
	return Options{
		DataDir:      DefaultDataDir,
		Host:         DefaultHost,
		FrontendPort: DefaultFrontendPort,
		UIPort:       DefaultUIPort,
		S3Port:       DefaultS3Port,
		Namespace:    DefaultNamespace,
		Bucket:       DefaultBucket,
	}
}

// withDefaults fills unset strings and the logger. Ports are left alone:
// 0 means "pick a free port", so callers wanting the well-known ports start
// from DefaultOptions.
func (o Options) withDefaults() Options {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	return o
}

func (o Options) validate() error {
	if net.ParseIP(o.Host) == nil {
		return fmt.Errorf("devstack: Host %q must be an IP address such as 127.0.0.1 (the Temporal server binds to it literally)", o.Host)
	}
	checkPort := func(name, flag string, p int, allowNoUI bool) error {
		if p == NoUI && allowNoUI {
			return nil
		}
		if p < 0 || p > 65535 {
			return fmt.Errorf("devstack: Options.%s (%s) = %d is not a valid port: use 1-65535, or 0 for a free port", name, flag, p)
		}
		return nil
	}
	if err := checkPort("FrontendPort", FlagFrontendPort, o.FrontendPort, false); err != nil {
		return err
	}
	if err := checkPort("UIPort", FlagUIPort, o.UIPort, true); err != nil {
		return err
	}
	if err := checkPort("S3Port", FlagS3Port, o.S3Port, false); err != nil {
		return err
	}
	if err := gofakes3.ValidateBucketName(o.Bucket); err != nil {
		return fmt.Errorf("devstack: Options.Bucket %q is not a valid S3 bucket name: %w", o.Bucket, err)
	}
	// The SQLite plugin puts the path into a file: URI without escaping.
	if strings.ContainsAny(o.DataDir, "?#%") {
		return fmt.Errorf("devstack: Options.DataDir (%s) %q must not contain '?', '#' or '%%'", FlagDataDir, o.DataDir)
	}
	return nil
}

// Stack is a running dev stack. Stop it when done; it holds a lock on
// DataDir so a second stack on the same directory fails fast instead of
// corrupting shared state.
type Stack struct {
	opt          Options
	frontendAddr string
	uiURL        string
	s3Endpoint   string

	temporal temporal.Server
	ui       *uiserver.Server
	s3       *http.Server
	lock     *os.File
	phase    atomic.Int32 // drives log filtering, see temporalLogger

	stopOnce sync.Once
	stopErr  error
}

// pickTemporalPorts chooses the frontend port (as asked, or free when 0) and
// free ports for the internal services.
func pickTemporalPorts(host string, frontend int) (temporalPorts, error) {
	var ports temporalPorts
	internal := portSpec{"Temporal internal service", FlagFrontendPort, "FrontendPort"}
	for _, p := range []struct {
		dst  *int
		want int
		spec portSpec
	}{
		{&ports.frontend, frontend, frontendPortSpec},
		{&ports.frontendHTTP, 0, internal},
		{&ports.history, 0, internal},
		{&ports.matching, 0, internal},
		{&ports.worker, 0, internal},
	} {
		var err error
		if *p.dst, err = pickPort(host, p.want, p.spec); err != nil {
			return ports, err
		}
	}
	return ports, nil
}

// Start starts Temporal, the S3 server and the Web UI and returns once all
// serve requests and the namespace with its search attributes is ready.
// ctx bounds startup only; the stack runs until Stop.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startupTimeout)
		defer cancel()
	}
	log := opt.Logger

	dataDir, err := filepath.Abs(opt.DataDir)
	if err != nil {
		return nil, fmt.Errorf("devstack: data dir %q: %w", opt.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: create data dir (%s) %s: %w", FlagDataDir, dataDir, err)
	}

	s := &Stack{opt: opt}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if s.lock, err = lockDir(dataDir); err != nil {
		return nil, err
	}

	// Check the user-facing ports before any slow work, so a busy port is
	// reported in milliseconds rather than after the Temporal server boots.
	host := opt.Host
	if opt.FrontendPort != 0 {
		if err := checkFree(host, opt.FrontendPort, frontendPortSpec); err != nil {
			return nil, err
		}
	}
	if opt.UIPort > 0 {
		if err := checkFree(host, opt.UIPort, uiPortSpec); err != nil {
			return nil, err
		}
	}
	// S3 keeps its listener, so its port is never raced.
	s3ln, err := listen(host, opt.S3Port, s3PortSpec)
	if err != nil {
		return nil, err
	}

	s.s3, err = startS3(s3ln, filepath.Join(dataDir, "s3"), opt.Bucket, log)
	if err != nil {
		_ = s3ln.Close()
		return nil, err
	}
	s.s3Endpoint = "http://" + s3ln.Addr().String()

	dbPath := filepath.Join(dataDir, "temporal.db")
	if err := prepareDB(dbPath, opt.Namespace); err != nil {
		return nil, err
	}
	// Ports picked as free can be taken by another process before the
	// server binds them (parallel test binaries do this); pick again then.
	for attempt := 1; ; attempt++ {
		var ports temporalPorts
		if ports, err = pickTemporalPorts(host, opt.FrontendPort); err != nil {
			return nil, err
		}
		s.frontendAddr = joinHostPort(host, ports.frontend)
		s.temporal, err = startTemporal(host, dbPath, ports, log, &s.phase)
		if err == nil {
			break
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		log.Warn("devstack: a port was taken between picking and binding it; picking again", "err", err)
	}
	if err := waitTemporalReady(ctx, s.frontendAddr, opt.Namespace, log); err != nil {
		return nil, err
	}

	if opt.UIPort != NoUI {
		uiPort, err := pickPort(host, opt.UIPort, uiPortSpec)
		if err != nil {
			return nil, err
		}
		if s.ui, err = startUI(ctx, host, uiPort, s.frontendAddr, opt.Namespace, opt.CodecEndpoint, log); err != nil {
			return nil, err
		}
		s.uiURL = uiURL(host, uiPort)
	}

	s.phase.Store(phaseRunning)
	log.Info("dev stack ready",
		"temporal", s.frontendAddr, "ui", s.uiURL, "s3", s.s3Endpoint,
		"namespace", opt.Namespace, "bucket", opt.Bucket, "data_dir", dataDir)
	return s, nil
}

// FrontendAddress is the Temporal gRPC address (host:port) for SDK clients.
func (s *Stack) FrontendAddress() string { return s.frontendAddr }

// UIURL is the Web UI base URL, or "" when the UI is disabled.
func (s *Stack) UIURL() string { return s.uiURL }

// S3Endpoint is the S3 base URL; clients must use path-style addressing.
func (s *Stack) S3Endpoint() string { return s.s3Endpoint }

// Namespace is the Temporal namespace prepared for sandgate.
func (s *Stack) Namespace() string { return s.opt.Namespace }

// Bucket is the S3 bucket created for sandgate.
func (s *Stack) Bucket() string { return s.opt.Bucket }

// Stop shuts everything down, the UI first (it depends on the frontend) and
// S3 last (in-flight uploads may belong to activities still draining). Safe
// to call more than once; later calls return the first result.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		s.phase.Store(phaseStopping)
		var errs []error
		if s.ui != nil {
			s.ui.Stop()
		}
		if s.temporal != nil {
			if err := s.temporal.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("devstack: stop Temporal server: %w", err))
			}
		}
		if s.s3 != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.s3.Shutdown(ctx); err != nil {
				_ = s.s3.Close()
				errs = append(errs, fmt.Errorf("devstack: stop S3 server: %w", err))
			}
			cancel()
		}
		if s.lock != nil {
			if err := s.lock.Close(); err != nil {
				errs = append(errs, fmt.Errorf("devstack: release data dir lock: %w", err))
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// poll retries f until it succeeds or ctx ends, backing off from 20ms to
// 500ms so fast starts are noticed quickly without spinning on slow ones.
func poll(ctx context.Context, f func() error) error {
	delay := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}
