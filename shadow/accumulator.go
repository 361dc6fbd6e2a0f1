package shadow

import "slices"

// Accumulator folds PairRows into a Summary. It keeps every successful
// latency (8 bytes per call) so that percentiles and the Mann-Whitney test
// are exact and shards can be merged without approximation. The zero value
// is ready to use; it is not safe for concurrent use (give each shard its
// own and Merge them).
type Accumulator struct {
	requests, candErrors, incErrors int

	compared                  int
	exact                     int
	simSum, rougeSum          float64
	noiseCompared, noiseExact int
	noiseSimSum, noiseRouge   float64

	incLat, candLat []float64
}

// NewAccumulator returns an empty Accumulator (the zero value works too).
func NewAccumulator() *Accumulator { return &Accumulator{} }

// Add counts one row.
func (a *Accumulator) Add(r PairRow) {
	a.requests++
	incOK := r.IncumbentStatus == StatusOK
	candOK := r.CandidateStatus == StatusOK
	if !candOK {
		a.candErrors++
	}
	if !incOK {
		a.incErrors++
	}
	if incOK {
		a.incLat = append(a.incLat, r.IncumbentLatencyMS)
	}
	if candOK {
		a.candLat = append(a.candLat, r.CandidateLatencyMS)
	}
	if incOK && candOK {
		a.compared++
		if r.ExactMatch {
			a.exact++
		}
		a.simSum += r.Similarity
		a.rougeSum += r.RougeL
	}
	if incOK && r.IncumbentRepeatStatus == StatusOK {
		a.noiseCompared++
		if r.NoiseExactMatch {
			a.noiseExact++
		}
		a.noiseSimSum += r.NoiseSimilarity
		a.noiseRouge += r.NoiseRougeL
	}
}

// Merge adds everything o has counted; o is left unchanged.
func (a *Accumulator) Merge(o *Accumulator) {
	if o == nil {
		return
	}
	a.requests += o.requests
	a.candErrors += o.candErrors
	a.incErrors += o.incErrors
	a.compared += o.compared
	a.exact += o.exact
	a.simSum += o.simSum
	a.rougeSum += o.rougeSum
	a.noiseCompared += o.noiseCompared
	a.noiseExact += o.noiseExact
	a.noiseSimSum += o.noiseSimSum
	a.noiseRouge += o.noiseRouge
	a.incLat = append(a.incLat, o.incLat...)
	a.candLat = append(a.candLat, o.candLat...)
}

// Summary computes the rates, nearest-rank percentiles (Percentile) and the
// Mann-Whitney U test of candidate vs incumbent latency. Ratios without a
// denominator are 0; Compared and NoiseCompared say whether they mean anything.
func (a *Accumulator) Summary() Summary {
	s := Summary{
		Requests:        a.requests,
		Errors:          a.candErrors,
		IncumbentErrors: a.incErrors,
		Compared:        a.compared,
		NoiseCompared:   a.noiseCompared,
	}
	if a.compared > 0 {
		n := float64(a.compared)
		s.ExactAgreement = float64(a.exact) / n
		s.MeanSimilarity = a.simSum / n
		s.MeanRougeL = a.rougeSum / n
	}
	if a.noiseCompared > 0 {
		n := float64(a.noiseCompared)
		s.NoiseFloorAgreement = float64(a.noiseExact) / n
		s.NoiseFloorSimilarity = a.noiseSimSum / n
		s.NoiseFloorRougeL = a.noiseRouge / n
	}
	inc, cand := slices.Clone(a.incLat), slices.Clone(a.candLat)
	slices.Sort(inc)
	slices.Sort(cand)
	s.IncumbentP50MS = percentileSorted(inc, 50)
	s.IncumbentP95MS = percentileSorted(inc, 95)
	s.IncumbentP99MS = percentileSorted(inc, 99)
	s.CandidateP50MS = percentileSorted(cand, 50)
	s.CandidateP95MS = percentileSorted(cand, 95)
	s.CandidateP99MS = percentileSorted(cand, 99)
	if s.IncumbentP95MS > 0 {
		s.LatencyP95Ratio = s.CandidateP95MS / s.IncumbentP95MS
	}
	s.LatencyMannWhitneyU, s.LatencyMannWhitneyP = MannWhitneyU(cand, inc)
	return s
}
