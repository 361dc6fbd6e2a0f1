package dp

import (
	"context"
	"math"
	"testing"
)

func FuzzEpsilon(f *testing.F) {
	f.Add(0.01, 1.0, 300, 1e-5)
	f.Add(1.0, 0.1, 1, 0.5)
	f.Fuzz(func(t *testing.T, q, sigma float64, steps int, delta float64) {
		if steps > 1e6 {
			return
		}
		eps, order, err := EpsilonWith(q, sigma, steps, delta, []int{2, 3, 8, 32, 128}, Balle2020)
		if err == nil && (eps < 0 || math.IsNaN(eps) || order < 2) {
			t.Fatalf("ε(%g, %g, %d, %g) = %g at %d", q, sigma, steps, delta, eps, order)
		}
	})
}

func FuzzTrain(f *testing.F) {
	f.Add(1.0, -2.0, 0.5, 3.0, 1, 0, 0.5, 1.0)
	f.Fuzz(func(t *testing.T, a, b, c, d float64, y0, y1 int, q, sigma float64) {
		X := [][]float64{{a, b}, {c, d}}
		m, _, err := Train(context.Background(), X, []int{y0, y1}, Options{
			ClipNorm: 1, NoiseMultiplier: sigma, SampleRate: q, Steps: 5, LearningRate: 0.1, Delta: 1e-5})
		if err != nil {
			return
		}
		// Clipping bounds every step, so parameters stay finite.
		for _, w := range append(m.Weights, m.Bias) {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				t.Fatalf("non-finite parameter %v", m)
			}
		}
	})
}
