package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sandgate/sandgate/sandbox"
)

// tcpForwarder stands in for the API server's port-forward: it dials the
// test's model on host loopback and records what it was asked for.
type tcpForwarder struct {
	addr string

	mu     sync.Mutex
	asked  []string
	closed bool
}

func (f *tcpForwarder) portForward(_ context.Context, ns, pod string, port int) (Forwarder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("%s/%s:%d", ns, pod, port))
	return f, nil
}

func (f *tcpForwarder) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.addr)
}

func (f *tcpForwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// newFakeCluster is a fake clientset where the kubelet starts every pod at
// once (phase Running), unless podStatus says otherwise.
func newFakeCluster(podStatus func(*corev1.Pod)) *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		pod.Status.Phase = corev1.PodRunning
		if podStatus != nil {
			podStatus(pod)
		}
		return false, nil, nil
	})
	return cs
}

func testProvider(t *testing.T, cs *fake.Clientset, mod func(*Options)) (*Provider, *tcpForwarder, int) {
	t.Helper()
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(model.Close)
	fwd := &tcpForwarder{addr: model.Listener.Addr().String()}
	opt := Options{
		Image: "ghcr.io/acme/model:1.4", Clientset: cs, PortForward: fwd.portForward,
		Labels:       map[string]string{"sandgate.io/release": "release-harbor-1-4-0"},
		PollInterval: 5 * time.Millisecond, StartTimeout: 10 * time.Second, DeleteTimeout: 10 * time.Second,
		TmpfsBytes: 32 << 20,
	}
	if mod != nil {
		mod(&opt)
	}
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return p, fwd, model.Listener.Addr().(*net.TCPAddr).Port
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

func qty(s string) resource.Quantity { return resource.MustParse(s) }

func TestStartCreatesIsolatedNamespaceAndTeardownDeletesIt(t *testing.T) {
	cs := newFakeCluster(nil)
	p, fwd, port := testProvider(t, cs, nil)
	ctx := context.Background()
	sb, err := p.Start(ctx, testSpec(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(context.Background()) })
	ns := sb.ID()
	if !strings.HasPrefix(ns, "sandgate-candidate-harbor-") || len(ns) > 63 {
		t.Errorf("namespace %q", ns)
	}

	// Creation order: the pod comes last, after everything that confines it.
	var created []string
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" {
			created = append(created, a.GetResource().Resource)
		}
	}
	if got := strings.Join(created, ","); got != "namespaces,networkpolicies,resourcequotas,limitranges,pods" {
		t.Errorf("create order %s", got)
	}

	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" || nsObj.Labels["sandgate.io/release"] != "release-harbor-1-4-0" {
		t.Errorf("namespace labels %v", nsObj.Labels)
	}

	np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, PolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) != 0 {
		t.Errorf("policy selects %v, want every pod", np.Spec.PodSelector)
	}
	if fmt.Sprint(np.Spec.PolicyTypes) != "[Ingress Egress]" || len(np.Spec.Egress) != 0 || len(np.Spec.Ingress) != 0 {
		t.Errorf("policy %+v, want deny all ingress and egress", np.Spec)
	}

	q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, QuotaName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[corev1.ResourceName]string{
		corev1.ResourcePods: "1", corev1.ResourceLimitsCPU: "1500m", corev1.ResourceRequestsCPU: "1500m",
		corev1.ResourceLimitsMemory: "256Mi", corev1.ResourceRequestsMemory: "256Mi",
		corev1.ResourceServices: "0", corev1.ResourcePersistentVolumeClaims: "0",
	} {
		got, ok := q.Spec.Hard[name]
		if w := qty(want); !ok || got.Cmp(w) != 0 {
			t.Errorf("quota %s = %v, want %s", name, got.String(), want)
		}
	}

	lr, err := cs.CoreV1().LimitRanges(ns).Get(ctx, LimitRangeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Spec.Limits) != 2 || lr.Spec.Limits[0].Type != corev1.LimitTypeContainer ||
		lr.Spec.Limits[0].Max.Cpu().Cmp(qty("1500m")) != 0 || lr.Spec.Limits[0].Max.Memory().Cmp(qty("256Mi")) != 0 ||
		lr.Spec.Limits[1].Type != corev1.LimitTypePod {
		t.Errorf("limit range %+v", lr.Spec.Limits)
	}

	pod, err := cs.CoreV1().Pods(ns).Get(ctx, PodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ps := pod.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever || ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken ||
		ps.ActiveDeadlineSeconds == nil || *ps.ActiveDeadlineSeconds != 3600 || ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Errorf("pod spec %+v", ps)
	}
	if psc := ps.SecurityContext; psc == nil || !*psc.RunAsNonRoot || *psc.RunAsUser != 65534 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || *sc.Privileged || !*sc.RunAsNonRoot ||
		fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v", sc)
	}
	if c.Image != "ghcr.io/acme/model:1.4" || fmt.Sprint(c.Command) != fmt.Sprint(testSpec(port).Command) {
		t.Errorf("container image %s command %v", c.Image, c.Command)
	}
	if c.Resources.Limits.Cpu().Cmp(qty("1500m")) != 0 || c.Resources.Requests.Memory().Cmp(qty("256Mi")) != 0 {
		t.Errorf("container resources %+v", c.Resources)
	}
	if v := ps.Volumes; len(v) != 1 || v[0].EmptyDir == nil || v[0].EmptyDir.Medium != corev1.StorageMediumMemory || v[0].EmptyDir.SizeLimit.Cmp(qty("32Mi")) != 0 {
		t.Errorf("volumes %+v", v)
	}
	if err := sb.Evidence().Applied.Check(testSpec(port).Limits); err != nil {
		t.Errorf("evidence check: %v", err)
	}
	if got := sb.Evidence().Requested.Pod.Status.Phase; got != "" {
		t.Errorf("requested pod carries status %q: the evidence was mutated", got)
	}

	// The way in: relay -> port-forward -> model; budgets hold.
	if got := fmt.Sprint(fwd.asked); got != fmt.Sprintf("[%s/model:%d]", ns, port) {
		t.Errorf("port-forward asked for %s", got)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sb.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, http.StatusTooManyRequests} {
		resp, err := http.Get(sb.Endpoint() + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if err := sb.Freeze(ctx); !errors.Is(err, sandbox.ErrUnsupported) {
		t.Errorf("Freeze = %v, want ErrUnsupported", err)
	}

	before := len(cs.Actions())
	td, err := sb.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !td.NamespaceGone || td.Namespace != ns {
		t.Errorf("teardown %+v", td)
	}
	var deleted bool
	for _, a := range cs.Actions()[before:] {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "namespaces" && d.GetName() == ns {
			deleted = true
			if pp := d.GetDeleteOptions().PropagationPolicy; pp == nil || *pp != metav1.DeletePropagationForeground {
				t.Errorf("namespace delete propagation %v, want Foreground", pp)
			}
		}
	}
	if !deleted {
		t.Error("namespace not deleted")
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace still there: %v", err)
	}
	if !fwd.closed {
		t.Error("port-forward not closed")
	}
	select {
	case <-sb.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if st := sb.Stats(); st.Running || st.KilledBy != sandbox.KilledBySignal {
		t.Errorf("stats after stop %+v", st)
	}
	if _, err := sb.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestHarnessIngressIsTheOnlyWayInOverThePodNetwork(t *testing.T) {
	cs := newFakeCluster(nil)
	p, _, port := testProvider(t, cs, func(o *Options) {
		o.Harness = &Harness{NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "sandgate"}, PodLabels: map[string]string{"app": "sandgate-worker"}}
	})
	sb, err := p.Start(context.Background(), testSpec(port))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(context.Background())
	np := sb.Evidence().Applied.NetworkPolicy
	if len(np.Spec.Egress) != 0 || len(np.Spec.Ingress) != 1 {
		t.Fatalf("policy %+v", np.Spec)
	}
	r := np.Spec.Ingress[0]
	if len(r.From) != 1 || r.From[0].PodSelector.MatchLabels["app"] != "sandgate-worker" ||
		r.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "sandgate" {
		t.Errorf("ingress from %+v", r.From)
	}
	if len(r.Ports) != 1 || r.Ports[0].Port.IntValue() != port || *r.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("ingress ports %+v", r.Ports)
	}
}

func deletedNamespaces(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "namespaces" {
			out = append(out, d.GetName())
		}
	}
	return out
}

func TestImagePullErrorFailsFastAndDeletesNamespace(t *testing.T) {
	cs := newFakeCluster(func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "pull access denied"},
		}}}
	})
	p, _, port := testProvider(t, cs, nil)
	_, err := p.Start(context.Background(), testSpec(port))
	if err == nil || !strings.Contains(err.Error(), "ImagePullBackOff: pull access denied") {
		t.Fatalf("Start = %v, want the kubelet's reason", err)
	}
	if got := deletedNamespaces(cs); len(got) != 1 {
		t.Errorf("deleted namespaces %v, want the sandbox's", got)
	}
}

func TestAdmissionThatLoosensThePodIsRefused(t *testing.T) {
	// A mutating webhook that turns privilege escalation back on and adds
	// a capability: the pod the server stored is what gets checked.
	cs := newFakeCluster(func(p *corev1.Pod) {
		yes := true
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
		p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
	})
	p, fwd, port := testProvider(t, cs, nil)
	_, err := p.Start(context.Background(), testSpec(port))
	if err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation is not false") || !strings.Contains(err.Error(), "capabilities") {
		t.Fatalf("Start = %v", err)
	}
	if len(fwd.asked) != 0 {
		t.Errorf("a loosened pod was reached: %v", fwd.asked)
	}
	if got := deletedNamespaces(cs); len(got) != 1 {
		t.Errorf("deleted namespaces %v", got)
	}
}

func TestDeadlineExceededIsRecorded(t *testing.T) {
	cs := newFakeCluster(nil)
	p, _, port := testProvider(t, cs, nil)
	ctx := context.Background()
	sb, err := p.Start(ctx, testSpec(port))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop(ctx)
	// What the kubelet does at activeDeadlineSeconds.
	pod, err := cs.CoreV1().Pods(sb.ID()).Get(ctx, PodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "DeadlineExceeded"
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"},
	}}}
	if _, err := cs.CoreV1().Pods(sb.ID()).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("pod end not noticed")
	}
	if st := sb.Stats(); st.KilledBy != sandbox.KilledByDeadline || st.ExitCode != 137 || st.Running {
		t.Errorf("stats %+v", st)
	}
}

func TestBadOptionsAndSpecsAreRefusedBeforeAnyRequest(t *testing.T) {
	cs := newFakeCluster(nil)
	for _, c := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Image = "" }, "Image is empty"},
		{func(o *Options) { o.NamespacePrefix = "Sandgate_" }, "NamespacePrefix"},
		{func(o *Options) { o.NamespacePrefix = strings.Repeat("a", 21) }, "NamespacePrefix"},
		{func(o *Options) { o.RunAsUser = -1 }, "RunAsUser"},
		{func(o *Options) { o.PortForward = nil; o.Kubeconfig = "/nonexistent/kubeconfig" }, "Kubeconfig"},
	} {
		opt := Options{Image: "img", Clientset: cs, PortForward: (&tcpForwarder{}).portForward}
		c.mod(&opt)
		if _, err := New(opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New = %v, want an error naming %s", err, c.want)
		}
	}
	p, _, _ := testProvider(t, cs, nil)
	for _, c := range []struct {
		spec sandbox.Spec
		want string
	}{
		{sandbox.Spec{Command: []string{"m"}}, "Spec.Port"},
		{sandbox.Spec{Port: 8000}, "Spec.Command"},
		{sandbox.Spec{Command: []string{"m"}, Port: 8000, NoRelay: true}, "NoRelay"},
		{sandbox.Spec{Command: []string{"m"}, Port: 8000, WorkDir: "/models/harbor"}, "WorkDir"},
	} {
		if _, err := p.Start(context.Background(), c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%+v) = %v, want an error naming %s", c.spec, err, c.want)
		}
	}
	if n := len(cs.Actions()); n != 0 {
		t.Errorf("bad input reached the API server: %d actions", n)
	}
}

func TestLongNamesFitANamespace(t *testing.T) {
	p, _, _ := testProvider(t, newFakeCluster(nil), func(o *Options) { o.NamespacePrefix = "sandgate-prod-eu-" })
	id, err := p.newID(strings.Repeat("Very_Long.Model Name-", 10))
	if err != nil {
		t.Fatal(err)
	}
	if len(id) > 63 || !dnsLabelPrefix(id) || strings.HasSuffix(id, "-") || strings.Contains(id, "--"+"-") {
		t.Errorf("namespace name %q (%d bytes) is not a DNS label", id, len(id))
	}
}

func TestEvidenceCheckNamesEachGap(t *testing.T) {
	p, _, _ := testProvider(t, newFakeCluster(nil), nil)
	limits := testSpec(8000).Limits
	base := func() Objects { return p.buildObjects("sandgate-x-00000000", testSpec(8000)) }
	if err := base().Check(limits); err != nil {
		t.Fatalf("built objects fail their own check: %v", err)
	}
	yes := true
	for _, c := range []struct {
		mod  func(*Objects)
		want string
	}{
		{func(o *Objects) {
			o.NetworkPolicy.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
		}, "allows egress"},
		{func(o *Objects) {
			o.NetworkPolicy.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		}, "allows egress"},
		{func(o *Objects) { o.NetworkPolicy.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}} }, "ingress rule from anywhere"},
		{func(o *Objects) { o.NetworkPolicy = nil }, "no NetworkPolicy"},
		{func(o *Objects) { delete(o.ResourceQuota.Spec.Hard, corev1.ResourcePods) }, "cap pods"},
		{func(o *Objects) { o.Pod.Spec.HostNetwork = true }, "host namespace"},
		{func(o *Objects) { o.Pod.Spec.AutomountServiceAccountToken = nil }, "token"},
		{func(o *Objects) { o.Pod.Spec.ActiveDeadlineSeconds = nil }, "activeDeadlineSeconds"},
		{func(o *Objects) { o.Pod.Spec.SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot"},
		{func(o *Objects) { o.Pod.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil }, "root filesystem"},
		{func(o *Objects) { o.Pod.Spec.Containers[0].SecurityContext.Privileged = &yes }, "privileged"},
		{func(o *Objects) { o.Pod.Spec.Containers[0].Ports[0].HostPort = 8000 }, "bound on the host"},
		{func(o *Objects) {
			o.Pod.Spec.Volumes = append(o.Pod.Spec.Volumes, corev1.Volume{Name: "docker", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}})
		}, "hostPath"},
		{func(o *Objects) { delete(o.Pod.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory) }, "memory limit"},
	} {
		o := base()
		c.mod(&o)
		if err := o.Check(limits); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check = %v, want it to say %q", err, c.want)
		}
	}
}
