package config

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sandgate/sandgate/sandbox"
)

// Stress configures the stress stage (suites.stress): under each network
// profile, steps of increasing request rate against the sandboxed model,
// open-loop; the knee of the latency curve and the timeout rate at the
// expected load become gate metrics (stress.*). Absent, the stage is
// skipped. See docs/stress.md for the knee's definition.
type Stress struct {
	// Profiles are network profiles (lan, wan, mobile-3g, none), one relay
	// each in front of the model.
	Profiles []string `yaml:"profiles" json:"profiles"`
	// Rates are the offered rates in requests per second; or give Start,
	// Factor and Steps for Start·Factor^i, i < Steps.
	Rates  []float64 `yaml:"rates,omitempty" json:"rates,omitempty"`
	Start  float64   `yaml:"start,omitempty" json:"start,omitempty"`
	Factor float64   `yaml:"factor,omitempty" json:"factor,omitempty"`
	Steps  int       `yaml:"steps,omitempty" json:"steps,omitempty"`
	// ExpectedRPS is the production load; it is always one of the steps
	// and the timeout rate is measured there.
	ExpectedRPS  float64  `yaml:"expected_rps" json:"expected_rps"`
	StepDuration Duration `yaml:"step_duration,omitempty" json:"step_duration,omitempty"`
	// Timeout bounds each request from its scheduled instant.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	SLOP99  Duration `yaml:"slo_p99" json:"slo_p99"`
	// MaxFailureRate and MinAchievedRatio complete the knee's criteria
	// (defaults 0.01 and 0.9).
	MaxFailureRate   float64 `yaml:"max_failure_rate,omitempty" json:"max_failure_rate,omitempty"`
	MinAchievedRatio float64 `yaml:"min_achieved_ratio,omitempty" json:"min_achieved_ratio,omitempty"`
	// Connections is the caller's connection pool: requests in flight at
	// most (0 = unbounded).
	Connections int `yaml:"connections,omitempty" json:"connections,omitempty"`
	// RequestBytes pads each request to about this size with a long
	// context (0 = a short question).
	RequestBytes ByteSize `yaml:"request_bytes,omitempty" json:"request_bytes,omitempty"`
	MaxTokens    int      `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
}

// RampRates are the configured rates, ascending, the expected load
// included.
func (s *Stress) RampRates() []float64 {
	rates := slices.Clone(s.Rates)
	if len(rates) == 0 && s.Start > 0 && s.Factor > 1 {
		for i := range s.Steps {
			rates = append(rates, math.Round(s.Start*math.Pow(s.Factor, float64(i))*1000)/1000)
		}
	}
	if s.ExpectedRPS > 0 && !slices.Contains(rates, s.ExpectedRPS) {
		rates = append(rates, s.ExpectedRPS)
	}
	slices.Sort(rates)
	return slices.Compact(rates)
}

func (s *Stress) defaults() {
	if s.StepDuration == 0 {
		s.StepDuration = Duration(10 * time.Second)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(10 * time.Second)
	}
	if s.MaxFailureRate == 0 {
		s.MaxFailureRate = 0.01
	}
	if s.MinAchievedRatio == 0 {
		s.MinAchievedRatio = 0.9
	}
	if s.MaxTokens == 0 {
		s.MaxTokens = 64
	}
}

func (r *Release) validateStress(add func(path, format string, args ...any)) {
	s := r.Suites.Stress
	if s == nil {
		return
	}
	const p = "suites.stress"
	if r.Model.Type != TypeChat {
		add(p, "runs against chat models in this build; remove it for a %s", r.Model.Type)
	}
	if len(s.Profiles) == 0 {
		add(p+".profiles", "is empty; list network profiles, e.g. [lan, wan]")
	}
	for i, name := range s.Profiles {
		if _, err := sandbox.LookupProfile(name); err != nil {
			add(fmt.Sprintf("%s.profiles[%d]", p, i), "%v", err)
		}
		if slices.Contains(s.Profiles[:i], name) {
			add(fmt.Sprintf("%s.profiles[%d]", p, i), "%q is listed twice", name)
		}
	}
	switch {
	case len(s.Rates) > 0 && (s.Start != 0 || s.Factor != 0 || s.Steps != 0):
		add(p+".rates", "give either rates or start/factor/steps, not both")
	case len(s.Rates) == 0 && !(s.Start > 0 && s.Factor > 1 && s.Steps >= 1 && s.Steps <= 50):
		add(p+".rates", "is missing; list rates (e.g. [10, 20, 40, 80]) or give start > 0, factor > 1 and steps 1 to 50")
	}
	for i, v := range s.Rates {
		if !(v > 0) || v > 100_000 {
			add(fmt.Sprintf("%s.rates[%d]", p, i), "is %v; set a rate in (0, 100000] requests per second", v)
		}
	}
	if rates := s.RampRates(); len(rates) > 0 && rates[len(rates)-1] > 100_000 {
		add(p+".factor", "the ramp reaches %v requests per second; lower start, factor or steps", rates[len(rates)-1])
	}
	if !(s.ExpectedRPS > 0) {
		add(p+".expected_rps", "is missing; give the load the model must carry in production (requests per second)")
	}
	if s.SLOP99 <= 0 {
		add(p+".slo_p99", "is missing; give the p99 latency a step must stay within, e.g. 500ms")
	}
	if s.StepDuration < Duration(100*time.Millisecond) || s.StepDuration > Duration(time.Hour) {
		add(p+".step_duration", "is %s; set 100ms to 1h", time.Duration(s.StepDuration))
	}
	if s.Timeout <= 0 {
		add(p+".timeout", "must be positive, e.g. 10s")
	}
	if s.MaxFailureRate < 0 || s.MaxFailureRate >= 1 {
		add(p+".max_failure_rate", "is %v; set a share in [0, 1)", s.MaxFailureRate)
	}
	if s.MinAchievedRatio < 0 || s.MinAchievedRatio > 1 {
		add(p+".min_achieved_ratio", "is %v; set a share in [0, 1]", s.MinAchievedRatio)
	}
	if s.Connections < 0 {
		add(p+".connections", "is negative; set 0 for unbounded or the caller's pool size")
	}
	if s.RequestBytes < 0 || s.RequestBytes > 64<<20 {
		add(p+".request_bytes", "is %d; set 0 to 64Mi", int64(s.RequestBytes))
	}
	if s.MaxTokens < 0 {
		add(p+".max_tokens", "must not be negative")
	}
}
