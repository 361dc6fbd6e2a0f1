package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"

	"github.com/sandgate/sandgate/sandbox"
)

// validateSandboxEgress refuses an allowlist a provider cannot enforce: only
// the process provider has the egress relay.
func validateSandboxEgress(path string, s Sandbox, add func(path, format string, args ...any)) {
	if len(s.Egress.Allow) > 0 && s.Provider != ProviderProcess {
		add(path, "is only enforced by the process provider (it relays and records each connection); remove it or use provider: process")
		return
	}
	validateEgress(path, s.Egress.Allow, s.Port, add)
}

// validateEgress checks model.sandbox.egress.allow entry by entry, so each
// error names the entry's own field.
func validateEgress(path string, rules []EgressRule, modelPort int, add func(path, format string, args ...any)) {
	seenAddr, seenName := map[string]int{}, map[string]int{}
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		if len(r.Name) > 63 || strings.ContainsFunc(r.Name, unicode.IsControl) {
			add(p+".name", "%q is not a short printable label (at most 63 bytes), e.g. \"vector-store\"", r.Name)
		} else if j, dup := seenName[r.Name]; dup && r.Name != "" {
			add(p+".name", "%q is already the name of entry %d; give each service its own name", r.Name, j)
		}
		seenName[r.Name] = i
		a, err := sandbox.ParseEgressAddress(r.Address)
		if err != nil {
			add(p+".address", "%v", err)
			continue
		}
		if j, dup := seenAddr[a]; dup {
			add(p+".address", "%s is already allowed by entry %d; remove one", a, j)
		}
		seenAddr[a] = i
		host, port, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && port == strconv.Itoa(modelPort) {
			add(p+".address", "%s uses the model's own port %d: inside the sandbox the service is served at the same loopback address, so the model could not listen; move the service to another port", a, modelPort)
		}
	}
}
