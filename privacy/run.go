package privacy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/redteam"
)

// Sources of a LeakRow.
const (
	SourceProbe       = "probe"
	SourceAdversarial = "adversarial"
)

// Size bounds of LeakRow text columns, in bytes (cut at rune boundaries).
const (
	MaxPromptBytes   = 2 << 10
	MaxResponseBytes = 4 << 10
)

// LeakRow is one scanned reply, the Parquet schema of results/privacy/.
//
//	source       probe (a privacy probe) | adversarial (a red-team reply re-scanned)
//	probe_id     Probe.ID, or the red-team prompt_id
//	kind         what the probe tried to extract (adversarial: the attack goal)
//	leaked       any finding
//	findings     comma list of leaked kinds, most severe first ("secret,pii")
//	detector     detector of the most severe finding; evidence quotes it
//	error        call error; an errored row is not scanned and not a leak
//	status_code  HTTP status of the final call; attempt = retries made
type LeakRow struct {
	ReleaseID  string `parquet:"release_id,dict" json:"release_id"`
	Source     string `parquet:"source,dict" json:"source"`
	ProbeID    string `parquet:"probe_id" json:"probe_id"`
	Kind       string `parquet:"kind,dict" json:"kind"`
	Prompt     string `parquet:"prompt" json:"prompt"`
	Response   string `parquet:"response" json:"response"`
	Leaked     bool   `parquet:"leaked" json:"leaked"`
	Findings   string `parquet:"findings,dict" json:"findings"`
	Detector   string `parquet:"detector,dict" json:"detector"`
	Evidence   string `parquet:"evidence" json:"evidence"`
	Error      string `parquet:"error" json:"error"`
	StatusCode int32  `parquet:"status_code" json:"status_code"`
	Attempt    int32  `parquet:"attempt" json:"attempt"`
}

// applyFindings fills the leak columns of a row.
func applyFindings(r *LeakRow, fs []Finding) {
	if len(fs) == 0 {
		return
	}
	r.Leaked = true
	r.Detector, r.Evidence = fs[0].Detector, fs[0].Evidence
	var kinds []string
	for _, k := range leakKinds {
		if slices.ContainsFunc(fs, func(f Finding) bool { return f.Kind == k }) {
			kinds = append(kinds, k)
		}
	}
	r.Findings = strings.Join(kinds, ",")
}

// AdversarialRow re-scans a red-team attempt's reply for leaks, so the
// privacy stage also counts what the attacks shook loose. The attempt row
// keeps only the first 4 KiB of the reply, so a leak beyond that is missed.
func AdversarialRow(reg *redteam.Registry, t Target, a redteam.AttemptRow) LeakRow {
	r := LeakRow{
		ReleaseID:  a.ReleaseID,
		Source:     SourceAdversarial,
		ProbeID:    a.PromptID,
		Kind:       a.Goal,
		Response:   redteam.Truncate(a.Response, MaxResponseBytes),
		Error:      a.Error,
		StatusCode: a.StatusCode,
		Attempt:    a.Attempt,
	}
	if a.Error == "" {
		applyFindings(&r, ScanReply(reg, t, "", a.Response))
	}
	return r
}

// probeSeed derives the sampling seed from the probe ID rather than its
// position, so splitting probes across shards does not change replies.
func probeSeed(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() >> 1)
}

// RunOptions are redteam's: same concurrency, timeout and retry knobs.
type RunOptions = redteam.RunOptions

// Run sends every probe (with the target's system prompt), scans each reply
// and emits one LeakRow per probe in probe order. Like redteam.Run it fails
// only on bad options, a failing emit or ctx ending.
func Run(ctx context.Context, client *modelapi.Client, t Target, probes []Probe, opt RunOptions, emit func(LeakRow) error) error {
	if client == nil {
		return errors.New("privacy: Run needs a modelapi.Client, got nil")
	}
	if emit == nil {
		return errors.New("privacy: Run needs an emit function, got nil")
	}
	opt, err := opt.Normalize()
	if err != nil {
		return fmt.Errorf("privacy: %w", err)
	}
	var acc Accumulator
	err = redteam.Ordered(ctx, probes, opt.Concurrency, func(ctx context.Context, _ int, p Probe) LeakRow {
		c := redteam.Call(ctx, client, redteam.NewChatRequest(opt, t.SystemPrompt, p.Prompt, probeSeed(p.ID)), opt)
		r := LeakRow{
			ReleaseID:  opt.ReleaseID,
			Source:     SourceProbe,
			ProbeID:    p.ID,
			Kind:       p.Kind,
			Prompt:     redteam.Truncate(p.Prompt, MaxPromptBytes),
			Response:   redteam.Truncate(c.Response.Content, MaxResponseBytes),
			StatusCode: int32(c.StatusCode),
			Attempt:    int32(c.Retries),
		}
		if c.Err != nil {
			r.Error = redteam.Truncate(c.Err.Error(), 1<<10)
			return r
		}
		applyFindings(&r, ScanReply(opt.Detectors, t, p.Prompt, c.Response.Content))
		return r
	}, func(r LeakRow) error {
		acc.Add(r)
		if err := emit(r); err != nil {
			return fmt.Errorf("privacy: emit row for probe %s: %w", r.ProbeID, err)
		}
		return nil
	})
	s := acc.Summary()
	opt.Logger.InfoContext(ctx, "privacy: run finished", "release", opt.ReleaseID, "probes", len(probes),
		"scanned", s.Scanned, "leaks", s.Leaks, "errored", s.Errored, "err", err)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("privacy: run stopped after %d of %d probes: %w", s.Probes, len(probes), err)
	}
	return err
}

// Accumulator counts LeakRows; the zero value is ready, and it is plain
// JSON-serialisable data so shards can be merged by the workflow.
type Accumulator struct {
	Probes  int            `json:"probes"`
	Scanned int            `json:"scanned"`
	Errored int            `json:"errored"`
	Leaks   int            `json:"leaks"`
	ByKind  map[string]int `json:"by_kind,omitempty"`
}

// Add counts one row. Errored rows were never scanned, so they are kept out
// of the leak-rate denominator rather than counted as clean.
func (a *Accumulator) Add(r LeakRow) {
	if r.Source == SourceProbe {
		a.Probes++
	}
	if r.Error != "" {
		a.Errored++
		return
	}
	a.Scanned++
	if !r.Leaked {
		return
	}
	a.Leaks++
	if a.ByKind == nil {
		a.ByKind = map[string]int{}
	}
	for k := range strings.SplitSeq(r.Findings, ",") {
		if k != "" {
			a.ByKind[k]++
		}
	}
}

// Merge adds another accumulator into a.
func (a *Accumulator) Merge(o Accumulator) {
	a.Probes += o.Probes
	a.Scanned += o.Scanned
	a.Errored += o.Errored
	a.Leaks += o.Leaks
	if len(o.ByKind) > 0 && a.ByKind == nil {
		a.ByKind = make(map[string]int, len(o.ByKind))
	}
	for k, v := range o.ByKind {
		a.ByKind[k] += v
	}
}

// Summary computes the leak rate and its Wilson interval.
func (a Accumulator) Summary() Summary {
	s := Summary{Probes: a.Probes, Scanned: a.Scanned, Errored: a.Errored, Leaks: a.Leaks, ByKind: maps.Clone(a.ByKind)}
	if s.ByKind == nil {
		s.ByKind = map[string]int{}
	}
	if a.Scanned > 0 {
		s.LeakRate = float64(a.Leaks) / float64(a.Scanned)
	}
	s.LeakRateLo, s.LeakRateHi = redteam.Wilson(a.Leaks, a.Scanned, redteam.Z95)
	return s
}
