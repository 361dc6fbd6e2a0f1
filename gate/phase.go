package gate

import "strings"

// Phases of a release at which rules are evaluated. Shadow metrics exist
// only after the shadow stage, so their rules are decided there; every other
// rule is decided before the candidate sees mirrored traffic.
const (
	PhasePreShadow = "pre-shadow"
	PhaseShadow    = "shadow"
)

// RulePhase is the phase in which a rule's metrics are available. An
// expression rule is a shadow rule when every metric it reads (from m or
// baseline) is a shadow metric; an expression that reads none, or that does
// not compile, is decided pre-shadow, so an invalid rule blocks as early as
// possible.
func RulePhase(r Rule) string {
	var env exprEnv
	return rulePhase(r, &env)
}

func rulePhase(r Rule, env *exprEnv) string {
	if r.Expr == "" {
		if strings.HasPrefix(r.Metric, "shadow.") {
			return PhaseShadow
		}
		return PhasePreShadow
	}
	e, err := env.get()
	if err != nil {
		return PhasePreShadow
	}
	c, err := compileExpr(e, r.Expr)
	if err != nil {
		return PhasePreShadow
	}
	names := c.allMetrics()
	if len(names) == 0 {
		return PhasePreShadow
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "shadow.") {
			return PhasePreShadow
		}
	}
	return PhaseShadow
}

// ForPhase keeps the rules decided in phase, in policy order.
func (p Policy) ForPhase(phase string) Policy {
	var out Policy
	var env exprEnv
	for _, r := range p.Rules {
		if rulePhase(r, &env) == phase {
			out.Rules = append(out.Rules, r)
		}
	}
	return out
}
