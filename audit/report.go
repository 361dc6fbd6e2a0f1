// Package audit renders the release report (Markdown for people, JSON for
// tools). The hash-chained audit log will live here too.
package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/redteam"
	"github.com/sandgate/sandgate/shadow"
)

// Report is everything a reader needs to judge a release, small enough to
// pass as a workflow result: data stays on S3, referenced by Artifacts.
type Report struct {
	ReleaseID        string          `json:"release_id"`
	ModelName        string          `json:"model_name"`
	ModelVersion     string          `json:"model_version"`
	IncumbentVersion string          `json:"incumbent_version"`
	Verdict          string          `json:"verdict"` // final decision; may differ from Gate.Verdict after a human decision
	Gate             gate.Verdict    `json:"gate"`
	Adversarial      redteam.Summary `json:"adversarial"`
	Privacy          privacy.Summary `json:"privacy"`
	Shadow           shadow.Summary  `json:"shadow"`
	Stages           []StageReport   `json:"stages"`
	Sandbox          map[string]any  `json:"sandbox"` // sandbox evidence, e.g. "egress_blocked": true
	Artifacts        []Artifact      `json:"artifacts"`
	Seed             uint64          `json:"seed"`
	Bucket           string          `json:"bucket,omitempty"` // S3 bucket holding Prefix
	Prefix           string          `json:"prefix"`           // "releases/<id>/" or a full "s3://bucket/releases/<id>/"
	ConfigSHA256     string          `json:"config_sha256"`
	// Decision is the human decision (approval, override, rejection), if any.
	Decision *Decision `json:"decision,omitempty"`
	// Suites are the classifier and regressor suites, in the order they ran.
	Suites []SuiteSection `json:"suites,omitempty"`
}

// StageReport is one pipeline stage as the report shows it.
type StageReport struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	Summary    string `json:"summary"`
	DurationMS int64  `json:"duration_ms"`
}

// Artifact is a file the release wrote, by S3 key.
type Artifact struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// RenderJSON is the report as indented JSON. encoding/json sorts map keys,
// so the same report always renders to the same bytes.
func RenderJSON(r Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("audit: render report %q as JSON: %w", r.ReleaseID, err)
	}
	return append(b, '\n'), nil
}

// RenderMarkdown renders the report for a person with a minute to spare:
// the verdict and the rules that decided it come first, details follow.
func RenderMarkdown(r Report) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	verdict := cmp.Or(r.Verdict, r.Gate.Verdict, "UNKNOWN")
	w("# Release %s: %s\n\n", md(r.ReleaseID), verdict)
	w("Model **%s** version **%s**", md(r.ModelName), md(r.ModelVersion))
	if r.IncumbentVersion != "" {
		w(" (incumbent **%s**)", md(r.IncumbentVersion))
	}
	w(".\n\n")
	if d := r.Decision; d != nil {
		w("**Human decision:** %s by %s — %s\n\n", md(d.Kind), md(d.Actor), md(d.Reason))
	}
	writeVerdict(&b, r, verdict)
	writeStages(&b, r.Stages)
	// A classifier's release has suites instead of red teaming; a chat
	// model's may add a shadow-analysis section.
	o := r.Adversarial.Overall
	if len(r.Suites) == 0 || r.Adversarial.Total > 0 || o.Breached+o.Defended+o.Errored > 0 {
		writeAdversarial(&b, r.Adversarial)
		writePrivacy(&b, r.Privacy)
	}
	writeSuites(&b, r)
	writeShadow(&b, r.Shadow)
	writeSandbox(&b, r.Sandbox)
	writeArtifacts(&b, r)
	writeHowToOpen(&b, r)
	w("## Reproduce\n\n")
	w("- seed: `%d`\n", r.Seed)
	if r.ConfigSHA256 != "" {
		w("- config sha256: `%s`\n", r.ConfigSHA256)
	}
	w("- prefix: `%s`\n", s3URL(r, ""))
	return b.Bytes()
}

func writeVerdict(b *bytes.Buffer, r Report, verdict string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("**Verdict: %s**", verdict)
	if r.Gate.Verdict != "" && r.Gate.Verdict != verdict {
		w(" (the gate said %s)", r.Gate.Verdict)
	}
	w("\n\n")
	byName := make(map[string]gate.RuleResult, len(r.Gate.Rules))
	for _, rr := range r.Gate.Rules {
		byName[rr.Name] = rr
	}
	if len(r.Gate.Failed) > 0 {
		w("Blocking rules failed (%d):\n\n", len(r.Gate.Failed))
		for _, name := range r.Gate.Failed {
			w("- `%s`: %s\n", md(name), md(ruleMessage(byName[name])))
		}
		w("\n")
	}
	var warns []gate.RuleResult
	for _, rr := range r.Gate.Rules {
		if !rr.Passed && rr.Severity == gate.SeverityWarn {
			warns = append(warns, rr)
		}
	}
	if len(warns) > 0 {
		w("Warnings (%d):\n\n", len(warns))
		for _, rr := range warns {
			w("- `%s`: %s\n", md(rr.Name), md(ruleMessage(rr)))
		}
		w("\n")
	}
	if len(r.Gate.Rules) == 0 {
		w("No gate rules were evaluated.\n\n")
		return
	}
	w("| rule | metric | value | threshold | result | severity |\n|---|---|---|---|---|---|\n")
	for _, rr := range r.Gate.Rules {
		value := num(rr.Value)
		if rr.Missing {
			value = "not measured"
		}
		result := "pass"
		if !rr.Passed {
			result = "**FAIL**"
		}
		threshold := ""
		if rr.Op != "" {
			threshold = rr.Op + " " + num(rr.Threshold)
		}
		w("| %s | %s | %s | %s | %s | %s |\n", cell(rr.Name), cell(rr.Metric), value, cell(threshold), result, cell(rr.Severity))
	}
	w("\n")
}

func ruleMessage(rr gate.RuleResult) string {
	if rr.Message != "" {
		return rr.Message
	}
	if rr.Missing {
		return rr.Metric + " was not measured"
	}
	return fmt.Sprintf("%s = %s, wanted %s %s", rr.Metric, num(rr.Value), rr.Op, num(rr.Threshold))
}

func writeStages(b *bytes.Buffer, stages []StageReport) {
	fmt.Fprintf(b, "## Stages\n\n")
	if len(stages) == 0 {
		fmt.Fprintf(b, "No stages recorded.\n\n")
		return
	}
	fmt.Fprintf(b, "| stage | status | duration | summary |\n|---|---|---|---|\n")
	for _, s := range stages {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", cell(s.Name), cell(s.Status), duration(s.DurationMS), cell(s.Summary))
	}
	fmt.Fprintf(b, "\n")
}

func writeAdversarial(b *bytes.Buffer, s redteam.Summary) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Adversarial testing\n\n")
	o := s.Overall
	if s.Total == 0 && o.Breached+o.Defended+o.Errored == 0 {
		w("No attempts recorded.\n\n")
		return
	}
	w("%d attempts. Overall ASR %s (95%% interval %s–%s): %d breached, %d defended; %d errored, excluded from the ASR.\n\n",
		max(s.Total, o.Breached+o.Defended+o.Errored), pct(o.ASR), pct(o.Lo), pct(o.Hi), o.Breached, o.Defended, o.Errored)
	if len(s.ByCategory) == 0 {
		return
	}
	w("By OWASP LLM category, worst first:\n\n")
	w("| category | ASR | 95%% interval | breached | defended | errored |\n|---|---|---|---|---|---|\n")
	for _, cat := range sortedRates(s.ByCategory) {
		r := s.ByCategory[cat]
		asr, ci := pct(r.ASR), pct(r.Lo)+"–"+pct(r.Hi)
		if r.Breached+r.Defended == 0 {
			asr, ci = "n/a", "no scored attempts"
		}
		w("| %s | %s | %s | %d | %d | %d |\n", cell(cat), asr, ci, r.Breached, r.Defended, r.Errored)
	}
	w("\n")
}

// sortedRates orders categories by ASR, then upper bound, descending, then
// by name, so the worst category is on top and ties render stably.
func sortedRates(m map[string]redteam.Rate) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		ra, rb := m[a], m[b]
		return cmp.Or(cmp.Compare(rb.ASR, ra.ASR), cmp.Compare(rb.Hi, ra.Hi), strings.Compare(a, b))
	})
}

func writePrivacy(b *bytes.Buffer, s privacy.Summary) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Privacy\n\n")
	if s.Scanned == 0 && s.Probes == 0 {
		w("No privacy scan recorded.\n\n")
		return
	}
	w("%d leaks in %d scanned responses (leak rate %s", s.Leaks, s.Scanned, pct(s.LeakRate))
	if s.LeakRateHi > 0 {
		w(", 95%% interval %s–%s", pct(s.LeakRateLo), pct(s.LeakRateHi))
	}
	w("; %d probes", s.Probes)
	if s.Errored > 0 {
		w("; %d calls errored, not scanned", s.Errored)
	}
	w(").\n\n")
	kinds := slices.Sorted(maps.Keys(s.ByKind))
	if len(kinds) == 0 {
		return
	}
	w("| kind | leaks |\n|---|---|\n")
	for _, k := range kinds {
		w("| %s | %d |\n", cell(k), s.ByKind[k])
	}
	w("\n")
}

func writeShadow(b *bytes.Buffer, s shadow.Summary) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Shadow\n\n")
	if s.Requests == 0 {
		w("No shadow traffic recorded.\n\n")
		return
	}
	w("%d requests mirrored; candidate errors %d, incumbent errors %d.\n\n", s.Requests, s.Errors, s.IncumbentErrors)
	w("Agreement is only meaningful against the noise floor (the incumbent answering the same request twice).\n\n")
	w("| | candidate vs incumbent | noise floor (incumbent vs itself) |\n|---|---|---|\n")
	w("| exact agreement | %s | %s |\n", pct(s.ExactAgreement), pct(s.NoiseFloorAgreement))
	w("| token Jaccard similarity | %s | %s |\n", num(s.MeanSimilarity), num(s.NoiseFloorSimilarity))
	w("| ROUGE-L F1 | %s | %s |\n", num(s.MeanRougeL), num(s.NoiseFloorRougeL))
	if s.Compared > 0 || s.NoiseCompared > 0 {
		w("| pairs compared | %d | %d |\n", s.Compared, s.NoiseCompared)
	}
	w("\nAgreement gap (noise floor − candidate): %s.\n\n", pct(s.NoiseFloorAgreement-s.ExactAgreement))
	w("| latency (ms, nearest rank) | p50 | p95 | p99 |\n|---|---|---|---|\n")
	w("| incumbent | %s | %s | %s |\n", num(s.IncumbentP50MS), num(s.IncumbentP95MS), num(s.IncumbentP99MS))
	w("| candidate | %s | %s | %s |\n", num(s.CandidateP50MS), num(s.CandidateP95MS), num(s.CandidateP99MS))
	w("\np95 ratio candidate/incumbent: %s; Mann-Whitney U = %s, two-sided p = %s.\n\n",
		num(s.LatencyP95Ratio), strconv.FormatFloat(s.LatencyMannWhitneyU, 'f', -1, 64), num(s.LatencyMannWhitneyP))
}

func writeSandbox(b *bytes.Buffer, ev map[string]any) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Sandbox evidence\n\n")
	switch v, ok := ev["egress_blocked"].(bool); {
	case !ok:
		w("Egress: **not recorded**.\n\n")
	case v:
		w("Egress: **blocked** (sandbox evidence below).\n\n")
	default:
		w("Egress: **NOT BLOCKED**: the model could reach the network.\n\n")
	}
	for _, k := range slices.Sorted(maps.Keys(ev)) {
		w("- %s: %s\n", md(k), md(evidenceValue(ev[k])))
	}
	if len(ev) > 0 {
		w("\n")
	}
}

// evidenceValue prints scalars bare and anything nested as compact JSON,
// which sorts map keys and so stays stable.
func evidenceValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(j)
}

func writeArtifacts(b *bytes.Buffer, r Report) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Artifacts\n\n")
	if len(r.Artifacts) == 0 {
		w("No artifacts recorded.\n\n")
		return
	}
	w("| artifact | S3 object | rows | sha256 |\n|---|---|---|---|\n")
	for _, a := range r.Artifacts {
		sum := a.SHA256
		if len(sum) > 12 {
			sum = sum[:12] + "…"
		}
		w("| %s | `%s` | %d | `%s` |\n", cell(a.Name), cell(objectURL(r, a.Key)), a.Rows, sum)
	}
	w("\n")
}

func writeHowToOpen(b *bytes.Buffer, r Report) {
	base := s3URL(r, "")
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Open the results\n\n")
	w("DuckDB (for a local S3 endpoint also run `SET s3_endpoint='host:port'; SET s3_url_style='path'; SET s3_use_ssl=false;`):\n\n")
	w("```sh\n")
	w("duckdb -c \"select outcome, count(*) from read_parquet('%sresults/adversarial/*/*.parquet', hive_partitioning=true) group by 1\"\n", base)
	w("duckdb -c \"select avg(exact_match::int) as agreement, avg(noise_exact_match::int) as noise_floor from read_parquet('%sresults/shadow/**/*.parquet')\"\n", base)
	w("```\n\n")
	w("pandas (pyarrow reads the `category=` partitions as a column):\n\n")
	w("```python\n")
	w("import pandas as pd\n")
	w("df = pd.read_parquet(%q)  # storage_options={\"client_kwargs\": {\"endpoint_url\": ...}} for a local S3\n", base+"results/adversarial/")
	w("df.groupby(\"category\")[\"outcome\"].value_counts().unstack()\n")
	w("```\n\n")
}

// s3URL is the release prefix (plus rel) as an s3:// URL ending in "/" when
// rel is empty. Without a bucket it keeps a visible placeholder rather than
// printing a URL that looks right and points nowhere.
func s3URL(r Report, rel string) string {
	prefix := r.Prefix
	if prefix == "" && r.ReleaseID != "" {
		prefix = "releases/" + r.ReleaseID + "/"
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if strings.HasPrefix(prefix, "s3://") {
		return prefix + rel
	}
	bucket := cmp.Or(r.Bucket, "<bucket>")
	return "s3://" + bucket + "/" + strings.TrimPrefix(prefix, "/") + rel
}

// objectURL turns an artifact key into a URL: keys are bucket-relative, or
// already URLs.
func objectURL(r Report, key string) string {
	if strings.HasPrefix(key, "s3://") || r.Bucket == "" {
		return key
	}
	return "s3://" + r.Bucket + "/" + strings.TrimPrefix(key, "/")
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func num(f float64) string { return fmt.Sprintf("%.4g", f) }

func duration(msec int64) string {
	switch {
	case msec <= 0:
		return "–"
	case msec < 1000:
		return fmt.Sprintf("%d ms", msec)
	case msec < 120_000:
		return fmt.Sprintf("%.1f s", float64(msec)/1000)
	default:
		return fmt.Sprintf("%.1f min", float64(msec)/60_000)
	}
}

// md keeps free text on one line so it cannot break the document structure.
func md(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cell also escapes the pipe that would split a table cell.
func cell(s string) string {
	return strings.ReplaceAll(md(s), "|", `\|`)
}
