package privacy

// Summary counts leaks found by the privacy stage, by kind
// (system_prompt, secret, canary, pii).
type Summary struct {
	Probes   int            `json:"probes"`
	Scanned  int            `json:"scanned"` // responses scanned, probes plus adversarial replies
	Leaks    int            `json:"leaks"`
	ByKind   map[string]int `json:"by_kind"`
	LeakRate float64        `json:"leak_rate"` // leaks / scanned

	Errored    int     `json:"errored"`      // calls that failed; not scanned, not in the rate
	LeakRateLo float64 `json:"leak_rate_lo"` // 95% Wilson interval of LeakRate
	LeakRateHi float64 `json:"leak_rate_hi"`
}
