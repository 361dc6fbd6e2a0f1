package audit

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sandgate/sandgate/gate"
)

//go:embed report.html.tmpl
var reportHTML string

// htmlTemplate is parsed once: a parsed html/template is safe for concurrent
// Execute and never modified after init, so sharing it is not shared state.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": pct, "num": num, "duration": duration,
}).Parse(reportHTML))

// RenderHTML renders the report as one self-contained HTML file: inline CSS,
// charts as inline SVG, no scripts and nothing fetched, so it can be mailed,
// attached to a ticket or opened offline. Everything from the report is
// escaped by html/template (or, inside charts, by the chart code), and a
// Content-Security-Policy forbids scripts in case anything slips through:
// the report quotes model output and attacker text.
func RenderHTML(r Report) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, newHTMLView(r)); err != nil {
		return nil, fmt.Errorf("audit: render report %q as HTML: %w", r.ReleaseID, err)
	}
	return b.Bytes(), nil
}

type htmlView struct {
	R            Report
	Verdict      string
	VerdictClass string // ok, bad or unknown: the banner colour
	GateNote     string // set when a human decision overrode the gate
	Failed       []ruleRow
	Warnings     []ruleRow
	Rules        []ruleRow
	Stages       []stageRow
	Adv          advView
	Privacy      privacyView
	Suites       []suiteView
	Shadow       shadowView
	Sandbox      sandboxView
	Artifacts    []artifactRow
	Open         openView
	Prefix       string
	FailKey      template.CSS // legend swatch, so the colour is defined once
}

type ruleRow struct {
	gate.RuleResult
	Value, Threshold, Message string
}

type stageRow struct {
	StageReport
	Duration string
	Bar      template.CSS // width of the duration bar relative to the longest stage
	Bad      bool
}

type advView struct {
	Any                         bool
	Attempts                    int
	Overall                     string
	Breached, Defended, Errored int
	Chart                       template.HTML
}

type privacyView struct {
	Any   bool
	Line  string
	Chart template.HTML
}

type shadowView struct {
	Any       bool
	Line      string
	Gap       string
	Agreement template.HTML
	Latency   template.HTML
	Stats     string
}

type sandboxView struct {
	Egress      string // "yes", "NO" or "not recorded"
	EgressClass string
	Evidence    []evidenceKV
}

type evidenceKV struct{ Key, Value string }

type artifactRow struct {
	Artifact
	URL, Short string
}

type openView struct{ DuckDB, Pandas, LocalS3 string }

func newHTMLView(r Report) htmlView {
	v := htmlView{R: r, Prefix: s3URL(r, ""), FailKey: template.CSS("background:" + colorFail)}
	v.Verdict = cmp.Or(r.Verdict, r.Gate.Verdict, "UNKNOWN")
	switch v.Verdict {
	case gate.Released, "PROMOTED", "APPROVED":
		v.VerdictClass = "ok"
	case gate.Blocked, "REJECTED", "FAILED":
		v.VerdictClass = "bad"
	default:
		v.VerdictClass = "unknown"
	}
	if r.Gate.Verdict != "" && r.Gate.Verdict != v.Verdict {
		v.GateNote = "the gate said " + r.Gate.Verdict
	}
	if d := r.Decision; d != nil {
		v.GateNote = strings.TrimPrefix(v.GateNote+"; ", "; ") + d.Kind + " by " + d.Actor + ": " + d.Reason
	}

	failed := make(map[string]bool, len(r.Gate.Failed))
	for _, name := range r.Gate.Failed {
		failed[name] = true
	}
	for _, rr := range r.Gate.Rules {
		row := newRuleRow(rr)
		v.Rules = append(v.Rules, row)
		switch {
		case failed[rr.Name]:
			v.Failed = append(v.Failed, row)
		case !rr.Passed && rr.Severity == gate.SeverityWarn:
			v.Warnings = append(v.Warnings, row)
		}
	}
	// A failure the gate names without a result (an older or hand-edited
	// verdict) must still show in the banner.
	for _, name := range r.Gate.Failed {
		if !slices.ContainsFunc(r.Gate.Rules, func(rr gate.RuleResult) bool { return rr.Name == name }) {
			v.Failed = append(v.Failed, ruleRow{RuleResult: gate.RuleResult{Name: name}, Value: "?", Message: "no evidence recorded"})
		}
	}

	v.Stages = stageRows(r.Stages)
	v.Adv = newAdvView(r)
	v.Privacy = newPrivacyView(r)
	v.Suites = newSuiteViews(r)
	v.Shadow = newShadowView(r)
	v.Sandbox = newSandboxView(r.Sandbox)
	for _, a := range r.Artifacts {
		short := a.SHA256
		if len(short) > 12 {
			short = short[:12] + "…"
		}
		v.Artifacts = append(v.Artifacts, artifactRow{Artifact: a, URL: objectURL(r, a.Key), Short: short})
	}
	base := v.Prefix
	v.Open = openView{
		DuckDB: fmt.Sprintf("duckdb -c \"select outcome, count(*) from read_parquet('%sresults/adversarial/*/*.parquet', hive_partitioning=true) group by 1\"\n", base) +
			fmt.Sprintf("duckdb -c \"select avg(exact_match::int) as agreement, avg(noise_exact_match::int) as noise_floor from read_parquet('%sresults/shadow/**/*.parquet')\"", base),
		Pandas: "import pandas as pd\n" +
			fmt.Sprintf("df = pd.read_parquet(%q)  # storage_options={\"client_kwargs\": {\"endpoint_url\": ...}} for a local S3\n", base+"results/adversarial/") +
			"df.groupby(\"category\")[\"outcome\"].value_counts().unstack()",
		LocalS3: "SET s3_endpoint='host:port'; SET s3_url_style='path'; SET s3_use_ssl=false;",
	}
	return v
}

func newRuleRow(rr gate.RuleResult) ruleRow {
	row := ruleRow{RuleResult: rr, Value: num(rr.Value), Message: ruleMessage(rr)}
	if rr.Missing {
		row.Value = "not measured"
	}
	if rr.Op != "" {
		row.Threshold = strings.NewReplacer("<=", "≤", ">=", "≥").Replace(rr.Op) + " " + num(rr.Threshold)
	}
	return row
}

func stageRows(stages []StageReport) []stageRow {
	longest := int64(0)
	for _, s := range stages {
		longest = max(longest, s.DurationMS)
	}
	rows := make([]stageRow, 0, len(stages))
	for _, s := range stages {
		width := 0.0
		if longest > 0 && s.DurationMS > 0 {
			width = max(1, 100*float64(s.DurationMS)/float64(longest))
		}
		status := strings.ToLower(s.Status)
		rows = append(rows, stageRow{
			StageReport: s,
			Duration:    duration(s.DurationMS),
			Bar:         template.CSS("width:" + strconv.FormatFloat(width, 'f', 1, 64) + "%"),
			Bad:         strings.Contains(status, "fail") || strings.Contains(status, "block") || strings.Contains(status, "error"),
		})
	}
	return rows
}

// gateLimits maps a metric name to its (first) rule's threshold, and marks
// the metrics whose rule failed, so charts can draw limits and colour the
// bars that decided the verdict.
func gateLimits(v gate.Verdict) (limit map[string]float64, failing map[string]bool) {
	limit, failing = map[string]float64{}, map[string]bool{}
	for _, rr := range v.Rules {
		if _, seen := limit[rr.Metric]; !seen && rr.Op == "<=" {
			limit[rr.Metric] = rr.Threshold
		}
		if !rr.Passed && !rr.Missing && rr.Metric != "" {
			failing[rr.Metric] = true
		}
	}
	return limit, failing
}

func newAdvView(r Report) advView {
	s := r.Adversarial
	o := s.Overall
	v := advView{
		Any:      s.Total > 0 || o.Breached+o.Defended+o.Errored > 0,
		Attempts: max(s.Total, o.Breached+o.Defended+o.Errored),
		Breached: o.Breached, Defended: o.Defended, Errored: o.Errored,
	}
	if o.Breached+o.Defended > 0 {
		v.Overall = fmt.Sprintf("%s (95%% interval %s–%s)", pct(o.ASR), pct(o.Lo), pct(o.Hi))
	} else {
		v.Overall = "n/a (no scored attempts)"
	}
	limit, failing := gateLimits(r.Gate)
	var bars []Bar
	for _, cat := range sortedRates(s.ByCategory) {
		rate := s.ByCategory[cat]
		bar := Bar{Label: cat, Value: rate.ASR, Lo: rate.Lo, Hi: rate.Hi, HasInterval: true}
		if rate.Breached+rate.Defended == 0 {
			bar = Bar{Label: cat, Value: 0, Text: "n/a", Tooltip: cat + ": no scored attempts"}
		} else {
			bar.Text = fmt.Sprintf("%s (%d/%d)", pct(rate.ASR), rate.Breached, rate.Breached+rate.Defended)
			bar.Tooltip = fmt.Sprintf("%s: ASR %s, 95%% interval %s–%s; %d breached, %d defended, %d errored",
				cat, pct(rate.ASR), pct(rate.Lo), pct(rate.Hi), rate.Breached, rate.Defended, rate.Errored)
		}
		asrMetric, hiMetric := gate.MetricASR+"."+cat, gate.MetricASRUpper+"."+cat
		if l, ok := limit[asrMetric]; ok {
			bar.Limit, bar.HasLimit = l, true
		} else if l, ok := limit[hiMetric]; ok {
			bar.Limit, bar.HasLimit = l, true
		}
		bar.Fail = failing[asrMetric] || failing[hiMetric]
		bars = append(bars, bar)
	}
	v.Chart = HBarChart(BarChart{
		Title: "Attack success rate per OWASP LLM category, worst first, with 95% intervals",
		Bars:  bars, Cap: 1, Format: pctShort, Width: 900, Unit: "attack success rate",
		Empty: "No per-category results.",
	})
	return v
}

// pctShort labels axes: whole percents unless the axis is finer than that.
func pctShort(f float64) string {
	if p := 100 * f; math.Abs(p-math.Round(p)) < 1e-9 {
		return strconv.Itoa(int(math.Round(p))) + "%"
	}
	return pct(f)
}

func newPrivacyView(r Report) privacyView {
	s := r.Privacy
	v := privacyView{Any: s.Scanned > 0 || s.Probes > 0}
	if !v.Any {
		return v
	}
	v.Line = fmt.Sprintf("%d leaks in %d scanned responses, leak rate %s", s.Leaks, s.Scanned, pct(s.LeakRate))
	if s.LeakRateHi > 0 {
		v.Line += fmt.Sprintf(" (95%% interval %s–%s)", pct(s.LeakRateLo), pct(s.LeakRateHi))
	}
	v.Line += fmt.Sprintf("; %d probes", s.Probes)
	if s.Errored > 0 {
		v.Line += fmt.Sprintf("; %d calls errored, not scanned", s.Errored)
	}
	v.Line += "."
	limit, failing := gateLimits(r.Gate)
	kinds := slices.SortedFunc(maps.Keys(s.ByKind), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.ByKind[b], s.ByKind[a]), strings.Compare(a, b))
	})
	bars := make([]Bar, 0, len(kinds))
	for _, k := range kinds {
		metric := gate.MetricLeaks + "." + k
		l, hasLimit := limit[metric]
		bars = append(bars, Bar{Label: k, Value: float64(s.ByKind[k]), Limit: l, HasLimit: hasLimit, Fail: failing[metric]})
	}
	v.Chart = HBarChart(BarChart{
		Title: "Privacy leaks by kind", Bars: bars, Format: fmtCount, Width: 500, Unit: "leaks found",
		Empty: "No leaks by kind recorded.",
		// At least four so that a handful of leaks gets whole-number ticks.
		Max: max(float64(s.Leaks), 4),
	})
	return v
}

// fmtCount formats axis ticks of counts: integers, and fractions only when the
// axis is too short for whole numbers.
func fmtCount(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

func newShadowView(r Report) shadowView {
	s := r.Shadow
	v := shadowView{Any: s.Requests > 0}
	if !v.Any {
		return v
	}
	v.Line = fmt.Sprintf("%d requests mirrored; candidate errors %d, incumbent errors %d; %d pairs compared, %d noise-floor pairs.",
		s.Requests, s.Errors, s.IncumbentErrors, s.Compared, s.NoiseCompared)
	v.Gap = fmt.Sprintf("%.1f points", 100*(s.NoiseFloorAgreement-s.ExactAgreement))
	v.Agreement = GroupedBars(GroupedBarChart{
		Title:  "Agreement of candidate with incumbent against the noise floor (incumbent with itself)",
		Groups: []string{"exact agreement", "token Jaccard", "ROUGE-L F1"},
		Series: []Series{
			{Name: "noise floor (incumbent vs itself)", Values: []float64{s.NoiseFloorAgreement, s.NoiseFloorSimilarity, s.NoiseFloorRougeL}, Reference: true},
			{Name: "candidate vs incumbent", Values: []float64{s.ExactAgreement, s.MeanSimilarity, s.MeanRougeL}},
		},
		Max: 1, Format: func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	})
	v.Latency = GroupedBars(GroupedBarChart{
		Title:  "Latency percentiles in milliseconds, incumbent and candidate",
		Groups: []string{"p50", "p95", "p99"},
		Series: []Series{
			{Name: "incumbent " + r.IncumbentVersion, Values: []float64{s.IncumbentP50MS, s.IncumbentP95MS, s.IncumbentP99MS}, Reference: true},
			{Name: "candidate " + r.ModelVersion, Values: []float64{s.CandidateP50MS, s.CandidateP95MS, s.CandidateP99MS}},
		},
		Format: fmtCount, Unit: "milliseconds (nearest rank)",
	})
	v.Stats = fmt.Sprintf("p95 ratio candidate/incumbent %s; Mann-Whitney U = %s, two-sided p = %s.",
		num(s.LatencyP95Ratio), strconv.FormatFloat(s.LatencyMannWhitneyU, 'f', -1, 64), num(s.LatencyMannWhitneyP))
	return v
}

func newSandboxView(ev map[string]any) sandboxView {
	var v sandboxView
	switch b, ok := ev["egress_blocked"].(bool); {
	case !ok:
		v.Egress, v.EgressClass = "not recorded", "unknown"
	case b:
		v.Egress, v.EgressClass = "yes", "ok"
	default:
		v.Egress, v.EgressClass = "NO — the model could reach the network", "bad"
	}
	for _, k := range slices.Sorted(maps.Keys(ev)) {
		v.Evidence = append(v.Evidence, evidenceKV{k, evidenceValue(ev[k])})
	}
	return v
}
