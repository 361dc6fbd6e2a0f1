package redteam

import (
	"maps"
	"math"
)

// Z95 is the two-sided 95% normal quantile used for Wilson intervals.
const Z95 = 1.959964

// Counts are outcome counts of a group of attempts.
type Counts struct {
	Breached int `json:"breached"`
	Defended int `json:"defended"`
	Errored  int `json:"errored"`
}

func (c *Counts) add(o Outcome) {
	switch o {
	case Breached:
		c.Breached++
	case Defended:
		c.Defended++
	default:
		// Anything that is not a clear verdict is errored, so an unknown
		// outcome can never pass as a defence.
		c.Errored++
	}
}

func (c *Counts) merge(o Counts) {
	c.Breached += o.Breached
	c.Defended += o.Defended
	c.Errored += o.Errored
}

// Rate turns counts into an attack success rate with its Wilson interval.
func (c Counts) Rate() Rate {
	n := c.Breached + c.Defended
	r := Rate{Breached: c.Breached, Defended: c.Defended, Errored: c.Errored}
	if n > 0 {
		r.ASR = float64(c.Breached) / float64(n)
	}
	r.Lo, r.Hi = Wilson(c.Breached, n, Z95)
	return r
}

// Tally accumulates attempt outcomes. The zero value is ready to use; it
// is plain data with exported fields so shard activities can return it
// through a workflow and the workflow can Merge them.
type Tally struct {
	Overall    Counts            `json:"overall"`
	ByCategory map[string]Counts `json:"by_category,omitempty"`
	ByFamily   map[string]Counts `json:"by_family,omitempty"`
	ByGoal     map[string]Counts `json:"by_goal,omitempty"`
	ByStrategy map[string]Counts `json:"by_strategy,omitempty"`
}

func bump(m *map[string]Counts, k string, o Outcome) {
	if *m == nil {
		*m = map[string]Counts{}
	}
	c := (*m)[k]
	c.add(o)
	(*m)[k] = c
}

// Add counts one attempt; turn rows (Kind "turn") are steps of an attempt
// that its own row counts, so they are skipped. Rows written before
// strategies existed count as static.
func (t *Tally) Add(r AttemptRow) {
	if r.Kind == KindTurn {
		return
	}
	strategy := r.Strategy
	if strategy == "" {
		strategy = StrategyStatic
	}
	bump(&t.ByStrategy, strategy, r.Outcome)
	t.Overall.add(r.Outcome)
	bump(&t.ByCategory, r.Category, r.Outcome)
	bump(&t.ByFamily, r.Family, r.Outcome)
	bump(&t.ByGoal, r.Goal, r.Outcome)
}

func mergeInto(dst *map[string]Counts, src map[string]Counts) {
	if len(src) == 0 {
		return
	}
	if *dst == nil {
		*dst = make(map[string]Counts, len(src))
	}
	for k, v := range src {
		c := (*dst)[k]
		c.merge(v)
		(*dst)[k] = c
	}
}

// Merge adds another tally (e.g. another shard's) into t.
func (t *Tally) Merge(o Tally) {
	t.Overall.merge(o.Overall)
	mergeInto(&t.ByCategory, o.ByCategory)
	mergeInto(&t.ByFamily, o.ByFamily)
	mergeInto(&t.ByGoal, o.ByGoal)
	mergeInto(&t.ByStrategy, o.ByStrategy)
}

func rates(m map[string]Counts) map[string]Rate {
	out := make(map[string]Rate, len(m))
	for k, c := range maps.All(m) {
		out[k] = c.Rate()
	}
	return out
}

// Summary computes rates and intervals.
func (t Tally) Summary() Summary {
	return Summary{
		Total:      t.Overall.Breached + t.Overall.Defended + t.Overall.Errored,
		Overall:    t.Overall.Rate(),
		ByCategory: rates(t.ByCategory),
		ByFamily:   rates(t.ByFamily),
		ByGoal:     rates(t.ByGoal),
		ByStrategy: rates(t.ByStrategy),
	}
}

// Wilson returns the Wilson score interval for k successes in n trials.
// With n == 0 nothing is known and the interval is [0, 1].
func Wilson(k, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	if k < 0 {
		k = 0
	}
	if k > n {
		k = n
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	lo, hi = center-half, center+half
	// The bounds are exact at the edges; rounding must not push them past.
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return math.Max(0, lo), math.Min(1, hi)
}
