package robustness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// HSJConfig configures HopSkipJump. Zero fields take ART's defaults.
type HSJConfig struct {
	MaxIter  int // 0 means 50
	MaxEval  int // most queries of one gradient estimate; 0 means 10,000
	InitEval int // queries of the first gradient estimate; 0 means 100
	InitSize int // random draws to find a starting adversarial; 0 means 100
	// Lo and Hi bound the input space; both 0 means [0, 1].
	Lo, Hi float64
	// MaxPerturbation, when > 0, is the largest relative L2 perturbation
	// ‖x_adv − x‖₂/‖x‖₂ that counts as a success; a larger one is reported
	// (Example.Perturbation) as a failure. 0 counts every adversarial found.
	MaxPerturbation float64
	Seed            uint64
	// QueryBudget bounds the queries per input (0: unlimited); when it
	// runs out the best adversarial so far is kept.
	QueryBudget int
}

func (c HSJConfig) normalize() (HSJConfig, error) {
	def := func(v *int, d int, name string) error {
		if *v < 0 {
			return fmt.Errorf("robustness: HSJConfig.%s = %d: want > 0 (0 means %d)", name, *v, d)
		}
		if *v == 0 {
			*v = d
		}
		return nil
	}
	for _, f := range []struct {
		v    *int
		d    int
		name string
	}{{&c.MaxIter, 50, "MaxIter"}, {&c.MaxEval, 10000, "MaxEval"}, {&c.InitEval, 100, "InitEval"}, {&c.InitSize, 100, "InitSize"}} {
		if err := def(f.v, f.d, f.name); err != nil {
			return c, err
		}
	}
	if c.Lo == 0 && c.Hi == 0 {
		c.Hi = 1
	}
	if !(c.Lo < c.Hi) {
		return c, fmt.Errorf("robustness: HSJConfig range [%v, %v]: want Lo < Hi", c.Lo, c.Hi)
	}
	if c.MaxPerturbation < 0 {
		return c, fmt.Errorf("robustness: HSJConfig.MaxPerturbation = %v: want ≥ 0", c.MaxPerturbation)
	}
	return c, nil
}

// HopSkipJump is the label-only HopSkipJump attack (Chen, Jordan and
// Wainwright 2020) in ART's untargeted L2 form: find an adversarial start by
// uniform random draws, then repeat binary search to the decision boundary,
// Monte-Carlo gradient-direction estimate from labels, and a geometric step
// search. It reports the minimal relative perturbation ‖x_adv − x‖₂/‖x‖₂ it
// found. Labels may be nil (attack the clean predictions).
func HopSkipJump(ctx context.Context, clf Classifier, inputs [][]float64, labels []int, cfg HSJConfig) (*AttackResult, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	fn := func(ctx context.Context, q *querier, x []float64, label int, rng *rand.Rand) (found, error) {
		h := &hsj{cfg: cfg, q: q, x: x, label: label, rng: rng, d: len(x)}
		f, err := h.run(ctx)
		if f.adv != nil {
			f.success = cfg.MaxPerturbation == 0 || relL2(x, f.adv) <= cfg.MaxPerturbation
		}
		return f, err
	}
	return runAttack(ctx, "hopskipjump", clf, inputs, labels, cfg.QueryBudget, cfg.Seed, fn)
}

type hsj struct {
	cfg   HSJConfig
	q     *querier
	x     []float64
	label int
	rng   *rand.Rand
	d     int
	best  found // best adversarial so far, returned even when a budget ends the attack
}

// adversarial reports for each input whether its label differs from x's.
func (h *hsj) adversarial(ctx context.Context, batch [][]float64) ([]bool, []int, error) {
	ls, err := h.q.labels(ctx, batch)
	if err != nil {
		return nil, nil, err
	}
	out := make([]bool, len(ls))
	for i, l := range ls {
		out[i] = l != h.label
	}
	return out, ls, nil
}

func (h *hsj) keep(adv []float64, pred int) {
	if h.best.adv == nil || l2(adv, h.x) < l2(h.best.adv, h.x) {
		h.best = found{adv: adv, pred: pred}
	}
}

func (h *hsj) run(ctx context.Context) (found, error) {
	cur, err := h.start(ctx)
	if err != nil || cur == nil {
		return h.best, err
	}
	// θ = γ/d^{3/2} with γ = 1 (ART, L2): the binary-search tolerance.
	theta := 1 / (float64(h.d) * math.Sqrt(float64(h.d)))
	if cur, err = h.boundary(ctx, cur, theta); err != nil {
		return h.best, err
	}
	for t := 1; t <= h.cfg.MaxIter; t++ {
		dist := l2(cur, h.x)
		delta := math.Sqrt(float64(h.d)) * theta * dist
		if t == 1 {
			delta = 0.1 * (h.cfg.Hi - h.cfg.Lo)
		}
		n := min(int(float64(h.cfg.InitEval)*math.Sqrt(float64(t))), h.cfg.MaxEval)
		grad, err := h.gradient(ctx, cur, delta, n)
		if err != nil {
			return h.best, err
		}
		// Geometric step search: halve until the step stays adversarial.
		eps := 2 * dist / math.Sqrt(float64(t))
		var next []float64
		for range 30 {
			cand := make([]float64, h.d)
			for i := range cand {
				cand[i] = clip(cur[i]+eps*grad[i], h.cfg.Lo, h.cfg.Hi)
			}
			adv, ls, err := h.adversarial(ctx, [][]float64{cand})
			if err != nil {
				return h.best, err
			}
			if adv[0] {
				h.keep(cand, ls[0])
				next = cand
				break
			}
			eps /= 2
		}
		if next == nil {
			break // no adversarial step: the estimate is exhausted
		}
		if cur, err = h.boundary(ctx, next, theta); err != nil {
			return h.best, err
		}
	}
	return h.best, nil
}

// start draws uniform random inputs until one is adversarial (ART's
// initialisation); nil when none of InitSize draws is.
func (h *hsj) start(ctx context.Context) ([]float64, error) {
	for range h.cfg.InitSize {
		r := make([]float64, h.d)
		for i := range r {
			r[i] = h.cfg.Lo + h.rng.Float64()*(h.cfg.Hi-h.cfg.Lo)
		}
		adv, ls, err := h.adversarial(ctx, [][]float64{r})
		if err != nil {
			return nil, err
		}
		if adv[0] {
			h.keep(r, ls[0])
			return r, nil
		}
	}
	return nil, nil
}

// boundary binary-searches the segment from x to the adversarial adv until
// it is shorter than θ (relative), returning the adversarial end.
func (h *hsj) boundary(ctx context.Context, adv []float64, theta float64) ([]float64, error) {
	lo, hi := 0.0, 1.0
	out := adv
	for hi-lo > theta {
		mid := (lo + hi) / 2
		blend := make([]float64, h.d)
		for i := range blend {
			blend[i] = (1-mid)*h.x[i] + mid*adv[i]
		}
		a, ls, err := h.adversarial(ctx, [][]float64{blend})
		if err != nil {
			return out, err
		}
		if a[0] {
			hi, out = mid, blend
			h.keep(blend, ls[0])
		} else {
			lo = mid
		}
	}
	return out, nil
}

// gradient estimates the boundary's normal at cur from n labelled random
// unit directions (one Predict call), with ART's baseline correction.
func (h *hsj) gradient(ctx context.Context, cur []float64, delta float64, n int) ([]float64, error) {
	us := make([][]float64, n)
	batch := make([][]float64, n)
	for b := range n {
		u := make([]float64, h.d)
		var norm float64
		for i := range u {
			u[i] = h.rng.NormFloat64()
			norm += u[i] * u[i]
		}
		norm = math.Sqrt(norm)
		p := make([]float64, h.d)
		for i := range u {
			p[i] = clip(cur[i]+delta*u[i]/norm, h.cfg.Lo, h.cfg.Hi)
			u[i] = (p[i] - cur[i]) / delta // the direction actually taken after clipping
		}
		us[b], batch[b] = u, p
	}
	adv, _, err := h.adversarial(ctx, batch)
	if err != nil {
		return nil, err
	}
	phi := make([]float64, n)
	var mean float64
	for b, a := range adv {
		phi[b] = -1
		if a {
			phi[b] = 1
		}
		mean += phi[b]
	}
	mean /= float64(n)
	grad := make([]float64, h.d)
	for b, u := range us {
		w := phi[b] - mean
		if mean == 1 || mean == -1 {
			w = mean // all on one side: move along the mean direction
		}
		for i := range grad {
			grad[i] += w * u[i] / float64(n)
		}
	}
	var norm float64
	for _, g := range grad {
		norm += g * g
	}
	if norm = math.Sqrt(norm); norm > 0 {
		for i := range grad {
			grad[i] /= norm
		}
	}
	return grad, nil
}

func l2(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Sqrt(s)
}
