//go:build race

package stress

// The race detector slows the harness several-fold, which moves the knees
// it measures; the timing test skips under it.
const raceEnabled = true
