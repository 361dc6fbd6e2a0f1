package kube

import (
	"fmt"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sandgate/sandgate/sandbox"
)

// Names of the objects in a sandbox's namespace.
const (
	PolicyName     = "sandgate-isolate"
	QuotaName      = "sandgate-quota"
	LimitRangeName = "sandgate-limits"
	PodName        = "model"
	ContainerName  = "model"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelSandbox   = "sandgate.io/sandbox"
)

// Objects is everything a sandbox creates, in creation order after the
// namespace. Kept as evidence in the form the API server returned them.
type Objects struct {
	Namespace     *corev1.Namespace           `json:"namespace"`
	NetworkPolicy *networkingv1.NetworkPolicy `json:"network_policy"`
	ResourceQuota *corev1.ResourceQuota       `json:"resource_quota"`
	LimitRange    *corev1.LimitRange          `json:"limit_range"`
	Pod           *corev1.Pod                 `json:"pod"`
}

// Harness names the pods allowed to reach the model over the pod network,
// for a harness running inside the cluster. Without it the NetworkPolicy
// denies all ingress too: port-forward does not cross the pod network
// (the kubelet dials the pod's own loopback), so it still gets in.
type Harness struct {
	NamespaceLabels map[string]string
	PodLabels       map[string]string
}

// buildObjects decides every restriction in one place.
func (p *Provider) buildObjects(id string, spec sandbox.Spec) Objects {
	labels := map[string]string{LabelManagedBy: "sandgate", LabelSandbox: id}
	nsLabels := map[string]string{
		LabelManagedBy: "sandgate", LabelSandbox: id,
		// Pod Security Admission rejects any pod in this namespace that
		// is not "restricted", whoever creates it.
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}
	for k, v := range p.opt.Labels {
		labels[k], nsLabels[k] = v, v
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: id, Labels: labels}
	}

	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: meta(PolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{}, // every pod in the namespace
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			// No egress rules: nothing out, DNS included.
			Egress: []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	if h := p.opt.Harness; h != nil {
		port := intstr.FromInt32(int32(spec.Port))
		tcp := corev1.ProtocolTCP
		policy.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: h.NamespaceLabels},
				PodSelector:       &metav1.LabelSelector{MatchLabels: h.PodLabels},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
		}}
	} else {
		policy.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
	}

	res := corev1.ResourceList{}
	if c := spec.Limits.CPUs; c > 0 {
		res[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(c*1000)), resource.DecimalSI)
	}
	if m := spec.Limits.MemoryBytes; m > 0 {
		res[corev1.ResourceMemory] = *resource.NewQuantity(m, resource.BinarySI)
	}
	zero := resource.MustParse("0")
	hard := corev1.ResourceList{
		corev1.ResourcePods:                   resource.MustParse("1"),
		corev1.ResourceServices:               zero,
		corev1.ResourceServicesLoadBalancers:  zero,
		corev1.ResourceServicesNodePorts:      zero,
		corev1.ResourcePersistentVolumeClaims: zero,
		corev1.ResourceReplicationControllers: zero,
	}
	if q, ok := res[corev1.ResourceCPU]; ok {
		hard[corev1.ResourceRequestsCPU], hard[corev1.ResourceLimitsCPU] = q, q
	}
	if q, ok := res[corev1.ResourceMemory]; ok {
		hard[corev1.ResourceRequestsMemory], hard[corev1.ResourceLimitsMemory] = q, q
	}
	quota := &corev1.ResourceQuota{ObjectMeta: meta(QuotaName), Spec: corev1.ResourceQuotaSpec{Hard: hard}}

	limitRange := &corev1.LimitRange{
		ObjectMeta: meta(LimitRangeName),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: res.DeepCopy(), Default: res.DeepCopy(), DefaultRequest: res.DeepCopy()},
			{Type: corev1.LimitTypePod, Max: res.DeepCopy()},
		}},
	}

	yes, no := true, false
	uid := p.opt.RunAsUser
	env := make([]corev1.EnvVar, 0, len(spec.Env)+2)
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	for _, d := range []corev1.EnvVar{{Name: "HOME", Value: "/tmp"}, {Name: "TMPDIR", Value: "/tmp"}} {
		if !hasEnv(env, d.Name) {
			env = append(env, d)
		}
	}
	tmpfs := resource.NewQuantity(p.opt.TmpfsBytes, resource.BinarySI)
	grace := int64(math.Ceil(p.opt.StopGrace.Seconds()))
	pod := &corev1.Pod{
		ObjectMeta: meta(PodName),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   &yes,
				RunAsUser:      &uid,
				RunAsGroup:     &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            ContainerName,
				Image:           p.opt.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         append([]string(nil), spec.Command...),
				Env:             env,
				WorkingDir:      "/tmp",
				Ports:           []corev1.ContainerPort{{Name: "model", ContainerPort: int32(spec.Port), Protocol: corev1.ProtocolTCP}},
				// Requests equal limits: Guaranteed QoS, and the quota
				// counts exactly what the model may use.
				Resources: corev1.ResourceRequirements{Limits: res.DeepCopy(), Requests: res.DeepCopy()},
				SecurityContext: &corev1.SecurityContext{
					Privileged:               &no,
					AllowPrivilegeEscalation: &no,
					ReadOnlyRootFilesystem:   &yes,
					RunAsNonRoot:             &yes,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{{
				Name: "tmp",
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					Medium: corev1.StorageMediumMemory, SizeLimit: tmpfs,
				}},
			}},
		},
	}
	if d := spec.Limits.WallClock; d > 0 {
		secs := int64(math.Ceil(d.Seconds()))
		pod.Spec.ActiveDeadlineSeconds = &secs
	}
	return Objects{
		Namespace:     &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: id, Labels: nsLabels}},
		NetworkPolicy: policy,
		ResourceQuota: quota,
		LimitRange:    limitRange,
		Pod:           pod,
	}
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// Check returns an error naming every restriction missing from the
// objects as the API server returned them; nil means they are as asked.
// It cannot show that the cluster's CNI enforces the NetworkPolicy: that
// is a property of the cluster, not of an object.
func (o Objects) Check(want sandbox.Limits) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if np := o.NetworkPolicy; np == nil {
		add("no NetworkPolicy")
	} else {
		if len(np.Spec.PodSelector.MatchLabels) > 0 || len(np.Spec.PodSelector.MatchExpressions) > 0 {
			add("NetworkPolicy does not select every pod")
		}
		types := map[networkingv1.PolicyType]bool{}
		for _, t := range np.Spec.PolicyTypes {
			types[t] = true
		}
		if !types[networkingv1.PolicyTypeEgress] || len(np.Spec.Egress) > 0 {
			add("NetworkPolicy allows egress (policyTypes %v, %d egress rules)", np.Spec.PolicyTypes, len(np.Spec.Egress))
		}
		if !types[networkingv1.PolicyTypeIngress] {
			add("NetworkPolicy does not restrict ingress")
		}
		for _, r := range np.Spec.Ingress {
			if len(r.From) == 0 {
				add("NetworkPolicy has an ingress rule from anywhere")
			}
		}
	}
	if q := o.ResourceQuota; q == nil {
		add("no ResourceQuota")
	} else if pods, ok := q.Spec.Hard[corev1.ResourcePods]; !ok || pods.Value() != 1 {
		add("ResourceQuota does not cap pods at 1")
	}
	if o.LimitRange == nil {
		add("no LimitRange")
	}
	pod := o.Pod
	if pod == nil || len(pod.Spec.Containers) != 1 {
		add("want one pod with one container")
		return fmt.Errorf("kubernetes evidence: %s", strings.Join(problems, "; "))
	}
	ps := pod.Spec
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		add("pod shares a host namespace")
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		add("service account token is mounted")
	}
	if want.WallClock > 0 && (ps.ActiveDeadlineSeconds == nil || time.Duration(*ps.ActiveDeadlineSeconds)*time.Second < want.WallClock) {
		add("activeDeadlineSeconds %v does not cover wall clock %s", ps.ActiveDeadlineSeconds, want.WallClock)
	}
	if psc := ps.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		add("pod runAsNonRoot is not set")
	} else if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		add("pod seccompProfile is not RuntimeDefault")
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			add("volume %s is a hostPath", v.Name)
		}
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		add("container has no securityContext")
	default:
		if sc.Privileged != nil && *sc.Privileged {
			add("container is privileged")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("allowPrivilegeEscalation is not false")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add("root filesystem is writable")
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 || !containsAll(sc.Capabilities.Drop) {
			add("capabilities are not drop ALL with none added")
		}
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			add("port %d is bound on the host", p.ContainerPort)
		}
	}
	if want.MemoryBytes > 0 {
		if m, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || m.Value() != want.MemoryBytes {
			add("memory limit %v, want %d", c.Resources.Limits.Memory(), want.MemoryBytes)
		}
	}
	if want.CPUs > 0 {
		if q, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok || q.MilliValue() != int64(math.Ceil(want.CPUs*1000)) {
			add("cpu limit %v, want %vm", c.Resources.Limits.Cpu(), int64(math.Ceil(want.CPUs*1000)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("kubernetes evidence: %s", strings.Join(problems, "; "))
	}
	return nil
}

func containsAll(caps []corev1.Capability) bool {
	for _, c := range caps {
		if strings.EqualFold(string(c), "ALL") {
			return true
		}
	}
	return false
}
