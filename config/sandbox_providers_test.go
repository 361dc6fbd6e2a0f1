package config

import (
	"strings"
	"testing"
)

func withSandbox(t *testing.T, lines string) string {
	t.Helper()
	good := string(exampleBytes(t))
	const anchor = "    provider: process\n"
	if !strings.Contains(good, anchor) {
		t.Fatal("examples/release.yaml no longer names provider: process")
	}
	return strings.Replace(good, anchor, lines, 1)
}

func TestSandboxProvidersParse(t *testing.T) {
	for name, lines := range map[string]string{
		"docker": "    provider: docker\n    image: ghcr.io/acme/model:1.4\n" +
			"    docker: {splice_binary: /usr/local/bin/sandgate-splice, host: \"unix:///run/docker.sock\", user: \"1000:1000\"}\n",
		"kubernetes": "    provider: kubernetes\n    image: ghcr.io/acme/model:1.4\n" +
			"    kubernetes: {namespace_prefix: sg-prod-, kubeconfig: /etc/sandgate/kubeconfig}\n",
	} {
		r, err := Parse([]byte(withSandbox(t, lines)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Model.Sandbox.Provider != name || r.Model.Sandbox.Image != "ghcr.io/acme/model:1.4" {
			t.Errorf("%s: parsed %+v", name, r.Model.Sandbox)
		}
	}
}

func TestSandboxProviderErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		name, lines string
		want        []string
	}{
		{"unknown provider", "    provider: firecracker\n", []string{`model.sandbox.provider: "firecracker" is not a sandbox provider; use "process", "docker" or "kubernetes"`}},
		{"docker without image or splice", "    provider: docker\n", []string{"model.sandbox.image: is missing", "model.sandbox.docker.splice_binary: is missing"}},
		{"docker relative splice, remote host, root user",
			"    provider: docker\n    image: m:1\n    docker: {splice_binary: bin/splice, host: \"tcp://10.0.0.5:2376\", user: \"0:0\"}\n",
			[]string{"model.sandbox.docker.splice_binary: \"bin/splice\" is relative", "model.sandbox.docker.host: \"tcp://10.0.0.5:2376\" is not a unix socket", "model.sandbox.docker.user: \"0:0\""}},
		{"docker with kubernetes block", "    provider: docker\n    image: m:1\n    docker: {splice_binary: /s}\n    kubernetes: {}\n", []string{"model.sandbox.kubernetes: applies to provider kubernetes"}},
		{"kubernetes bad prefix", "    provider: kubernetes\n    image: m:1\n    kubernetes: {namespace_prefix: Sand_Gate}\n", []string{"model.sandbox.kubernetes.namespace_prefix: \"Sand_Gate\""}},
		{"kubernetes without image", "    provider: kubernetes\n", []string{"model.sandbox.image: is missing"}},
		{"process with image", "    provider: process\n    image: m:1\n", []string{"model.sandbox: image, docker and kubernetes apply to those providers"}},
		{"typo in docker block", "    provider: docker\n    image: m:1\n    docker: {splice_bin: /s}\n", []string{"model.sandbox.docker.splice_bin: unknown field"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(withSandbox(t, c.lines)))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
