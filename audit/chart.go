package audit

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart colours. The primary and reference colours are used only inside
// charts, never in the page chrome, so a screenshot test can find the charts
// by colour alone; keep them distinct from the banner colours in report.html.
const (
	colorPrimary   = "#3b5bdb" // the candidate, or the measured value
	colorReference = "#adb5bd" // the incumbent, or the noise floor
	colorFail      = "#e8590c" // a bar that fails a gate rule
	colorInk       = "#212529"
	colorGrid      = "#e9ecef"
	colorMuted     = "#868e96"
)

// Bar is one row of a horizontal bar chart.
type Bar struct {
	Label string
	Value float64
	// Lo and Hi draw an interval whisker when HasInterval is set.
	Lo, Hi      float64
	HasInterval bool
	// Limit draws a threshold tick across the row when HasLimit is set,
	// e.g. the gate rule's maximum for this category.
	Limit    float64
	HasLimit bool
	Fail     bool   // draw the bar in the failure colour
	Text     string // value label at the end of the bar; Format(Value) when empty
	Tooltip  string // hover text; a description of the bar when empty
}

// BarChart is a horizontal bar chart, one labelled row per Bar, in the
// order given (callers sort, so "worst first" is their decision).
type BarChart struct {
	Title  string // accessible name of the chart
	Bars   []Bar
	Max    float64              // axis maximum; 0 picks a round number above the data
	Format func(float64) string // value and axis labels; %.3g when nil
	Empty  string               // shown instead of the chart when Bars is empty
	Width  int                  // pixels; 0 means 560
	Unit   string               // appended to the axis caption, e.g. "ASR"
	Cap    float64              // upper bound for an automatic Max (1 for rates); 0 means none
}

// Series is one coloured set of bars in a grouped bar chart: Values[i]
// belongs to Groups[i]. Reference series are drawn in the neutral colour.
type Series struct {
	Name      string
	Values    []float64
	Reference bool
}

// GroupedBarChart is a vertical bar chart with one cluster per group and
// one bar per series in each cluster, e.g. latency p50/p95/p99 for the
// incumbent and the candidate.
type GroupedBarChart struct {
	Title  string
	Groups []string
	Series []Series
	Max    float64
	Cap    float64
	Format func(float64) string
	Empty  string
	Width  int // pixels; 0 means 520
	Unit   string
}

// ROCPoint is one operating point of a classifier, e.g. a membership
// inference attack at one score threshold. It is an alias so that callers
// may pass a plain []struct{FPR, TPR float64}.
type ROCPoint = struct{ FPR, TPR float64 }

// svgBuf accumulates SVG markup. Every string that may come from a model,
// an attacker or a config goes through text or attr, which escape it; the
// numbers are formatted here and cannot carry markup.
type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, args ...any) { fmt.Fprintf(b, format, args...) }

func (b *svgBuf) text(x, y int, anchor, class, s string) {
	b.f(`<text x="%d" y="%d" text-anchor="%s" class="%s">%s</text>`, x, y, anchor, class, svgEsc(s))
}

func (b *svgBuf) open(title string, w, h int) {
	b.f(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="%d" height="%d" viewBox="0 0 %d %d" aria-label="%s">`, w, h, w, h, svgEsc(title))
	b.f(`<title>%s</title>`, svgEsc(title))
}

func (b *svgBuf) html() template.HTML {
	b.WriteString("</svg>")
	return template.HTML(b.String()) // #nosec: built from escaped text and formatted numbers only
}

func svgEsc(s string) string { return template.HTMLEscapeString(s) }

func emptyChart(msg, fallback string) template.HTML {
	return template.HTML(`<p class="empty">` + svgEsc(cmp.Or(msg, fallback)) + `</p>`)
}

// drawable reports whether v can be drawn; NaN or an infinity in an SVG
// attribute is a console error in the browser and a broken chart.
func drawable(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func defaultFormat(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// niceAxis picks an axis from 0 to top in four or five round steps (1, 2,
// 2.5 or 5 times a power of ten) covering v; top is clamped to capAt when
// set, for rates that cannot exceed 1.
func niceAxis(v, capAt float64) (top, step float64) {
	if !drawable(v) || v <= 0 {
		v = cmp.Or(capAt, 1)
	}
	raw := v / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	top = math.Ceil(v/step-1e-9) * step
	if capAt > 0 && top > capAt {
		top = capAt
	}
	return top, step
}

// truncLabel shortens labels that would run into the plot; the full text
// stays in the tooltip.
func truncLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// HBarChart draws c as an inline SVG, or the empty message when there is
// nothing to draw.
func HBarChart(c BarChart) template.HTML {
	if len(c.Bars) == 0 {
		return emptyChart(c.Empty, "No data.")
	}
	format := c.Format
	if format == nil {
		format = defaultFormat
	}
	const (
		labelW = 130
		rowH   = 30
		barH   = 16
		top    = 10
		axisH  = 34
		rightW = 86 // room for the value label after the longest bar
	)
	w := cmp.Or(c.Width, 560)
	plotW := w - labelW - rightW
	h := top + rowH*len(c.Bars) + axisH

	maxV := c.Max
	if maxV <= 0 {
		for _, b := range c.Bars {
			for _, v := range []float64{b.Value, ifSet(b.HasInterval, b.Hi), ifSet(b.HasLimit, b.Limit)} {
				if drawable(v) {
					maxV = max(maxV, v)
				}
			}
		}
	}
	maxV, step := niceAxis(maxV, c.Cap)
	x := func(v float64) int {
		v = min(max(v, 0), maxV)
		return labelW + int(math.Round(v/maxV*float64(plotW)))
	}

	var b svgBuf
	b.open(c.Title, w, h)
	plotBottom := top + rowH*len(c.Bars)
	for i := 0; float64(i)*step <= maxV*(1+1e-9); i++ {
		v := float64(i) * step
		gx := x(v)
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, gx, top, gx, plotBottom, colorGrid)
		b.text(gx, plotBottom+16, "middle", "tick", format(v))
	}
	if c.Unit != "" {
		b.text(labelW+plotW/2, plotBottom+31, "middle", "axis", c.Unit)
	}
	for i, bar := range c.Bars {
		cy := top + rowH*i + rowH/2
		tip := cmp.Or(bar.Tooltip, barTooltip(bar, format))
		b.f(`<g class="bar-row"><title>%s</title>`, svgEsc(tip))
		b.text(labelW-8, cy+4, "end", "label", truncLabel(bar.Label, 18))
		end := labelW
		if drawable(bar.Value) {
			fill := colorPrimary
			if bar.Fail {
				fill = colorFail
			}
			end = x(bar.Value)
			b.f(`<rect class="bar" x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, labelW, cy-barH/2, end-labelW, barH, fill)
		}
		if bar.HasInterval && drawable(bar.Lo) && drawable(bar.Hi) {
			lo, hi := x(bar.Lo), x(bar.Hi)
			b.f(`<path class="whisker" d="M%d %dH%dM%d %dV%dM%d %dV%d" stroke="%s" stroke-width="1.5" fill="none"/>`,
				lo, cy, hi, lo, cy-5, cy+5, hi, cy-5, cy+5, colorInk)
			end = max(end, hi)
		}
		if bar.HasLimit && drawable(bar.Limit) {
			lx := x(bar.Limit)
			b.f(`<line class="limit" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="3 2"/>`,
				lx, cy-rowH/2+2, lx, cy+rowH/2-2, colorInk)
			end = max(end, lx)
		}
		label := bar.Text
		if label == "" {
			label = "n/a"
			if drawable(bar.Value) {
				label = format(bar.Value)
			}
		}
		b.text(end+6, cy+4, "start", "value", label)
		b.WriteString(`</g>`)
	}
	return b.html()
}

func ifSet(ok bool, v float64) float64 {
	if ok {
		return v
	}
	return 0
}

func barTooltip(bar Bar, format func(float64) string) string {
	s := bar.Label + ": "
	if drawable(bar.Value) {
		s += format(bar.Value)
	} else {
		s += "n/a"
	}
	if bar.HasInterval && drawable(bar.Lo) && drawable(bar.Hi) {
		s += " (95% interval " + format(bar.Lo) + "–" + format(bar.Hi) + ")"
	}
	if bar.HasLimit && drawable(bar.Limit) {
		s += "; limit " + format(bar.Limit)
	}
	return s
}

// GroupedBars draws c as an inline SVG with a legend, or the empty message
// when there is nothing to draw.
func GroupedBars(c GroupedBarChart) template.HTML {
	if len(c.Groups) == 0 || len(c.Series) == 0 {
		return emptyChart(c.Empty, "No data.")
	}
	format := c.Format
	if format == nil {
		format = defaultFormat
	}
	const (
		leftW   = 48
		top     = 34 // legend
		plotH   = 170
		bottomH = 44
		barW    = 28
		gap     = 4
	)
	w := cmp.Or(c.Width, 520)
	h := top + plotH + bottomH
	plotW := w - leftW - 10
	groupW := plotW / len(c.Groups)

	maxV := c.Max
	if maxV <= 0 {
		for _, s := range c.Series {
			for _, v := range s.Values {
				if drawable(v) {
					maxV = max(maxV, v)
				}
			}
		}
	}
	maxV, step := niceAxis(maxV, c.Cap)
	y := func(v float64) int {
		v = min(max(v, 0), maxV)
		return top + plotH - int(math.Round(v/maxV*plotH))
	}

	var b svgBuf
	b.open(c.Title, w, h)
	lx := leftW
	for _, s := range c.Series {
		b.f(`<rect class="legend" x="%d" y="8" width="12" height="12" fill="%s"/>`, lx, seriesColor(s))
		name := truncLabel(s.Name, 40)
		b.text(lx+17, 18, "start", "label", name)
		lx += 32 + 7*len([]rune(name)) // about 7 px a character at 12 px
	}
	for i := 0; float64(i)*step <= maxV*(1+1e-9); i++ {
		v := float64(i) * step
		gy := y(v)
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, leftW, gy, leftW+plotW, gy, colorGrid)
		b.text(leftW-6, gy+4, "end", "tick", format(v))
	}
	clusterW := len(c.Series)*barW + (len(c.Series)-1)*gap
	for gi, g := range c.Groups {
		gx := leftW + gi*groupW + (groupW-clusterW)/2
		for si, s := range c.Series {
			bx := gx + si*(barW+gap)
			v := math.NaN()
			if gi < len(s.Values) {
				v = s.Values[gi]
			}
			if !drawable(v) {
				b.f(`<g class="bar-row"><title>%s</title>`, svgEsc(s.Name+", "+g+": n/a"))
				b.text(bx+barW/2, top+plotH-4, "middle", "value", "n/a")
				b.WriteString(`</g>`)
				continue
			}
			by := y(v)
			b.f(`<g class="bar-row"><title>%s</title>`, svgEsc(s.Name+", "+g+": "+format(v)))
			b.f(`<rect class="bar" x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, bx, by, barW, top+plotH-by, seriesColor(s))
			b.text(bx+barW/2, by-4, "middle", "value", format(v))
			b.WriteString(`</g>`)
		}
		b.text(leftW+gi*groupW+groupW/2, top+plotH+18, "middle", "label", truncLabel(g, 22))
	}
	b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, leftW, top+plotH, leftW+plotW, top+plotH, colorMuted)
	if c.Unit != "" {
		b.text(leftW+plotW/2, top+plotH+36, "middle", "axis", c.Unit)
	}
	return b.html()
}

func seriesColor(s Series) string {
	if s.Reference {
		return colorReference
	}
	return colorPrimary
}

// ROC draws a receiver operating characteristic curve (TPR against FPR,
// both 0..1) with the chance diagonal and the area under the curve. Points
// are sorted by FPR and closed at (0,0) and (1,1); points outside 0..1 or
// not finite are dropped, since they are not operating points.
func ROC(title string, points []ROCPoint) template.HTML {
	pts := make([]ROCPoint, 0, len(points)+2)
	for _, p := range points {
		if drawable(p.FPR) && drawable(p.TPR) && p.FPR >= 0 && p.FPR <= 1 && p.TPR >= 0 && p.TPR <= 1 {
			pts = append(pts, p)
		}
	}
	if len(pts) == 0 {
		return emptyChart("No ROC points recorded.", "")
	}
	pts = append(pts, ROCPoint{0, 0}, ROCPoint{1, 1})
	slices.SortFunc(pts, func(a, b ROCPoint) int { return cmp.Or(cmp.Compare(a.FPR, b.FPR), cmp.Compare(a.TPR, b.TPR)) })
	auc := 0.0
	for i := 1; i < len(pts); i++ {
		auc += (pts[i].FPR - pts[i-1].FPR) * (pts[i].TPR + pts[i-1].TPR) / 2
	}

	const (
		left, top, size, bottom, right = 48, 14, 240, 42, 150
	)
	w, h := left+size+right, top+size+bottom
	px := func(v float64) float64 { return float64(left) + v*size }
	py := func(v float64) float64 { return float64(top) + (1-v)*size }

	var b svgBuf
	b.open(title, w, h)
	for i := 0; i <= 4; i++ {
		v := float64(i) / 4
		gx, gy := int(px(v)), int(py(v))
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, gx, top, gx, top+size, colorGrid)
		b.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, left, gy, left+size, gy, colorGrid)
		b.text(gx, top+size+16, "middle", "tick", defaultFormat(v))
		b.text(left-6, gy+4, "end", "tick", defaultFormat(v))
	}
	b.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`, left, top, size, size, colorMuted)
	b.f(`<line class="chance" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-dasharray="4 3"/>`, left, top+size, left+size, top, colorReference)
	var d strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f %.1f", cmd, px(p.FPR), py(p.TPR))
	}
	b.f(`<path class="curve" d="%s" fill="none" stroke="%s" stroke-width="2.5"/>`, d.String(), colorPrimary)
	b.text(left+size/2, top+size+34, "middle", "axis", "false positive rate")
	b.f(`<text x="12" y="%d" text-anchor="middle" class="axis" transform="rotate(-90 12 %d)">true positive rate</text>`, top+size/2, top+size/2)
	b.text(left+size+14, top+20, "start", "label", "AUC "+strconv.FormatFloat(auc, 'f', 3, 64))
	b.text(left+size+14, top+38, "start", "tick", "0.5 = chance")
	return b.html()
}
