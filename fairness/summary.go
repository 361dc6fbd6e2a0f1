package fairness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Summary is what a policy gate reads: flat headline metrics, their
// bootstrap intervals, the convention behind each metric, and warnings.
type Summary struct {
	// Metrics holds the headline metrics by name (see the package doc for
	// the names). An undefined metric is absent, never NaN or a silent 0.
	Metrics map[string]float64
	// Intervals holds the bootstrap interval of each bootstrapped metric.
	Intervals map[string]Interval
	// Conventions maps a metric's base name (the part after "fairness.")
	// to the convention it follows (fairlearn, AIF360, aequitas, TFMA).
	Conventions map[string]string
	// Warnings explain every omitted metric, small group and 0 ratio.
	Warnings []string
}

// Interval is a percentile-bootstrap interval (fairlearn MetricFrame
// n_boot/ci_quantiles): Values[i] is the Quantiles[i] quantile of the
// metric over the Replicates resamples in which it was defined.
type Interval struct {
	Quantiles  []float64
	Values     []float64
	Replicates int
}

// Bootstrap configures percentile-bootstrap intervals over rows.
type Bootstrap struct {
	// NBoot is the number of resamples; 0 turns the bootstrap off.
	NBoot int
	// Quantiles defaults to {0.025, 0.975}, a 95% interval.
	Quantiles []float64
	// Seed fixes the resamples: equal seeds give equal intervals.
	Seed uint64
}

func (b Bootstrap) validate() error {
	if b.NBoot < 0 {
		return fmt.Errorf("fairness: Bootstrap.NBoot = %d: want ≥ 0 (0 turns the bootstrap off)", b.NBoot)
	}
	for _, q := range b.Quantiles {
		if !(q >= 0 && q <= 1) {
			return fmt.Errorf("fairness: Bootstrap.Quantiles: %v is outside [0, 1]", q)
		}
	}
	return nil
}

func (b Bootstrap) quantiles() []float64 {
	if len(b.Quantiles) == 0 {
		return []float64{0.025, 0.975}
	}
	return b.Quantiles
}

func newSummary() Summary {
	return Summary{Metrics: map[string]float64{}, Intervals: map[string]Interval{}, Conventions: map[string]string{}}
}

// Flat returns Metrics plus, for each bootstrapped metric, "<name>.ci_lo"
// and "<name>.ci_hi" (its lowest and highest configured quantile): the map
// a policy gate evaluates.
func (s Summary) Flat() map[string]float64 {
	out := make(map[string]float64, len(s.Metrics)+2*len(s.Intervals))
	for k, v := range s.Metrics {
		out[k] = v
	}
	for k, iv := range s.Intervals {
		if len(iv.Values) == 0 {
			continue
		}
		out[k+".ci_lo"] = iv.Values[0]
		out[k+".ci_hi"] = iv.Values[len(iv.Values)-1]
	}
	return out
}

// noCI are counts and flags: a bootstrap interval of them means nothing.
var noCI = map[string]bool{"groups": true, "groups_below_min_size": true, "disparity_tolerance_pass": true}

func baseName(metric string) string {
	return strings.SplitN(strings.TrimPrefix(metric, "fairness."), ".", 2)[0]
}

// bootstrap resamples n rows with replacement NBoot times, recomputes stat on
// each resample, and stores percentile intervals for the metrics of s.
func (s *Summary) bootstrap(ctx context.Context, n int, b Bootstrap, stat func(idx []int) map[string]float64) error {
	rng := rand.New(rand.NewPCG(b.Seed, 0x6661697221)) // stream constant: "fair!"
	draws := map[string][]float64{}
	idx := make([]int, n)
	for r := range b.NBoot {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fairness: bootstrap stopped after %d of %d resamples: %w", r, b.NBoot, err)
		}
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		for k, v := range stat(idx) {
			if _, ok := s.Metrics[k]; ok && !noCI[baseName(k)] {
				draws[k] = append(draws[k], v)
			}
		}
	}
	qs := b.quantiles()
	for _, k := range sortedKeys(draws) {
		d := draws[k]
		slices.Sort(d)
		iv := Interval{Quantiles: slices.Clone(qs), Replicates: len(d)}
		for _, q := range qs {
			iv.Values = append(iv.Values, quantile(d, q))
		}
		s.Intervals[k] = iv
		if len(d) < b.NBoot {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: defined in %d of %d bootstrap resamples; its interval uses those only", k, len(d), b.NBoot))
		}
	}
	for _, k := range sortedKeys(s.Metrics) {
		if _, ok := draws[k]; !ok && !noCI[baseName(k)] {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: undefined in every bootstrap resample: no interval", k))
		}
	}
	return nil
}

// quantile of sorted data with linear interpolation between order
// statistics (numpy's default "linear" method, which fairlearn uses).
func quantile(sorted []float64, q float64) float64 {
	h := q * float64(len(sorted)-1)
	lo := int(h)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}
