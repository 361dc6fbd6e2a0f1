package gate

import "strings"

// Phases of a release at which rules are evaluated. Shadow metrics exist
// only after the shadow stage, so their rules are decided there; every other
// rule is decided before the candidate sees mirrored traffic.
const (
	PhasePreShadow = "pre-shadow"
	PhaseShadow    = "shadow"
)

// RulePhase is the phase in which a rule's metric is available.
func RulePhase(r Rule) string {
	if strings.HasPrefix(r.Metric, "shadow.") {
		return PhaseShadow
	}
	return PhasePreShadow
}

// ForPhase keeps the rules decided in phase, in policy order.
func (p Policy) ForPhase(phase string) Policy {
	var out Policy
	for _, r := range p.Rules {
		if RulePhase(r) == phase {
			out.Rules = append(out.Rules, r)
		}
	}
	return out
}
