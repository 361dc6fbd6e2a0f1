package audit

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const chromiumBin = "/usr/bin/chromium"

// chromium returns the browser binary. Without it the test skips on a
// developer machine, but fails under CI=true: there a skipped browser test
// would silently stop checking that the report renders.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s is missing (%v): install the Debian package chromium (apt-get install -y chromium)", chromiumBin, err)
		}
		t.Skipf("skipping browser test: %s not found; install the Debian package chromium (apt-get install -y chromium) to run it", chromiumBin)
	}
	return chromiumBin
}

// runChromium runs one headless browser with a fresh profile and returns
// its combined output. The flags keep it from talking to the network or
// updating itself, so the test is hermetic and fast.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--force-color-profile=srgb", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// consoleErrors returns the page's console lines from a chromium log.
// The report runs no script, so any console message is a finding: an
// uncaught error, a resource the CSP refused (the report would not be
// self-contained), or an SVG attribute the browser could not parse.
// Chromium logs them all, console.error included, as
// "[pid:tid:time:INFO:CONSOLE:line] "message", source: …" (older builds:
// "CONSOLE(line)").
func consoleErrors(log string) []string {
	var bad []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, ":CONSOLE:") || strings.Contains(line, ":CONSOLE(") {
			bad = append(bad, line)
		}
	}
	return bad
}

func TestRenderHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	doc, err := RenderHTML(sampleReport(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	shot := filepath.Join(dir, "report.png")
	if err := os.WriteFile(page, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page

	// Three browsers, each with its own profile; in parallel they take
	// about as long as the slowest.
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		// The console check must be able to fail: a page with a script error
		// is caught by the same scan. Otherwise a change in chromium's log
		// format would turn the real check into a silent pass.
		control := filepath.Join(dir, "control.html")
		if err := os.WriteFile(control, []byte(`<!DOCTYPE html><title>c</title><script>throw new Error("control-error")</script>`), 0o644); err != nil {
			t.Fatal(err)
		}
		if log := runChromium(t, bin, "--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+control); len(consoleErrors(log)) == 0 {
			t.Fatalf("the console-error scan does not see a thrown error; chromium's log format changed?\n%s", log)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		t.Parallel()
		log := runChromium(t, bin, "--enable-logging=stderr", "--v=0", "--window-size=1280,2400", "--screenshot="+shot, url)
		if bad := consoleErrors(log); len(bad) > 0 {
			t.Errorf("console errors while rendering the report:\n%s", strings.Join(bad, "\n"))
		}
		if keep := os.Getenv("SANDGATE_REPORT_SCREENSHOT"); keep != "" {
			// For people judging the design: SANDGATE_REPORT_SCREENSHOT=/tmp/r.png
			// keeps the screenshot and the HTML next to it.
			b, err := os.ReadFile(shot)
			if err == nil {
				err = os.WriteFile(keep, b, 0o644)
			}
			if err == nil {
				err = os.WriteFile(strings.TrimSuffix(keep, filepath.Ext(keep))+".html", doc, 0o644)
			}
			if err != nil {
				t.Errorf("keep screenshot: %v", err)
			}
			t.Logf("screenshot at %s", keep)
		}
		checkChartPixels(t, shot)
	})

	t.Run("dom", func(t *testing.T) {
		t.Parallel()
		// The browser parsed the charts as SVG elements, not as text: every
		// bar in the source is an element in the live DOM.
		dom := runChromium(t, bin, "--dump-dom", url)
		for _, s := range []string{"<svg", `class="bar"`, `class="whisker"`, `class="bar-row"`} {
			want, got := strings.Count(string(doc), s), strings.Count(dom, s)
			if want == 0 || got != want {
				t.Errorf("DOM has %d × %s, the source %d", got, s, want)
			}
		}
	})
}

// checkChartPixels looks for the chart colours in the screenshot, below the
// verdict banner: a chart that failed to draw leaves only background there.
func checkChartPixels(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() != 2400 {
		t.Fatalf("screenshot is %dx%d, want 1280x2400", b.Dx(), b.Dy())
	}
	colours := map[string]int{colorPrimary: 0, colorReference: 0, colorFail: 0}
	rgb := map[string][3]uint8{}
	for c := range colours {
		rgb[c] = hexRGB(t, c)
	}
	firstRow := map[string]int{}
	rowsWithPrimary := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		inRow := false
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			p := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			for c, want := range rgb {
				if near(p, want) {
					if colours[c] == 0 {
						firstRow[c] = y
					}
					colours[c]++
					inRow = inRow || c == colorPrimary
				}
			}
		}
		if inRow {
			rowsWithPrimary++
		}
	}
	// Minimums from the sample: the LLM01 bar alone is ~60×16 px, each
	// shadow chart has three bars per series at least 28 px wide and tens of
	// px tall, LLM07 fails its rule (~30×16 px).
	min := map[string]int{colorPrimary: 3000, colorReference: 3000, colorFail: 300}
	for c, n := range colours {
		if n < min[c] {
			t.Errorf("screenshot has %d pixels of chart colour %s, want >= %d: chart not drawn?", n, c, min[c])
		}
		if n > 0 && firstRow[c] < 150 {
			t.Errorf("chart colour %s first appears at y=%d, inside the verdict banner", c, firstRow[c])
		}
	}
	if rowsWithPrimary < 60 {
		t.Errorf("bars span only %d pixel rows", rowsWithPrimary)
	}
	t.Logf("chart pixels: %v; rows with bars: %d", colours, rowsWithPrimary)
}

func hexRGB(t *testing.T, s string) [3]uint8 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil || len(s) != 7 {
		t.Fatalf("bad colour %q", s)
	}
	return [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}
}

// near allows for rounding in the browser's colour pipeline.
func near(a, b [3]uint8) bool {
	for i := range a {
		if d := int(a[i]) - int(b[i]); d < -3 || d > 3 {
			return false
		}
	}
	return true
}
