package gate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
)

// Names visible to an expression rule.
const (
	// VarMetrics is the release's metrics, map(string, double).
	VarMetrics = "m"
	// VarBaseline is the last released version's metrics (empty when none).
	VarBaseline = "baseline"
)

// Limits on expression rules. A policy is user input evaluated inside the
// release workflow's activity: these keep a hostile or careless expression
// from stalling it (CEL is not Turing complete, but nested comprehensions
// over literals can still be costly).
const (
	maxExprBytes     = 4 << 10
	maxExprRecursion = 64
	exprCostLimit    = 1_000_000
)

// exprEnv builds the CEL environment lazily, at most once per policy
// operation, so that threshold-only policies never pay for it and no
// package-level state is shared between callers.
type exprEnv struct {
	env *cel.Env
	err error
	ok  bool
}

func (e *exprEnv) get() (*cel.Env, error) {
	if !e.ok {
		e.env, e.err = newCELEnv()
		e.ok = true
	}
	return e.env, e.err
}

func newCELEnv() (*cel.Env, error) {
	metrics := cel.MapType(cel.StringType, cel.DoubleType)
	env, err := cel.NewEnv(
		cel.Variable(VarMetrics, metrics),
		cel.Variable(VarBaseline, metrics),
		// Macros rather than functions: a function cannot see the
		// activation, and expanding to `"x" in m` keeps the key a literal
		// the load-time check below can verify.
		cel.Macros(
			cel.GlobalMacro("has_metric", 1, inMacro(VarMetrics),
				cel.MacroDocs(`has_metric("name") is true when the release measured the metric`)),
			cel.GlobalMacro("has_baseline", 1, inMacro(VarBaseline),
				cel.MacroDocs(`has_baseline("name") is true when the baseline release measured the metric`)),
		),
		cel.ParserExpressionSizeLimit(maxExprBytes),
		cel.ParserRecursionLimit(maxExprRecursion),
	)
	if err != nil {
		return nil, fmt.Errorf("gate: build expression environment: %w", err)
	}
	return env, nil
}

func inMacro(variable string) cel.MacroFactory {
	return func(eh cel.MacroExprFactory, _ celast.Expr, args []celast.Expr) (celast.Expr, *common.Error) {
		return eh.NewCall(operators.In, args[0], eh.NewIdent(variable)), nil
	}
}

// compiledExpr is a checked expression rule and what the verdict needs to
// explain it.
type compiledExpr struct {
	prg cel.Program
	// metrics and baseline are the distinct metric names used as keys into
	// m and baseline, in order of first appearance.
	metrics, baseline []string
	// bound is the other side of the one comparison against the rule's
	// single metric (m["x"] <= bound), compiled on its own so the verdict
	// can report the threshold; nil when there is no such single comparison.
	bound cel.Program
}

// allMetrics is every metric name the expression reads, m's then baseline's.
func (c *compiledExpr) allMetrics() []string {
	out := slices.Clone(c.metrics)
	for _, n := range c.baseline {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// compileExpr parses and type-checks src, requires a bool result, and
// checks every key into m and baseline against the metric vocabulary.
func compileExpr(env *cel.Env, src string) (*compiledExpr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty; write a boolean CEL expression such as m[\"adversarial.asr_upper\"] < 0.05")
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%s; fix the expression (CEL syntax: https://cel.dev)", issueText(iss))
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("evaluates to %s, not bool; write a condition that must hold, e.g. m[\"adversarial.asr\"] <= 0.02",
			cel.FormatCELType(checked.OutputType()))
	}
	c := &compiledExpr{}
	native := checked.NativeRep()
	if err := c.collectKeys(native.Expr()); err != nil {
		return nil, err
	}
	prg, err := env.Program(checked, cel.CostLimit(exprCostLimit))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	c.prg = prg
	if len(c.metrics) == 1 {
		c.bound = boundProgram(env, native, c.metrics[0])
	}
	return c, nil
}

// issueText renders CEL issues on one line ("line:col: message; …") so they
// fit the one-line-per-problem style of Validate.
func issueText(iss *cel.Issues) string {
	var parts []string
	for _, e := range iss.Errors() {
		parts = append(parts, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
	}
	return strings.Join(parts, "; ")
}

// collectKeys walks the checked AST. m and baseline may only be used as
// m["<literal>"] or "<literal>" in m (has_metric expands to the latter):
// anything else (a computed key, iteration, m.field) would let a name the
// vocabulary does not know through, which is exactly what must be refused
// at load.
func (c *compiledExpr) collectKeys(root celast.Expr) error {
	var errs []error
	allowed := map[int64]bool{}
	isVar := func(e celast.Expr) (string, bool) {
		if e.Kind() != celast.IdentKind {
			return "", false
		}
		n := e.AsIdent()
		return n, n == VarMetrics || n == VarBaseline
	}
	record := func(v string, key celast.Expr) {
		lit, ok := literalString(key)
		if !ok {
			errs = append(errs, fmt.Errorf("keys into %s must be string literals so they can be checked at load; write %s[\"<metric>\"]", v, v))
			return
		}
		if err := ValidateMetric(lit); err != nil {
			errs = append(errs, fmt.Errorf("%s[%q]: %w", v, lit, err))
			return
		}
		dst := &c.metrics
		if v == VarBaseline {
			dst = &c.baseline
		}
		if !slices.Contains(*dst, lit) {
			*dst = append(*dst, lit)
		}
	}
	celast.PreOrderVisit(root, celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			call := e.AsCall()
			args := call.Args()
			if len(args) != 2 || call.IsMemberFunction() {
				return
			}
			switch call.FunctionName() {
			case operators.Index:
				if v, ok := isVar(args[0]); ok {
					allowed[args[0].ID()] = true
					record(v, args[1])
				}
			case operators.In:
				if v, ok := isVar(args[1]); ok {
					allowed[args[1].ID()] = true
					record(v, args[0])
				}
			}
		case celast.ComprehensionKind:
			comp := e.AsComprehension()
			for _, iv := range []string{comp.IterVar(), comp.IterVar2()} {
				if iv == VarMetrics || iv == VarBaseline {
					errs = append(errs, fmt.Errorf("iteration variable %q hides the %s map; pick another name", iv, iv))
				}
			}
		}
	}))
	celast.PreOrderVisit(root, celast.NewExprVisitor(func(e celast.Expr) {
		if v, ok := isVar(e); ok && !allowed[e.ID()] {
			errs = append(errs, fmt.Errorf("%s is used other than as %s[\"<metric>\"] or has_metric(\"<metric>\"); only literal keys are allowed so unknown names are caught at load", v, v))
		}
	}))
	return errors.Join(dedupErrs(errs)...)
}

func literalString(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// dedupErrs keeps the first of equal messages: m used twice the wrong way
// is one problem to fix, not two.
func dedupErrs(errs []error) []error {
	var out []error
	seen := map[string]bool{}
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// boundProgram finds the single comparison m["metric"] <op> X (or X <op>
// m["metric"]) where X does not read m, and compiles X so that its value can
// be reported as the rule's threshold. X may read baseline, which is how a
// regression rule reports "baseline + 0.02". Anything less regular reports
// no threshold rather than a misleading one.
func boundProgram(env *cel.Env, a *celast.AST, metric string) cel.Program {
	var sides []celast.Expr
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		switch call.FunctionName() {
		case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		default:
			return
		}
		args := call.Args()
		if len(args) != 2 {
			return
		}
		for i, j := range []int{1, 0} {
			if isMetricIndex(args[i], metric) && !readsVar(args[j], VarMetrics) {
				sides = append(sides, args[j])
			}
		}
	}))
	if len(sides) != 1 {
		return nil
	}
	src, err := parser.Unparse(sides[0], a.SourceInfo())
	if err != nil {
		return nil
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil || !checked.OutputType().IsExactType(types.DoubleType) {
		return nil
	}
	prg, err := env.Program(checked, cel.CostLimit(exprCostLimit))
	if err != nil {
		return nil
	}
	return prg
}

func isMetricIndex(e celast.Expr, metric string) bool {
	if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != operators.Index {
		return false
	}
	args := e.AsCall().Args()
	if len(args) != 2 || args[0].Kind() != celast.IdentKind || args[0].AsIdent() != VarMetrics {
		return false
	}
	lit, ok := literalString(args[1])
	return ok && lit == metric
}

func readsVar(e celast.Expr, name string) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() == celast.IdentKind && x.AsIdent() == name {
			found = true
		}
	}))
	return found
}

// exprOutcome is what one evaluation of an expression rule produced.
type exprOutcome struct {
	passed    bool
	missing   []string // metric names (baseline ones as "baseline[name]") absent when evaluation failed
	err       error    // evaluation failed for another reason
	threshold float64
	hasBound  bool
}

func (c *compiledExpr) eval(m, baseline Metrics) exprOutcome {
	act := map[string]any{VarMetrics: map[string]float64(m), VarBaseline: map[string]float64(baseline)}
	if m == nil {
		act[VarMetrics] = map[string]float64{}
	}
	if baseline == nil {
		act[VarBaseline] = map[string]float64{}
	}
	var o exprOutcome
	if c.bound != nil {
		if v, _, err := c.bound.Eval(act); err == nil {
			if f, ok := v.Value().(float64); ok && !math.IsNaN(f) {
				o.threshold, o.hasBound = f, true
			}
		}
	}
	out, _, err := c.prg.Eval(act)
	if err != nil {
		// A failed lookup is the only way a checked expression over
		// map(string, double) fails at run time short of the cost limit;
		// name what was absent so the message says what to measure or guard.
		for _, n := range c.metrics {
			if _, ok := m[n]; !ok {
				o.missing = append(o.missing, n)
			}
		}
		for _, n := range c.baseline {
			if _, ok := baseline[n]; !ok {
				o.missing = append(o.missing, VarBaseline+"["+n+"]")
			}
		}
		if len(o.missing) == 0 || !strings.Contains(err.Error(), "no such key") {
			o.missing = nil
			o.err = err
		}
		return o
	}
	b, ok := out.Value().(bool)
	if !ok {
		o.err = fmt.Errorf("result %v is not a bool", out)
		return o
	}
	o.passed = b
	return o
}
