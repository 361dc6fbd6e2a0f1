package audit

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/gate"
	"github.com/sandgate/sandgate/redteam"
)

const xssPayload = `<script>alert(1)</script>`

func renderHTML(t *testing.T, r Report) string {
	t.Helper()
	b, err := RenderHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderHTML(t *testing.T) {
	r := sampleReport(t)
	out := renderHTML(t, r)

	if !strings.HasPrefix(out, "<!DOCTYPE html>") {
		t.Fatalf("not an HTML document: %.60q", out)
	}
	for _, s := range []string{
		`<title>BLOCKED: release release-chat-1.4.0-ab12cd</title>`,
		`<section class="banner bad" id="verdict">`,
		"Blocking rules failed (3):",
		"<code>asr-upper</code>: <span class=\"fail\">0.144</span>, required ≤ 0.05",
		"<code>excessive-agency</code>: <span class=\"fail\">not measured</span>",
		"Warnings (1):",
		"<td>adversarial</td><td>completed</td>",
		"95.0 s",
		"120 attempts | 9 breached",
		"Overall attack success rate <strong>7.9% (95% interval 4.2%–14.4%)</strong>",
		"2 leaks in 170 scanned responses",
		`Egress blocked: <span class="badge ok">yes</span>`,
		"s3://sandgate/releases/release-chat-1.4.0-ab12cd/datasets/prompts/part-00000.parquet",
		"duckdb -c &#34;select outcome, count(*) from read_parquet(&#39;s3://sandgate/releases/release-chat-1.4.0-ab12cd/results/adversarial/*/*.parquet&#39;, hive_partitioning=true)",
		"pd.read_parquet(&#34;s3://sandgate/releases/release-chat-1.4.0-ab12cd/results/adversarial/&#34;)",
		"gap (noise floor − candidate) <strong>9.0 points</strong>",
		"Mann-Whitney U = 26000",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	// A person reads top-down: the verdict first, the how-to last.
	assertOrder(t, out, `id="verdict"`, `id="gate"`, `id="stages"`, `id="adversarial"`, `id="privacy"`,
		`id="sandbox"`, `id="shadow"`, `id="artifacts"`, `id="open"`)

	// Self-contained: nothing to fetch, nothing to run.
	for _, bad := range []string{"<script", "<link", "<img", "@import", "url(", "https://"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML contains %q; the report must be self-contained", bad)
		}
	}
	// The SVG namespace is an identifier, not a fetch; any other URL is.
	if strings.Count(out, "http://") != strings.Count(out, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("HTML refers to a URL other than the SVG namespace")
	}
	if !strings.Contains(out, `content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`) {
		t.Error("CSP meta missing")
	}

	checkWellFormed(t, out)

	// One bar per OWASP category, worst first, the failing one in the failure colour.
	adv := htmlSection(t, out, "adversarial")
	if got := strings.Count(adv, `class="bar-row"`); got != len(r.Adversarial.ByCategory) {
		t.Errorf("ASR chart has %d rows, want %d", got, len(r.Adversarial.ByCategory))
	}
	assertOrder(t, adv, ">LLM01<", ">LLM07<", ">LLM02<")
	if n := strings.Count(adv, `class="whisker"`); n != 3 { // LLM02's 0% still has an interval
		t.Errorf("%d whiskers, want 3", n)
	}
	if strings.Count(adv, `fill="`+colorFail+`"`) != 1 {
		t.Errorf("want exactly LLM07 (prompt-leak rule) drawn as failing:\n%s", adv)
	}
	if !strings.Contains(adv, `class="limit"`) {
		t.Error("the gate's per-category limit is not drawn")
	}

	priv := htmlSection(t, out, "privacy")
	if got := strings.Count(priv, `class="bar-row"`); got != len(r.Privacy.ByKind) {
		t.Errorf("privacy chart has %d rows, want %d", got, len(r.Privacy.ByKind))
	}
	sh := htmlSection(t, out, "shadow")
	if got := strings.Count(sh, `class="bar"`); got != 12 { // 2 charts × 3 groups × 2 series
		t.Errorf("shadow charts have %d bars, want 12", got)
	}

	b2, _ := RenderHTML(r)
	if out != string(b2) {
		t.Fatal("HTML rendering is not deterministic")
	}
}

// TestRenderHTMLEscapes puts attacker-controlled text everywhere a report
// carries free text: none of it may reach the page as markup.
func TestRenderHTMLEscapes(t *testing.T) {
	r := sampleReport(t)
	r.ReleaseID = xssPayload
	r.ModelName = xssPayload
	r.ModelVersion = `"><svg onload=alert(1)>`
	r.IncumbentVersion = xssPayload
	r.Verdict = xssPayload
	r.Stages[1].Summary = xssPayload
	r.Stages[1].Name = xssPayload
	r.Stages[1].Status = xssPayload
	r.Gate.Rules[0].Message = xssPayload
	r.Gate.Rules[0].Name = xssPayload
	r.Gate.Failed = append(r.Gate.Failed, xssPayload)
	r.Adversarial.ByCategory[xssPayload] = redteam.Rate{Breached: 1, Defended: 1, ASR: .5, Lo: .1, Hi: .9}
	r.Privacy.ByKind[xssPayload] = 1
	r.Sandbox[xssPayload] = xssPayload
	r.Artifacts[0].Name = xssPayload
	r.Artifacts[0].Key = "releases/x/</code><script>alert(1)</script>"
	r.Artifacts[0].SHA256 = `"><script>alert(1)</script>`
	r.Prefix = "releases/'); alert(1); ('/"
	r.ConfigSHA256 = xssPayload
	out := renderHTML(t, r)

	if strings.Contains(out, "<script") || strings.Contains(out, "<svg onload") {
		t.Fatalf("attacker text reached the page unescaped:\n%s", out)
	}
	if n := strings.Count(out, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 10 {
		t.Errorf("escaped payload appears %d times; fields were dropped instead of escaped?", n)
	}
	checkWellFormed(t, out)
	// Labels in charts are escaped too, in text and in tooltips.
	adv := htmlSection(t, out, "adversarial")
	if !strings.Contains(adv, ">&lt;script&gt;alert(1)&lt;…</text>") || !strings.Contains(adv, "<title>&lt;script&gt;alert(1)&lt;/script&gt;: ASR 50.0%") {
		t.Errorf("chart label not escaped as expected:\n%s", adv)
	}
}

func TestRenderHTMLEmpty(t *testing.T) {
	out := renderHTML(t, Report{})
	for _, s := range []string{
		`<section class="banner unknown" id="verdict">`,
		"<h1>UNKNOWN</h1>",
		"No gate rules were evaluated.",
		"No stages recorded.",
		"No attempts recorded.",
		"No privacy scan recorded.",
		"No shadow traffic recorded.",
		`Egress blocked: <span class="badge unknown">not recorded</span>`,
		"No artifacts recorded.",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("empty report lacks %q", s)
		}
	}
	if strings.Contains(out, "<svg") {
		t.Error("empty report draws a chart")
	}
	checkWellFormed(t, out)

	released := renderHTML(t, Report{Gate: gate.Verdict{Verdict: gate.Released, Rules: []gate.RuleResult{{Name: "r", Passed: true, Severity: "block"}}},
		Sandbox: map[string]any{"egress_blocked": false}})
	for _, s := range []string{`<section class="banner ok" id="verdict">`, "<h1>RELEASED</h1>", "All 1 gate rules pass.",
		`<span class="badge bad">NO — the model could reach the network</span>`} {
		if !strings.Contains(released, s) {
			t.Errorf("released report lacks %q", s)
		}
	}
	overridden := renderHTML(t, Report{Verdict: gate.Released, Gate: gate.Verdict{Verdict: gate.Blocked, Failed: []string{"ghost"}}})
	for _, s := range []string{"the gate said BLOCKED", "<code>ghost</code>", "no evidence recorded"} {
		if !strings.Contains(overridden, s) {
			t.Errorf("overridden report lacks %q", s)
		}
	}
}

// TestRenderHTMLNonFinite: NaN in an SVG attribute is a browser console error
// and a broken chart; such values show as n/a instead.
func TestRenderHTMLNonFinite(t *testing.T) {
	r := sampleReport(t)
	r.Adversarial.ByCategory["LLM09"] = redteam.Rate{Breached: 1, Defended: 1, ASR: math.NaN(), Lo: math.Inf(-1), Hi: math.NaN()}
	r.Shadow.CandidateP99MS = math.Inf(1)
	r.Shadow.MeanRougeL = math.NaN()
	out := renderHTML(t, r)
	for _, attr := range regexp.MustCompile(`(?:x|y|x1|x2|y1|y2|width|height|d)="[^"]*"`).FindAllString(out, -1) {
		if strings.Contains(attr, "NaN") || strings.Contains(attr, "Inf") {
			t.Errorf("non-finite number in SVG attribute %s", attr)
		}
	}
	checkWellFormed(t, out)
}

func TestCharts(t *testing.T) {
	bars := HBarChart(BarChart{Title: "t", Bars: []Bar{{Label: "a", Value: 3}, {Label: "b", Value: 1, HasInterval: true, Lo: 0.5, Hi: 2}}})
	if n := strings.Count(string(bars), `class="bar"`); n != 2 {
		t.Errorf("%d bars, want 2", n)
	}
	if n := strings.Count(string(bars), `class="whisker"`); n != 1 {
		t.Errorf("%d whiskers, want 1", n)
	}
	// Ticks are whole steps up to the largest value: 0, 1, 2, 3.
	if !strings.Contains(string(bars), `class="tick">3</text>`) || strings.Contains(string(bars), `class="tick">4</text>`) {
		t.Errorf("axis does not end at 3:\n%s", bars)
	}
	if got := HBarChart(BarChart{Empty: "nothing here"}); got != `<p class="empty">nothing here</p>` {
		t.Errorf("empty bar chart: %s", got)
	}
	if got := GroupedBars(GroupedBarChart{}); !strings.Contains(string(got), "No data.") {
		t.Errorf("empty grouped chart: %s", got)
	}
	for _, c := range []struct{ in, capAt, top, step float64 }{
		{0.291, 1, 0.3, 0.1}, {0.144, 1, 0.15, 0.05}, {0.9, 1, 1, 0.25}, {3, 0, 3, 1}, {300, 0, 300, 100},
		{0, 0, 1, 0.25}, {4, 0, 4, 1}, {7, 0, 8, 2}, {math.NaN(), 1, 1, 0.25},
	} {
		top, step := niceAxis(c.in, c.capAt)
		if math.Abs(top-c.top) > 1e-12 || math.Abs(step-c.step) > 1e-12 {
			t.Errorf("niceAxis(%v, %v) = %v, %v; want %v, %v", c.in, c.capAt, top, step, c.top, c.step)
		}
	}
}

func TestROC(t *testing.T) {
	// A plain anonymous-struct slice is accepted, as callers will build one.
	pts := []struct{ FPR, TPR float64 }{{0.5, 1}, {0.1, 0.6}, {math.NaN(), 0.5}, {2, 1}}
	svg := string(ROC("membership inference", pts))
	checkWellFormed(t, svg)
	// (0,0) → (0.1,0.6) → (0.5,1) → (1,1): area 0.03 + 0.32 + 0.5.
	if !strings.Contains(svg, "AUC 0.850") {
		t.Errorf("AUC label missing or wrong:\n%s", svg)
	}
	if !strings.Contains(svg, `d="M48.0 254.0L72.0 110.0L168.0 14.0L288.0 14.0"`) {
		t.Errorf("curve path unexpected:\n%s", svg)
	}
	if got := string(ROC("x", nil)); !strings.Contains(got, "No ROC points recorded.") || strings.Contains(got, "<svg") {
		t.Errorf("ROC empty state: %s", got)
	}
}

// checkWellFormed parses the document as XML, which html/template output is
// apart from the doctype, void elements and the HTML entities it does not
// use; it catches unbalanced or broken tags without an HTML parser module.
func checkWellFormed(t *testing.T, doc string) {
	t.Helper()
	doc = strings.TrimPrefix(doc, "<!DOCTYPE html>")
	doc = regexp.MustCompile(`<(meta)([^>]*[^/])>`).ReplaceAllString(doc, "<$1$2/>")
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	d.Entity = map[string]string{}
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := strings.Split(doc, "\n")
			t.Fatalf("HTML is not well-formed: %v (around %q)", err, lineAt(line, d))
		}
		switch e := tok.(type) {
		case xml.StartElement:
			stack = append(stack, e.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements: %v", stack)
	}
}

func lineAt(lines []string, d *xml.Decoder) string {
	l, _ := d.InputPos()
	if l-1 < len(lines) && l > 0 {
		return lines[l-1]
	}
	return ""
}

// htmlSection returns the HTML of the <section id=id>.
func htmlSection(t *testing.T, doc, id string) string {
	t.Helper()
	start := strings.Index(doc, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q", id)
	}
	end := strings.Index(doc[start:], "</section>")
	return doc[start : start+end]
}
