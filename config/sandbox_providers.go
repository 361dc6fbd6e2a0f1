package config

import (
	"path/filepath"
	"regexp"
	"strings"
)

// namespacePrefixRE: a namespace name is a DNS label; the prefix may end in '-'.
var namespacePrefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Sandbox providers a config may name.
const (
	ProviderProcess    = "process"
	ProviderDocker     = "docker"
	ProviderKubernetes = "kubernetes"
)

// DockerSandbox configures model.sandbox for provider docker
// (sandbox/docker). The engine must run on the worker's host.
type DockerSandbox struct {
	// Host is the engine's unix socket (default DOCKER_HOST, else
	// unix:///var/run/docker.sock).
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// SpliceBinary is the worker-host path of a static sandgate-splice.
	SpliceBinary string `yaml:"splice_binary" json:"splice_binary"`
	// User is the numeric "uid:gid" the model runs as (default 65534:65534).
	User string `yaml:"user,omitempty" json:"user,omitempty"`
}

// KubernetesSandbox configures model.sandbox for provider kubernetes
// (sandbox/kube).
type KubernetesSandbox struct {
	// NamespacePrefix starts each sandbox's namespace (default "sandgate-").
	NamespacePrefix string `yaml:"namespace_prefix,omitempty" json:"namespace_prefix,omitempty"`
	// Kubeconfig is the worker-host path of a kubeconfig; empty means the
	// in-cluster config.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
}

// validateSandboxProvider checks model.sandbox.provider and the fields
// that belong to it.
func validateSandboxProvider(path string, s Sandbox, add func(path, format string, args ...any)) {
	p := path + ".sandbox"
	switch s.Provider {
	case ProviderProcess:
		if s.Image != "" || s.Docker != nil || s.Kubernetes != nil {
			add(p, "image, docker and kubernetes apply to those providers; remove them or set provider to docker or kubernetes")
		}
	case ProviderDocker:
		if s.Image == "" {
			add(p+".image", "is missing; name the model server's image, e.g. ghcr.io/acme/model:1.4")
		}
		if s.Kubernetes != nil {
			add(p+".kubernetes", "applies to provider kubernetes; remove it")
		}
		d := s.Docker
		if d == nil || d.SpliceBinary == "" {
			add(p+".docker.splice_binary", "is missing; build one with CGO_ENABLED=0 go build -o sandgate-splice ./cmd/sandgate-splice and give its absolute path on the worker")
		} else if !filepath.IsAbs(d.SpliceBinary) {
			add(p+".docker.splice_binary", "%q is relative; give an absolute path (it is bind-mounted into the container)", d.SpliceBinary)
		}
		if d != nil && d.Host != "" && !strings.HasPrefix(d.Host, "unix://") {
			add(p+".docker.host", "%q is not a unix socket; the engine must run on the worker's host (unix:///var/run/docker.sock)", d.Host)
		}
		if d != nil && d.User != "" {
			uid, gid, ok := strings.Cut(d.User, ":")
			if !ok || !allDigits(uid) || !allDigits(gid) || strings.TrimLeft(uid, "0") == "" {
				add(p+".docker.user", "%q is not a numeric non-root uid:gid; use e.g. \"65534:65534\"", d.User)
			}
		}
	case ProviderKubernetes:
		if s.Image == "" {
			add(p+".image", "is missing; name the model server's image, e.g. ghcr.io/acme/model:1.4")
		}
		if s.Docker != nil {
			add(p+".docker", "applies to provider docker; remove it")
		}
		if k := s.Kubernetes; k != nil && k.NamespacePrefix != "" && !namespacePrefixRE.MatchString(k.NamespacePrefix) {
			add(p+".kubernetes.namespace_prefix", "%q is not a DNS label prefix; use lowercase letters, digits and '-', e.g. \"sandgate-\"", k.NamespacePrefix)
		}
		if k := s.Kubernetes; k != nil && len(k.NamespacePrefix) > 20 {
			add(p+".kubernetes.namespace_prefix", "is %d bytes; keep it to 20 so the namespace name fits 63", len(k.NamespacePrefix))
		}
	default:
		add(p+".provider", "%q is not a sandbox provider; use %q, %q or %q", s.Provider, ProviderProcess, ProviderDocker, ProviderKubernetes)
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
