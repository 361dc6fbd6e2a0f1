package sandbox

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// NetProfile simulates a network between the harness and the model. The
// kernel here has no netem, so the relay does it in user space: a delay
// before each forwarded request and a byte rate on each direction.
//
// The delay of one request is Latency + U[0, Jitter), where Latency is
// itself drawn from a lognormal with median Latency and shape Sigma when
// Sigma > 0 (heavy right tail, as measured RTTs have).
type NetProfile struct {
	Name string `json:"name"`
	// Latency is the fixed delay, or the median of the lognormal.
	Latency time.Duration `json:"latency"`
	// Jitter adds a uniform delay in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// Sigma is the lognormal's shape (std. dev. of ln delay); 0 keeps
	// Latency fixed.
	Sigma float64 `json:"sigma,omitempty"`
	// BytesPerSecond caps each direction (request bodies to the model,
	// response bodies to the harness) across all of the relay's requests,
	// like one shared link; 0 means unlimited.
	BytesPerSecond int64 `json:"bytes_per_second,omitempty"`
}

// Profiles are the named network profiles. The figures are typical, not a
// standard: lan is a switched gigabit link, wan a cross-region 100 Mbit/s
// path, mobile-3g a loaded 3G cell (about 1.6 Mbit/s, RTT ~150 ms with a
// long tail).
var profiles = map[string]NetProfile{
	"lan":       {Name: "lan", Latency: 500 * time.Microsecond, Jitter: 200 * time.Microsecond, BytesPerSecond: 125_000_000},
	"wan":       {Name: "wan", Latency: 40 * time.Millisecond, Jitter: 5 * time.Millisecond, Sigma: 0.25, BytesPerSecond: 12_500_000},
	"mobile-3g": {Name: "mobile-3g", Latency: 150 * time.Millisecond, Jitter: 20 * time.Millisecond, Sigma: 0.5, BytesPerSecond: 200_000},
}

// ProfileNames lists the named profiles, sorted.
func ProfileNames() []string {
	out := make([]string, 0, len(profiles))
	for n := range profiles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LookupProfile returns a named profile ("lan", "wan", "mobile-3g"), or
// "none" for the zero profile.
func LookupProfile(name string) (NetProfile, error) {
	if name == "" || name == "none" {
		return NetProfile{Name: "none"}, nil
	}
	p, ok := profiles[strings.ToLower(name)]
	if !ok {
		return NetProfile{}, fmt.Errorf("network profile %q is unknown: use one of %s, none, or a custom NetProfile", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// Validate names the field that is out of range.
func (p NetProfile) Validate() error {
	var bad []string
	if p.Latency < 0 {
		bad = append(bad, fmt.Sprintf("latency %s is negative", p.Latency))
	}
	if p.Jitter < 0 {
		bad = append(bad, fmt.Sprintf("jitter %s is negative", p.Jitter))
	}
	if p.Sigma < 0 || p.Sigma > 3 || math.IsNaN(p.Sigma) {
		bad = append(bad, fmt.Sprintf("sigma %v is outside [0, 3]", p.Sigma))
	}
	if p.BytesPerSecond < 0 {
		bad = append(bad, fmt.Sprintf("bytes_per_second %d is negative (0 means unlimited)", p.BytesPerSecond))
	}
	if p.Sigma > 0 && p.Latency == 0 {
		bad = append(bad, "sigma needs a latency (the lognormal's median)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("network profile %q: %s", p.Name, strings.Join(bad, "; "))
	}
	return nil
}

// delaySampler draws per-request delays from a seeded source, so a run with
// the same seed injects the same sequence of delays.
type delaySampler struct {
	p     NetProfile
	extra time.Duration
	mu    sync.Mutex
	rng   *rand.Rand
}

func newDelaySampler(p NetProfile, extra time.Duration, seed uint64) *delaySampler {
	return &delaySampler{p: p, extra: extra, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (d *delaySampler) zero() bool { return d.p.Latency == 0 && d.p.Jitter == 0 && d.extra == 0 }

func (d *delaySampler) next() time.Duration {
	if d.zero() {
		return 0
	}
	base := float64(d.p.Latency)
	var jitter float64
	d.mu.Lock()
	if d.p.Sigma > 0 {
		base *= math.Exp(d.p.Sigma * d.rng.NormFloat64())
	}
	if d.p.Jitter > 0 {
		jitter = d.rng.Float64() * float64(d.p.Jitter)
	}
	d.mu.Unlock()
	// Cap the tail at a minute: a sigma of 3 could otherwise draw hours.
	return d.extra + time.Duration(min(base+jitter, float64(time.Minute)))
}
