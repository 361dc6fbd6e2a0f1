package audit

import (
	"bytes"
	"fmt"
	"slices"
)

// SuiteSection is one test suite of a classifier or regressor release
// (fairness, robustness, membership inference) as the report shows it:
// headline metrics with the convention they follow, plain-language notes,
// tables (per-group rates, ROC points) and example files a person can open.
type SuiteSection struct {
	Name    string `json:"name"`    // "fairness", "robustness", "membership"
	Summary string `json:"summary"` // one sentence
	// Metrics are the gate metrics the suite produced (names as in gate).
	Metrics map[string]float64 `json:"metrics"`
	// Notes are plain-language statements, e.g. the explanation of an ε
	// lower bound with its confidence level and the thresholds scanned.
	Notes    []string   `json:"notes,omitempty"`
	Tables   []Table    `json:"tables,omitempty"`
	Examples []Artifact `json:"examples,omitempty"`
}

// Table is a small table of already-formatted cells.
type Table struct {
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

func writeSuites(b *bytes.Buffer, r Report) {
	for _, s := range r.Suites {
		w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
		w("## %s\n\n", md(title(s.Name)))
		if s.Summary != "" {
			w("%s\n\n", md(s.Summary))
		}
		for _, n := range s.Notes {
			w("- %s\n", md(n))
		}
		if len(s.Notes) > 0 {
			w("\n")
		}
		if len(s.Metrics) > 0 {
			w("| metric | value |\n|---|---|\n")
			for _, k := range sortedKeys(s.Metrics) {
				w("| %s | %s |\n", cell(k), num(s.Metrics[k]))
			}
			w("\n")
		}
		for _, t := range s.Tables {
			writeTable(b, t)
		}
		if len(s.Examples) > 0 {
			w("Examples to look at:\n\n")
			for _, e := range s.Examples {
				w("- %s: `%s`\n", md(e.Name), objectURL(r, e.Key))
			}
			w("\n")
		}
	}
}

func writeTable(b *bytes.Buffer, t Table) {
	if len(t.Columns) == 0 {
		return
	}
	if t.Title != "" {
		fmt.Fprintf(b, "%s:\n\n", md(t.Title))
	}
	b.WriteString("|")
	for _, c := range t.Columns {
		fmt.Fprintf(b, " %s |", cell(c))
	}
	b.WriteString("\n|")
	for range t.Columns {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		b.WriteString("|")
		for i := range t.Columns {
			v := ""
			if i < len(row) {
				v = row[i]
			}
			fmt.Fprintf(b, " %s |", cell(v))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func title(s string) string {
	switch s {
	case "fairness":
		return "Fairness"
	case "robustness":
		return "Robustness"
	case "membership":
		return "Membership inference and empirical privacy"
	}
	return s
}

// suiteView is a suite for the HTML template.
type suiteView struct {
	SuiteSection
	Title    string
	Metrics  []evidenceKV
	Examples []artifactRow
}

func newSuiteViews(r Report) []suiteView {
	var out []suiteView
	for _, s := range r.Suites {
		v := suiteView{SuiteSection: s, Title: title(s.Name)}
		for _, k := range sortedKeys(s.Metrics) {
			v.Metrics = append(v.Metrics, evidenceKV{Key: k, Value: num(s.Metrics[k])})
		}
		for _, e := range s.Examples {
			v.Examples = append(v.Examples, artifactRow{Artifact: e, URL: objectURL(r, e.Key)})
		}
		out = append(out, v)
	}
	return out
}
