// Package kube runs a model under test in its own Kubernetes namespace
// (k8s.io/client-go): a NetworkPolicy that denies all egress (and all
// ingress but the harness), a ResourceQuota and LimitRange, and one pod
// with a restricted securityContext whose activeDeadlineSeconds is the
// wall clock. The harness reaches the model through the API server's
// port-forward, behind a sandbox.Relay on host loopback; teardown deletes
// the namespace and waits until it is gone.
//
// NetworkPolicy is only as good as the cluster's CNI: the objects are
// evidence of what was asked, not proof that it is enforced. See
// docs/sandbox-providers.md for what was and was not run.
package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sandgate/sandgate/sandbox"
)

// Forwarder is an open way to one pod port.
type Forwarder interface {
	Dial(ctx context.Context) (net.Conn, error)
	Close() error
}

// PortForward opens a Forwarder to port of the pod.
type PortForward func(ctx context.Context, namespace, pod string, port int) (Forwarder, error)

// Options configure the provider.
type Options struct {
	// Image is the model server's image; Spec.Command is its argv.
	Image string
	// NamespacePrefix starts every sandbox's namespace name (default
	// "sandgate-").
	NamespacePrefix string
	// Clientset talks to the cluster. When nil, one is built from
	// RestConfig, else from Kubeconfig, else from the in-cluster config.
	Clientset kubernetes.Interface
	// RestConfig is the cluster's client config; the default PortForward
	// needs it.
	RestConfig *rest.Config
	// Kubeconfig is a kubeconfig file path, used when RestConfig is nil.
	Kubeconfig string
	// PortForward replaces the API server's port-forward (tests).
	PortForward PortForward
	// Harness, when set, allows ingress from those pods to the model's
	// port; otherwise all ingress is denied (port-forward still works).
	Harness *Harness
	// Labels are added to every object (e.g. the release ID).
	Labels map[string]string
	// RunAsUser is the model's uid and gid (default 65534).
	RunAsUser int64
	// TmpfsBytes caps the memory-backed /tmp (default 64 MiB).
	TmpfsBytes int64
	// StartTimeout bounds scheduling and image pull until the pod runs
	// (default 5m).
	StartTimeout time.Duration
	// DeleteTimeout bounds waiting for the namespace to disappear
	// (default 2m).
	DeleteTimeout time.Duration
	// StopGrace is the pod's terminationGracePeriodSeconds (default 2s).
	StopGrace time.Duration
	// PollInterval is how often pod and namespace state are read
	// (default 1s).
	PollInterval time.Duration
	// Relay sets budgets and simulated latency; Spec.Relay overrides it.
	Relay  sandbox.RelayOptions
	Logger *slog.Logger
}

// Provider starts kubernetes sandboxes. Safe for concurrent use.
type Provider struct {
	opt Options
	cs  kubernetes.Interface
}

// New checks the options and builds the client; it makes no request.
func New(opt Options) (*Provider, error) {
	if opt.Image == "" {
		return nil, errors.New("kubernetes provider: Image is empty; name the model server's image, e.g. ghcr.io/acme/model:1.4")
	}
	if opt.NamespacePrefix == "" {
		opt.NamespacePrefix = "sandgate-"
	}
	if !dnsLabelPrefix(opt.NamespacePrefix) || len(opt.NamespacePrefix) > 20 {
		return nil, fmt.Errorf("kubernetes provider: NamespacePrefix %q must be at most 20 lowercase letters, digits or '-', starting with a letter", opt.NamespacePrefix)
	}
	if opt.RunAsUser == 0 {
		opt.RunAsUser = 65534
	}
	if opt.RunAsUser < 0 {
		return nil, fmt.Errorf("kubernetes provider: RunAsUser is %d; give a non-root uid", opt.RunAsUser)
	}
	if opt.TmpfsBytes <= 0 {
		opt.TmpfsBytes = 64 << 20
	}
	if opt.StartTimeout <= 0 {
		opt.StartTimeout = 5 * time.Minute
	}
	if opt.DeleteTimeout <= 0 {
		opt.DeleteTimeout = 2 * time.Minute
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 2 * time.Second
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Clientset == nil || opt.PortForward == nil {
		if opt.RestConfig == nil {
			cfg, err := loadConfig(opt.Kubeconfig)
			if err != nil {
				return nil, err
			}
			opt.RestConfig = cfg
		}
		if opt.Clientset == nil {
			cs, err := kubernetes.NewForConfig(opt.RestConfig)
			if err != nil {
				return nil, fmt.Errorf("kubernetes provider: client: %w", err)
			}
			opt.Clientset = cs
		}
		if opt.PortForward == nil {
			opt.PortForward = APIServerPortForward(opt.RestConfig, opt.Clientset)
		}
	}
	return &Provider{opt: opt, cs: opt.Clientset}, nil
}

func loadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes provider: Kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider: no Kubeconfig given and not running in a cluster (%v); set Kubeconfig", err)
	}
	return cfg, nil
}

func dnsLabelPrefix(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (p *Provider) newID(name string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sandbox id: %w", err)
	}
	clean := strings.Trim(strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		}
		return '-'
	}, name), "-")
	// A namespace name is a DNS label: 63 bytes at most.
	if room := 63 - len(p.opt.NamespacePrefix) - 9; len(clean) > room {
		clean = strings.TrimRight(clean[:room], "-")
	}
	if clean == "" {
		clean = "model"
	}
	return p.opt.NamespacePrefix + clean + "-" + hex.EncodeToString(b[:]), nil
}

// Start creates the namespace and its objects (policy, quota and limits
// before the pod, so the pod never runs without them), waits for the pod
// to run, opens the port-forward and puts a relay in front. On any failure
// it deletes the namespace.
func (p *Provider) Start(ctx context.Context, spec sandbox.Spec) (*Sandbox, error) {
	switch {
	case spec.NoRelay:
		return nil, errors.New("kubernetes provider: Spec.NoRelay is not supported; one-shot commands use the process provider")
	case len(spec.Egress) > 0:
		return nil, errors.New("kubernetes provider: Spec.Egress is not supported (the pod's deny-all policy stays); an egress allowlist needs the process provider's egress relay")
	case len(spec.Command) == 0 || spec.Command[0] == "":
		return nil, errors.New("kubernetes provider: Spec.Command is empty; give the model server's argv inside the image")
	case spec.Port < 1 || spec.Port > 65535:
		return nil, fmt.Errorf("kubernetes provider: Spec.Port is %d; give the TCP port the model listens on (1-65535)", spec.Port)
	case spec.WorkDir != "" || len(spec.ReadOnlyPaths) > 0:
		return nil, errors.New("kubernetes provider: Spec.WorkDir and Spec.ReadOnlyPaths are host paths, which a pod must not mount; put the model's files in the image")
	}
	id, err := p.newID(spec.Name)
	if err != nil {
		return nil, err
	}
	log := p.opt.Logger.With("sandbox", id, "provider", "kubernetes")
	want := p.buildObjects(id, spec)
	s := &Sandbox{
		id: id, spec: spec, cs: p.cs, log: log, poll: p.opt.PollInterval,
		deleteTimeout: p.opt.DeleteTimeout, done: make(chan struct{}),
	}
	s.requested = want
	fail := func(err error) (*Sandbox, error) {
		if _, terr := s.Stop(context.WithoutCancel(ctx)); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, err
	}
	create := metav1.CreateOptions{FieldManager: "sandgate"}
	if s.applied.Namespace, err = p.cs.CoreV1().Namespaces().Create(ctx, want.Namespace.DeepCopy(), create); err != nil {
		return nil, fmt.Errorf("kubernetes sandbox %s: create namespace: %w", id, err)
	}
	s.nsCreated = true
	if s.applied.NetworkPolicy, err = p.cs.NetworkingV1().NetworkPolicies(id).Create(ctx, want.NetworkPolicy.DeepCopy(), create); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: create network policy: %w", id, err))
	}
	if s.applied.ResourceQuota, err = p.cs.CoreV1().ResourceQuotas(id).Create(ctx, want.ResourceQuota.DeepCopy(), create); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: create resource quota: %w", id, err))
	}
	if s.applied.LimitRange, err = p.cs.CoreV1().LimitRanges(id).Create(ctx, want.LimitRange.DeepCopy(), create); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: create limit range: %w", id, err))
	}
	if s.applied.Pod, err = p.cs.CoreV1().Pods(id).Create(ctx, want.Pod.DeepCopy(), create); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: create pod: %w", id, err))
	}
	// An admission webhook may have rewritten the pod: check what the API
	// server stored, not what was sent.
	if err := s.applied.Check(spec.Limits); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: %w", id, err))
	}
	runCtx, cancel := context.WithTimeout(ctx, p.opt.StartTimeout)
	defer cancel()
	if err := s.waitRunning(runCtx); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	fwd, err := p.opt.PortForward(ctx, id, PodName, spec.Port)
	if err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: port-forward: %w", id, err))
	}
	s.fwd = fwd
	s.up = sandbox.Upstream{Host: "sandbox", Dial: fwd.Dial}
	relayOpt := p.opt.Relay
	if spec.Relay != nil {
		relayOpt = *spec.Relay
	}
	if s.relay, err = sandbox.NewRelay(relayOpt, s.up, log); err != nil {
		return fail(fmt.Errorf("kubernetes sandbox %s: %w", id, err))
	}
	watchCtx, cancelWatch := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelWatch = cancelWatch
	go s.watch(watchCtx)
	log.Info("kubernetes sandbox started", "namespace", id, "image", p.opt.Image, "relay", s.relay.URL())
	return s, nil
}

// waitRunning polls the pod until it runs, fails, or ctx ends; image pull
// errors end the wait early with the kubelet's reason.
func (s *Sandbox) waitRunning(ctx context.Context) error {
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		pod, err := s.cs.CoreV1().Pods(s.id).Get(ctx, PodName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("kubernetes sandbox %s: read pod: %w", s.id, err)
		}
		if pod != nil {
			switch pod.Status.Phase {
			case corev1.PodRunning:
				return nil
			case corev1.PodFailed, corev1.PodSucceeded:
				return fmt.Errorf("kubernetes sandbox %s: pod ended before it ran (%s: %s %s)", s.id, pod.Status.Phase, pod.Status.Reason, pod.Status.Message)
			}
			for _, cs := range pod.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil {
					switch w.Reason {
					case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
						return fmt.Errorf("kubernetes sandbox %s: container cannot start: %s: %s", s.id, w.Reason, w.Message)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes sandbox %s: pod not running: %w", s.id, ctx.Err())
		case <-tick.C:
		}
	}
}

// Sandbox is one model in one namespace. Methods are safe for concurrent
// use.
type Sandbox struct {
	id            string
	spec          sandbox.Spec
	cs            kubernetes.Interface
	log           *slog.Logger
	poll          time.Duration
	deleteTimeout time.Duration
	requested     Objects
	applied       Objects
	nsCreated     bool
	fwd           Forwarder
	up            sandbox.Upstream
	relay         *sandbox.Relay
	cancelWatch   context.CancelFunc
	done          chan struct{}

	mu         sync.Mutex
	started    time.Time
	exited     time.Time
	exitCode   int
	killReason sandbox.KillReason

	stopOnce sync.Once
	teardown Teardown
	stopErr  error
}

// ID is the sandbox's namespace name.
func (s *Sandbox) ID() string { return s.id }

// Endpoint is the relay's base URL on host loopback: the only way in.
func (s *Sandbox) Endpoint() string {
	if s.relay == nil {
		return ""
	}
	return s.relay.URL()
}

// Relay gives access to budgets, counters and the transcript.
func (s *Sandbox) Relay() *sandbox.Relay { return s.relay }

// Evidence is the restrictions as sent and as the API server stored them.
type Evidence struct {
	Provider  string  `json:"provider"`
	Namespace string  `json:"namespace"`
	Requested Objects `json:"requested"`
	Applied   Objects `json:"applied"`
	Reach     string  `json:"reach"`
	// Notes say what the objects cannot show.
	Notes []string `json:"notes"`
}

// Evidence returns the record for the audit trail.
func (s *Sandbox) Evidence() Evidence {
	return Evidence{
		Provider: "kubernetes", Namespace: s.id, Requested: s.requested, Applied: s.applied,
		Reach: fmt.Sprintf("API server port-forward to pod %s/%s port %d", s.id, PodName, s.spec.Port),
		Notes: []string{
			"NetworkPolicy is enforced only by a CNI that implements it; the API accepts it either way",
			"pids are limited by the kubelet's podPidsLimit, which a pod spec cannot set",
		},
	}
}

// Done is closed when the pod has ended or is gone.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// WaitReady polls the model through the port-forward (no relay budget
// spent) until it answers HTTP.
func (s *Sandbox) WaitReady(ctx context.Context) error {
	if err := sandbox.WaitUpstream(ctx, s.up, s.done); err != nil {
		return fmt.Errorf("kubernetes sandbox %s: %w", s.id, err)
	}
	return nil
}

// Stats is a point-in-time summary; resource counters are not read.
func (s *Sandbox) Stats() sandbox.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sandbox.Stats{Started: s.started, Exited: s.exited, KilledBy: s.killReason, ExitCode: s.exitCode, ExitStatus: s.exitCode}
	select {
	case <-s.done:
	default:
		st.Running = !s.started.IsZero()
	}
	if s.killReason == sandbox.KilledByOOM {
		st.OOMKills = 1
	}
	if s.relay != nil {
		st.Relay = s.relay.Stats()
	}
	return st
}

// Freeze is not offered: Kubernetes has no pause for a pod.
func (s *Sandbox) Freeze(context.Context) error {
	return fmt.Errorf("kubernetes sandbox %s: freeze: %w (Kubernetes cannot pause a pod; snapshot the transcript and delete the namespace)", s.id, sandbox.ErrUnsupported)
}

func (s *Sandbox) watch(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		pod, err := s.cs.CoreV1().Pods(s.id).Get(ctx, PodName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			s.record(nil)
			return
		case err == nil && (pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded):
			s.record(pod)
			return
		}
		select {
		case <-ctx.Done():
			// Stop cancels once the namespace is gone.
			s.record(nil)
			return
		case <-tick.C:
		}
	}
}

func (s *Sandbox) record(pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exited = time.Now()
	if pod == nil {
		if s.killReason == sandbox.KilledByNone {
			s.killReason = sandbox.KilledBySignal
		}
		return
	}
	if pod.Status.Reason == "DeadlineExceeded" {
		s.killReason = sandbox.KilledByDeadline
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			s.exitCode = int(t.ExitCode)
			if t.Reason == "OOMKilled" {
				s.killReason = sandbox.KilledByOOM
			}
		}
	}
}

// Teardown is the record that nothing of the sandbox is left.
type Teardown struct {
	Namespace string `json:"namespace"`
	// NamespaceGone is true when reading the namespace after the delete
	// answered NotFound.
	NamespaceGone bool     `json:"namespace_gone"`
	Errors        []string `json:"errors,omitempty"`
}

// Stop closes the relay and the port-forward, deletes the namespace (and
// with it every object in it) and waits until the API server no longer
// has it. It is idempotent.
func (s *Sandbox) Stop(ctx context.Context) (Teardown, error) {
	s.stopOnce.Do(func() { s.teardown, s.stopErr = s.stop(ctx) })
	return s.teardown, s.stopErr
}

func (s *Sandbox) stop(ctx context.Context) (Teardown, error) {
	t := Teardown{Namespace: s.id}
	var errs []error
	if s.relay != nil {
		if err := s.relay.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.fwd != nil {
		if err := s.fwd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close port-forward: %w", err))
		}
	}
	if s.nsCreated {
		ctx, cancel := context.WithTimeout(ctx, s.deleteTimeout)
		defer cancel()
		fg := metav1.DeletePropagationForeground
		err := s.cs.CoreV1().Namespaces().Delete(ctx, s.id, metav1.DeleteOptions{PropagationPolicy: &fg})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace: %w", err))
		} else if err := s.waitNamespaceGone(ctx); err != nil {
			errs = append(errs, err)
		} else {
			t.NamespaceGone = true
		}
	} else {
		t.NamespaceGone = true
	}
	if s.cancelWatch != nil {
		s.cancelWatch()
		<-s.done
	}
	for _, e := range errs {
		t.Errors = append(t.Errors, e.Error())
	}
	if err := errors.Join(errs...); err != nil {
		return t, fmt.Errorf("kubernetes sandbox %s teardown: %w", s.id, err)
	}
	s.log.Info("kubernetes sandbox deleted", "namespace", s.id)
	return t, nil
}

func (s *Sandbox) waitNamespaceGone(ctx context.Context) error {
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		ns, err := s.cs.CoreV1().Namespaces().Get(ctx, s.id, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		phase := ""
		if ns != nil {
			phase = string(ns.Status.Phase)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still present (phase %q, last error %v): %w", s.id, phase, err, ctx.Err())
		case <-tick.C:
		}
	}
}
