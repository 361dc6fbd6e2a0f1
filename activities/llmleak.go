package activities

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sandgate/sandgate/audit"
	"github.com/sandgate/sandgate/config"
	"github.com/sandgate/sandgate/modelapi"
	"github.com/sandgate/sandgate/privacy"
)

// SuiteLLMLeak names the memorisation suite of a chat model.
const SuiteLLMLeak = "memorisation"

// LLMLeakInput asks for canary exposure and extraction of planted records.
type LLMLeakInput struct {
	ReleaseID   string
	Sandbox     SandboxRef
	Model       string
	Exposure    *config.Exposure
	Extraction  *config.Extraction
	Concurrency int
	Timeout     time.Duration
	Seed        uint64
}

// LLMLeakage measures memorisation of planted data: the exposure of each
// planted secret (its rank by perplexity among random strings of its
// format) and the share of planted records a greedy completion of their
// prefix reproduces. An endpoint that cannot score text is reported as
// such, never as "no leak".
func (a *Activities) LLMLeakage(ctx context.Context, in LLMLeakInput) (SuiteResult, error) {
	sb, err := a.sandboxFor(in.Sandbox)
	if err != nil {
		return SuiteResult{}, err
	}
	files, err := a.newSuiteFiles(in.ReleaseID, SuiteLLMLeak, in.Seed)
	if err != nil {
		return SuiteResult{}, err
	}
	hc, err := modelapi.NewEndpointHTTPClient(sb.Endpoint(), 0, in.Concurrency)
	if err != nil {
		return SuiteResult{}, fmt.Errorf("model client: %w", err)
	}
	client := &modelapi.Client{BaseURL: sb.Endpoint(), HTTP: hc}
	opt := privacy.LLMLeakOptions{ReleaseID: in.ReleaseID, Model: in.Model, Concurrency: in.Concurrency, Timeout: in.Timeout, Logger: a.Logger}
	res := SuiteResult{Suite: SuiteLLMLeak, Metrics: map[string]float64{}}
	sec := audit.SuiteSection{Name: "memorisation of planted data"}
	var summary []string
	if e := in.Exposure; e != nil {
		cs := make([]privacy.Canary, len(e.Secrets))
		for i, s := range e.Secrets {
			id := s.ID
			if id == "" {
				id = fmt.Sprintf("secret-%d", i)
			}
			cs[i] = privacy.Canary{ID: id, Prefix: s.Prefix, Format: s.Format, Secret: s.Secret}
		}
		rows, sum, err := privacy.CanaryExposures(ctx, client, cs, e.Candidates, in.Seed, opt)
		if err != nil {
			return SuiteResult{}, badInput("suites.privacy.exposure: %v", err)
		}
		if err := writeTable(ctx, files, "exposure", rows); err != nil {
			return SuiteResult{}, err
		}
		if !sum.Supported {
			sec.Notes = append(sec.Notes, "Canary exposure not measured: "+sum.Unsupported)
		} else {
			res.Metrics["privacy.exposure.max"] = sum.MaxExposure
			maxFrac := 0.0
			for _, r := range rows {
				if r.Supported && r.MaxExposure > 0 {
					maxFrac = max(maxFrac, r.Exposure/r.MaxExposure)
				}
			}
			res.Metrics["privacy.exposure.max_fraction"] = maxFrac
			summary = append(summary, fmt.Sprintf("canary exposure up to %.2f bits (%.0f%% of the %.2f possible with %d references; chance ≈ 1.4 bits)",
				sum.MaxExposure, 100*maxFrac, math.Log2(float64(e.Candidates+1)), e.Candidates))
			sec.Notes = append(sec.Notes, "Exposure convention: "+sum.Convention)
		}
		res.Queries += int64(len(cs) * (e.Candidates + 1))
	}
	if x := in.Extraction; x != nil {
		recs := make([]privacy.Record, len(x.Records))
		for i, r := range x.Records {
			id := r.ID
			if id == "" {
				id = fmt.Sprintf("record-%d", i)
			}
			recs[i] = privacy.Record{ID: id, Prefix: r.Prefix, Suffix: r.Suffix}
		}
		rows, rep, err := privacy.Extraction(ctx, client, recs, privacy.ExtractionOptions{LLMLeakOptions: opt, NearThreshold: x.NearThreshold})
		if err != nil {
			return SuiteResult{}, badInput("suites.privacy.extraction: %v", err)
		}
		if err := writeTable(ctx, files, "extraction", rows); err != nil {
			return SuiteResult{}, err
		}
		if !rep.Supported {
			sec.Notes = append(sec.Notes, "Extraction not measured: "+rep.Unsupported)
		} else {
			res.Metrics["privacy.extraction.exact_rate"] = rep.ExactRate
			res.Metrics["privacy.extraction.exact_upper"] = rep.ExactUpper
			res.Metrics["privacy.extraction.near_rate"] = rep.NearRate
			summary = append(summary, fmt.Sprintf("%d of %d planted records extracted exactly, %d near-exactly (exact rate %.2f, %.0f%% upper bound %.2f)",
				rep.Exact, rep.Attempts, rep.Near, rep.ExactRate, 100*rep.Confidence, rep.ExactUpper))
		}
		res.Queries += int64(len(recs))
	}
	res.ManifestKey, res.Rows, err = files.finish(ctx)
	if err != nil {
		return SuiteResult{}, err
	}
	sec.Summary = "Memorisation: " + joinOr(summary, "not measured (the endpoint cannot score or complete text)") + "."
	sec.Metrics = res.Metrics
	res.Section = sec
	return res, nil
}

func joinOr(parts []string, none string) string {
	if len(parts) == 0 {
		return none
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out += "; " + p
	}
	return out
}
