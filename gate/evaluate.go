package gate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/shadow"
)

// Metrics maps metric names (see KnownMetrics) to values. A name that is
// absent was not measured, which is different from a measured zero.
type Metrics map[string]float64

// MetricsFrom flattens the stage summaries into gate metrics.
//
// Absence is deliberate: a metric is only set when the stage produced the
// data it is computed from, so that "nothing ran" can never pass as "nothing
// went wrong":
//   - ASR metrics need at least one breached or defended attempt (in the
//     category, for per-category names); error_rate and attempts need one attempt.
//   - privacy metrics need at least one scanned response; every known leak
//     kind is then set (zero when none was found).
//   - shadow metrics need at least one request; agreement and similarity need
//     at least one compared pair (Summary.Compared, when reported), the gap
//     also a noise-floor pair, the latency ratio a non-zero incumbent p95.
func MetricsFrom(adv redteam.Summary, priv privacy.Summary, sh shadow.Summary) Metrics {
	m := Metrics{}

	attempts := adv.Overall.Breached + adv.Overall.Defended + adv.Overall.Errored
	if adv.Total > attempts {
		attempts = adv.Total
	}
	if attempts > 0 {
		m[MetricAdvAttempts] = float64(attempts)
		m[MetricAdvErrorRate] = float64(adv.Overall.Errored) / float64(attempts)
	}
	if adv.Overall.Breached+adv.Overall.Defended > 0 {
		m[MetricASR] = adv.Overall.ASR
		m[MetricASRUpper] = adv.Overall.Hi
	}
	for cat, r := range adv.ByCategory {
		if r.Breached+r.Defended > 0 {
			m[prefixASR+cat] = r.ASR
			m[prefixASRUpper+cat] = r.Hi
		}
	}

	if priv.Scanned > 0 {
		m[MetricLeaks] = float64(priv.Leaks)
		m[MetricLeakRate] = priv.LeakRate
		for _, k := range LeakKinds() {
			m[prefixLeaks+k] = float64(priv.ByKind[k])
		}
		for k, n := range priv.ByKind {
			m[prefixLeaks+k] = float64(n)
		}
	}

	if sh.Requests > 0 {
		m[MetricShadowErrorRate] = float64(sh.Errors) / float64(sh.Requests)
		// Older summaries without the pair counts: fall back to "every
		// request that did not error was compared".
		compared, noise := sh.Compared, sh.NoiseCompared
		if compared == 0 && noise == 0 {
			compared = sh.Requests - sh.Errors
			noise = compared
		}
		if compared > 0 {
			m[MetricAgreement] = sh.ExactAgreement
			m[MetricSimilarity] = sh.MeanSimilarity
			if noise > 0 {
				m[MetricAgreementGap] = sh.NoiseFloorAgreement - sh.ExactAgreement
			}
		}
		if sh.IncumbentP95MS > 0 {
			m[MetricLatencyP95Ratio] = sh.CandidateP95MS / sh.IncumbentP95MS
		}
	}
	return m
}

// Verdict is the outcome of a policy over metrics, with one result per rule
// in policy order.
type Verdict struct {
	Verdict string       `json:"verdict"` // Released or Blocked
	Rules   []RuleResult `json:"rules"`
	Failed  []string     `json:"failed"` // names of failing block rules, policy order
}

// RuleResult is the evidence for one rule.
type RuleResult struct {
	Name string `json:"name"`
	// Metric is the rule's metric; for an expression rule, the metrics it
	// reads from m, comma-separated.
	Metric    string  `json:"metric"`
	Expr      string  `json:"expr,omitempty"`
	Value     float64 `json:"value"`     // 0 when Missing; for an expression, the value of its one metric (0 when it reads several)
	Threshold float64 `json:"threshold"` // the bound violated, else max (or min when only min is set); for an expression, the other side of its one comparison, when it has one
	Op        string  `json:"op"`        // "<=", ">=", "between" (min <= value <= max) or "expr"
	Passed    bool    `json:"passed"`
	Severity  string  `json:"severity"`
	Missing   bool    `json:"missing"`
	Message   string  `json:"message"`
	// Evidence is the S3 keys of the result files the rule's metrics were
	// computed from, so a reader can open the rows behind a verdict.
	Evidence []string `json:"evidence,omitempty"`
}

// Evaluate applies p to m with no baseline and no evidence keys; see
// EvaluateWithEvidence.
func Evaluate(p Policy, m Metrics) Verdict {
	return EvaluateWithEvidence(p, m, nil, nil)
}

// EvaluateWithEvidence applies p to m. baseline holds the metrics of the
// last released version of the model (nil or empty when there is none);
// expression rules see it as "baseline". evidence maps a metric prefix
// ("adversarial", "privacy", "adversarial.asr.LLM07", …) to the S3 keys of
// the rows behind metrics with that prefix; each rule gets the keys of the
// longest prefix matching each metric it reads.
//
// It fails closed: an invalid rule (blocking, whatever its severity) or a
// missing metric (unless the rule allows it) blocks the release. An empty
// rule list releases: it is what ForPhase returns for a phase the policy has
// no rules for; an empty policy as a whole is refused earlier, by Validate
// and ParsePolicy.
func EvaluateWithEvidence(p Policy, m, baseline Metrics, evidence map[string][]string) Verdict {
	v := Verdict{Verdict: Released, Rules: make([]RuleResult, 0, len(p.Rules)), Failed: []string{}}
	var env exprEnv
	for i, r := range p.Rules {
		res, blocking := evalRule(i, r, m, baseline, &env)
		v.Rules = append(v.Rules, res)
		if blocking {
			v.Failed = append(v.Failed, res.Name)
		}
	}
	for i, r := range v.Rules {
		v.Rules[i].Evidence = evidenceFor(ruleMetrics(p.Rules[i], r), evidence)
	}
	if len(v.Failed) > 0 {
		v.Verdict = Blocked
	}
	return v
}

// ruleMetrics is the metrics of the release a rule read, for evidence.
func ruleMetrics(r Rule, res RuleResult) []string {
	if r.Expr == "" {
		return []string{r.Metric}
	}
	if res.Metric == "" {
		return nil
	}
	return strings.Split(res.Metric, ",")
}

// evidenceFor picks, for each metric, the keys of the longest matching
// prefix, so a caller can give per-category files for "adversarial.asr.LLM07"
// beside the whole stage for "adversarial". Keys are sorted and unique.
func evidenceFor(metrics []string, evidence map[string][]string) []string {
	if len(evidence) == 0 {
		return nil
	}
	var out []string
	for _, name := range metrics {
		best, found := "", false
		for prefix := range evidence {
			matches := name == prefix || strings.HasPrefix(name, strings.TrimSuffix(prefix, ".")+".")
			if matches && (!found || len(prefix) > len(best)) {
				best, found = prefix, true
			}
		}
		if found {
			out = append(out, evidence[best]...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// evalRule returns the result and whether it blocks the release.
func evalRule(i int, r Rule, m, baseline Metrics, env *exprEnv) (RuleResult, bool) {
	res := RuleResult{Name: r.Name, Metric: r.Metric, Expr: r.Expr, Severity: r.EffectiveSeverity()}
	if res.Name == "" {
		res.Name = fmt.Sprintf("rules[%d]", i)
	}
	problems, compiled := checkRule(r, env)
	if len(problems) > 0 {
		res.Severity = SeverityBlock
		res.Message = fmt.Sprintf("invalid rule: gate: %s: %s", ruleWhere(i, r), strings.Join(problems, "; "))
		return res, true
	}
	if compiled != nil {
		return evalExprRule(res, r, compiled, m, baseline)
	}
	res.Op, res.Threshold = opOf(r)
	blocks := res.Severity == SeverityBlock

	val, ok := m[r.Metric]
	if !ok {
		res.Missing = true
		if r.AllowMissing {
			res.Passed = true
			res.Message = fmt.Sprintf("%s was not measured; passed because allow_missing is set", r.Metric)
			return res, false
		}
		res.Message = fmt.Sprintf("%s was not measured (no data for it in this release); set allow_missing: true on the rule if that is acceptable", r.Metric)
		return res, blocks
	}
	if !finite(val) {
		res.Message = fmt.Sprintf("%s = %v is not a finite number", r.Metric, val)
		return res, blocks
	}
	res.Value = val
	res.Passed, res.Op, res.Threshold, res.Message = checkThreshold(r, val)
	return res, blocks && !res.Passed
}

func evalExprRule(res RuleResult, r Rule, c *compiledExpr, m, baseline Metrics) (RuleResult, bool) {
	blocks := res.Severity == SeverityBlock
	res.Op = "expr"
	res.Metric = strings.Join(c.metrics, ",")
	main := ""
	if len(c.metrics) == 1 {
		main = c.metrics[0]
		res.Value = m[main]
	}
	out := c.eval(m, baseline)
	if out.hasBound {
		res.Threshold = out.threshold
	}
	switch {
	case len(out.missing) > 0:
		res.Missing = true
		res.Value = 0
		what := strings.Join(out.missing, ", ")
		if r.AllowMissing {
			res.Passed = true
			res.Message = fmt.Sprintf("%s: %s not measured; passed because allow_missing is set", r.Expr, what)
			return res, false
		}
		res.Message = fmt.Sprintf("%s: %s not measured; guard with has_metric(\"…\")/has_baseline(\"…\") or set allow_missing: true if that is acceptable", r.Expr, what)
		return res, blocks
	case out.err != nil:
		res.Message = fmt.Sprintf("%s: evaluation failed: %v", r.Expr, out.err)
		return res, blocks
	}
	res.Passed = out.passed
	verdict := "holds"
	if !res.Passed {
		verdict = "does not hold"
	}
	res.Message = fmt.Sprintf("%s %s", r.Expr, verdict)
	if main != "" {
		if _, ok := m[main]; ok {
			detail := fmt.Sprintf("%s = %s", main, fmtNum(res.Value))
			if out.hasBound {
				detail += ", bound " + fmtNum(res.Threshold)
			}
			res.Message += " (" + detail + ")"
		}
	}
	return res, blocks && !res.Passed
}

func opOf(r Rule) (string, float64) {
	switch {
	case r.Max != nil && r.Min != nil:
		return "between", *r.Max
	case r.Max != nil:
		return "<=", *r.Max
	default:
		return ">=", *r.Min
	}
}

func checkThreshold(r Rule, val float64) (passed bool, op string, threshold float64, msg string) {
	if r.Max != nil && val > *r.Max {
		return false, "<=", *r.Max, fmt.Sprintf("%s = %s > max %s", r.Metric, fmtNum(val), fmtNum(*r.Max))
	}
	if r.Min != nil && val < *r.Min {
		return false, ">=", *r.Min, fmt.Sprintf("%s = %s < min %s", r.Metric, fmtNum(val), fmtNum(*r.Min))
	}
	op, threshold = opOf(r)
	switch op {
	case "between":
		msg = fmt.Sprintf("%s = %s within [%s, %s]", r.Metric, fmtNum(val), fmtNum(*r.Min), fmtNum(*r.Max))
	default:
		msg = fmt.Sprintf("%s = %s %s %s", r.Metric, fmtNum(val), op, fmtNum(threshold))
	}
	return true, op, threshold, msg
}

// fmtNum keeps messages short and stable: 4 significant digits.
func fmtNum(f float64) string { return fmt.Sprintf("%.4g", f) }
