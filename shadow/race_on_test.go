//go:build race

package shadow

// raceEnabled lowers the load test's rate under the race detector.
const raceEnabled = true
