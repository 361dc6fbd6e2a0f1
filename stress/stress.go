package stress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/sandgate/sandgate/internal/openloop"
	"github.com/sandgate/sandgate/sandbox"
)

// Options configure Run.
type Options struct {
	Profiles []sandbox.NetProfile
	// Rates are the offered rates in requests per second; Run sorts them
	// and adds ExpectedRPS when it is missing.
	Rates        []float64
	ExpectedRPS  float64
	StepDuration time.Duration
	// Timeout bounds each request from its scheduled instant.
	Timeout  time.Duration
	Criteria Criteria
	// Connections bounds the requests in flight, as the production caller's
	// HTTP client pool does (0 = unbounded). Each holds its connection for
	// the whole exchange, network delay included, so the caller's capacity
	// is Connections / latency (Little's law): a far link carries fewer
	// requests a second through the same pool. A request waiting for a
	// connection is timed from its scheduled instant like any other.
	Connections int
	// Path and Body are what each request POSTs (JSON).
	Path string
	Body []byte
	// Seed makes each profile's injected delays reproducible.
	Seed   uint64
	Logger *slog.Logger
	// Progress is called after each step, e.g. to heartbeat.
	Progress func(StepRow)
}

// Steps are the offered rates Run will try, ascending, ExpectedRPS included.
func (o Options) Steps() []float64 {
	rates := slices.Clone(o.Rates)
	if o.ExpectedRPS > 0 && !slices.Contains(rates, o.ExpectedRPS) {
		rates = append(rates, o.ExpectedRPS)
	}
	slices.Sort(rates)
	return slices.Compact(rates)
}

// Validate names the option that is out of range.
func (o Options) Validate() error {
	var errs []error
	if len(o.Profiles) == 0 {
		errs = append(errs, errors.New("no network profiles"))
	}
	for _, p := range o.Profiles {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.Rates) == 0 {
		errs = append(errs, errors.New("no rates"))
	}
	for _, r := range o.Steps() {
		if !(r > 0) || r > 100_000 {
			errs = append(errs, fmt.Errorf("rate %v is outside (0, 100000] requests per second", r))
		}
	}
	if o.StepDuration <= 0 || o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("step duration %v and timeout %v must be positive", o.StepDuration, o.Timeout))
	}
	if err := o.Criteria.withDefaults().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run ramps every profile through its own relay in front of up, profiles
// one after another, and returns the step rows and request rows. skip names
// profiles already done (after a retry) whose rows the caller has.
func Run(ctx context.Context, up sandbox.Upstream, opt Options, skip map[string]bool) ([]StepRow, []RequestRow, error) {
	if err := opt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("stress: %w", err)
	}
	var steps []StepRow
	var reqs []RequestRow
	for i, p := range opt.Profiles {
		if skip[p.Name] {
			continue
		}
		s, r, err := RunProfile(ctx, up, p, opt, opt.Seed+uint64(i))
		if err != nil {
			return steps, reqs, err
		}
		steps, reqs = append(steps, s...), append(reqs, r...)
	}
	return steps, reqs, nil
}

// RunProfile ramps one profile. Steps run in ascending rate; the ramp stops
// after the first step that fails once the expected load has been measured,
// since no later step can move the knee.
func RunProfile(ctx context.Context, up sandbox.Upstream, p sandbox.NetProfile, opt Options, seed uint64) ([]StepRow, []RequestRow, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	relay, err := sandbox.NewRelay(sandbox.RelayOptions{
		Network: p,
		// The client's own deadline decides a timeout; the relay only
		// keeps abandoned exchanges from piling up.
		RequestTimeout:      opt.Timeout + time.Second,
		Seed:                seed,
		TranscriptSize:      16,
		TranscriptBodyBytes: -1,
	}, up, log.With("stress_profile", p.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("stress: relay for profile %s: %w", p.Name, err)
	}
	defer relay.Close()
	tr := &http.Transport{MaxConnsPerHost: opt.Connections, MaxIdleConnsPerHost: max(opt.Connections, 1024), IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	var steps []StepRow
	var reqs []RequestRow
	expectedDone := opt.ExpectedRPS <= 0
	for i, rate := range opt.Steps() {
		before := relay.Stats()
		got, err := openloop.Step(ctx, client, openloop.StepOptions{
			URL: relay.URL() + opt.Path, Body: opt.Body, Rate: rate, Duration: opt.StepDuration, Timeout: opt.Timeout,
		})
		if err != nil {
			return steps, reqs, fmt.Errorf("stress: profile %s at %g/s: %w", p.Name, rate, err)
		}
		after := relay.Stats()
		row := summarize(p.Name, i, rate, opt.StepDuration, opt.Timeout, got, opt.Criteria)
		row.LinkBytesPerSecond = p.BytesPerSecond
		row.BytesIn, row.BytesOut = after.BytesIn-before.BytesIn, after.BytesOut-before.BytesOut
		row.Expected = rate == opt.ExpectedRPS
		steps = append(steps, row)
		for j, r := range got {
			reqs = append(reqs, RequestRow{Profile: p.Name, Step: int32(i), OfferedRPS: rate, Seq: int32(j),
				ScheduledMS: ms(r.Scheduled), LatencyMS: ms(r.Latency), SendLagMS: ms(r.SendLag),
				Outcome: r.Outcome.String(), Status: int32(r.Status), Error: r.Err})
		}
		log.Info("stress step", "profile", p.Name, "offered_rps", rate, "achieved_rps", row.AchievedRPS, "p99_ms", row.P99MS,
			"timeouts", row.Timeouts, "errors", row.Errors, "held", row.Held, "reason", row.Reason)
		if opt.Progress != nil {
			opt.Progress(row)
		}
		expectedDone = expectedDone || row.Expected
		if !row.Held && expectedDone {
			break
		}
	}
	return steps, reqs, nil
}
