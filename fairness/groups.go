package fairness

import (
	"fmt"
	"slices"
	"strings"
)

// setSep joins attribute names into a set name ("race&sex") and values into
// an intersectional group label ("black&female").
const setSep = "&"

// DefaultMinGroupSize is the minimum group size used when
// Config.MinGroupSize is 0. Thirty rows keep a rate's standard error under
// about 0.09; groups below it are listed, not measured.
const DefaultMinGroupSize = 30

// grouping assigns each row of a frame to one observed group of an
// attribute set (fairlearn's observed cartesian product: only combinations
// that occur become groups).
type grouping struct {
	attrs  []string
	name   string   // attrs joined by setSep
	labels []string // group labels, sorted
	of     []int    // group index per row
}

func newGrouping(attrs []string, protected map[string][]string, n int) (*grouping, error) {
	if len(attrs) == 0 {
		return nil, fmt.Errorf("fairness: an attribute set is empty: list at least one protected column")
	}
	seen := map[string]bool{}
	for _, a := range attrs {
		if _, ok := protected[a]; !ok {
			return nil, fmt.Errorf("fairness: attribute set %v: no protected column %q (have %v)", attrs, a, sortedKeys(protected))
		}
		if seen[a] {
			return nil, fmt.Errorf("fairness: attribute set %v names %q twice", attrs, a)
		}
		seen[a] = true
	}
	// Keys use a NUL separator so that values containing setSep cannot
	// merge two different combinations into one group.
	keyOf := make([]string, n)
	labelOf := map[string]string{}
	parts := make([]string, len(attrs))
	for i := range n {
		for j, a := range attrs {
			parts[j] = protected[a][i]
		}
		k := strings.Join(parts, "\x00")
		keyOf[i] = k
		if _, ok := labelOf[k]; !ok {
			labelOf[k] = strings.Join(parts, setSep)
		}
	}
	keys := sortedKeys(labelOf)
	index := make(map[string]int, len(keys))
	g := &grouping{attrs: slices.Clone(attrs), name: strings.Join(attrs, setSep), of: make([]int, n)}
	for i, k := range keys {
		index[k] = i
		g.labels = append(g.labels, labelOf[k])
	}
	for i, k := range keyOf {
		g.of[i] = index[k]
	}
	return g, nil
}

// attributeSets returns the configured sets, or each protected column on
// its own (sorted by name) when none is configured.
func attributeSets(cfg [][]string, protected map[string][]string) [][]string {
	if len(cfg) > 0 {
		return cfg
	}
	var out [][]string
	for _, a := range sortedKeys(protected) {
		out = append(out, []string{a})
	}
	return out
}

func minSize(cfg int) int {
	if cfg <= 0 {
		return DefaultMinGroupSize
	}
	return cfg
}
