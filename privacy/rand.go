package privacy

import "math/rand/v2"

// newRand is the one seeded generator of the package: PCG with the seed and
// a fixed stream, so every split and shadow draw is reproducible.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5a4d6761746550))
}
