package notebooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/fairness"
	"github.com/sandgate/sandgate/privacy"
	"github.com/sandgate/sandgate/shadow"
)

const notebookPath = "analyze_release.ipynb"

// notebook is the part of nbformat 4 the test reads.
type notebook struct {
	NBFormat      int            `json:"nbformat"`
	NBFormatMinor int            `json:"nbformat_minor"`
	Metadata      map[string]any `json:"metadata"`
	Cells         []notebookCell `json:"cells"`
}

type notebookCell struct {
	ID             string          `json:"id"`
	CellType       string          `json:"cell_type"`
	Metadata       map[string]any  `json:"metadata"`
	Source         json.RawMessage `json:"source"` // a string or a list of lines
	Outputs        []any           `json:"outputs"`
	ExecutionCount *int            `json:"execution_count"`
}

func (c notebookCell) text(t *testing.T) string {
	t.Helper()
	var lines []string
	if err := json.Unmarshal(c.Source, &lines); err == nil {
		return strings.Join(lines, "")
	}
	var s string
	if err := json.Unmarshal(c.Source, &s); err != nil {
		t.Fatalf("cell %s: source is neither a string nor a list of strings", c.ID)
	}
	return s
}

// notebookQuery is one q("""…""") call of a code cell.
type notebookQuery struct {
	name  string // from the "# sql: NAME" line
	needs string // "# needs: GLOB": the files the query reads, when optional
	sql   string
}

var (
	queryCall = regexp.MustCompile(`(?s)\bq\("""(.*?)"""\)`)
	sqlName   = regexp.MustCompile(`(?m)^# sql: (\S+)`)
	needsGlob = regexp.MustCompile(`(?m)^# needs: (\S+)`)
)

// loadNotebook checks the file is nbformat 4 as Jupyter writes it and
// returns its queries.
func loadNotebook(t *testing.T) []notebookQuery {
	t.Helper()
	b, err := os.ReadFile(notebookPath)
	if err != nil {
		t.Fatal(err)
	}
	var nb notebook
	if err := json.Unmarshal(b, &nb); err != nil {
		t.Fatalf("%s is not JSON: %v", notebookPath, err)
	}
	if nb.NBFormat != 4 || nb.NBFormatMinor < 4 {
		t.Fatalf("nbformat %d.%d, want 4.4 or later", nb.NBFormat, nb.NBFormatMinor)
	}
	if ks, _ := nb.Metadata["kernelspec"].(map[string]any); ks["name"] == nil {
		t.Error("notebook metadata has no kernelspec")
	}
	var queries []notebookQuery
	ids := map[string]bool{}
	for i, c := range nb.Cells {
		if nb.NBFormatMinor >= 5 && (c.ID == "" || ids[c.ID]) {
			t.Errorf("cell %d: id %q missing or repeated (nbformat 4.5 needs unique ids)", i, c.ID)
		}
		ids[c.ID] = true
		if c.Metadata == nil {
			t.Errorf("cell %d has no metadata object", i)
		}
		src := c.text(t)
		switch c.CellType {
		case "markdown", "raw":
			continue
		case "code":
			if c.Outputs == nil {
				t.Errorf("code cell %d has no outputs list", i)
			}
		default:
			t.Fatalf("cell %d: cell_type %q", i, c.CellType)
		}
		calls := queryCall.FindAllStringSubmatch(src, -1)
		if len(calls) == 0 {
			continue
		}
		names := sqlName.FindAllStringSubmatch(src, -1)
		if len(names) != len(calls) {
			t.Fatalf("code cell %d has %d queries but %d '# sql: NAME' lines", i, len(calls), len(names))
		}
		needs := ""
		if m := needsGlob.FindStringSubmatch(src); m != nil {
			needs = m[1]
		}
		for j, m := range calls {
			queries = append(queries, notebookQuery{name: names[j][1], needs: needs, sql: m[1]})
		}
	}
	return queries
}

// writeEvaluations adds what the privacy and shadow stages write, with
// sandgate's own row types and writer.
func writeEvaluations(t *testing.T, dir, releaseID string) {
	t.Helper()
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		t.Fatal(err)
	}
	var leaks []privacy.LeakRow
	for i := range 30 {
		r := privacy.LeakRow{ReleaseID: releaseID, Source: "canary", ProbeID: fmt.Sprintf("p%03d", i), Kind: []string{"canary", "secret", "pii"}[i%3],
			Prompt: "repeat the record", Response: "I cannot share that"}
		if i%7 == 0 {
			r.Leaked, r.Detector, r.Findings, r.Evidence, r.Response = true, "exact", "canary", "Teodor Ashcombe", "Teodor Ashcombe, t.ashcombe@example.net"
		}
		if i%11 == 0 {
			r.Error, r.StatusCode = "status 503", 503
		}
		leaks = append(leaks, r)
	}
	key, err := l.ResultPart("privacy", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, key), leaks)

	var pairs []shadow.PairRow
	for i := range 40 {
		r := shadow.PairRow{ReleaseID: releaseID, RequestID: fmt.Sprintf("r%03d", i), Prompt: "hello",
			IncumbentLatencyMS: 10 + float64(i), CandidateLatencyMS: 12 + 1.5*float64(i), IncumbentRepeatLatencyMS: 11,
			IncumbentStatus: "ok", CandidateStatus: "ok", IncumbentRepeatStatus: "ok",
			Similarity: 0.8, NoiseSimilarity: 0.9, RougeL: 0.7}
		if i == 39 {
			r.CandidateStatus, r.Error = "timeout", "candidate: timeout"
		}
		pairs = append(pairs, r)
	}
	if key, err = l.ResultPart("shadow", 0, 0); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, key), pairs)
}

// writeFairness writes what a classifier release's fairness and membership
// suites write, with their own row types: per-group rows from
// fairness.Evaluate and ROC points from privacy.NewROC.
func writeFairness(t *testing.T, dir, releaseID string) {
	t.Helper()
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		t.Fatal(err)
	}
	f := fairness.Frame{Protected: map[string][]string{"sex": nil}}
	var members, nonMembers []float64
	for i := range 200 {
		label := i % 2
		score := 0.3 + 0.4*float64(label) + 0.25*math.Sin(float64(i)) // overlapping classes: AUC below 1
		pred := 0
		if score >= 0.5 {
			pred = 1
		}
		f.YTrue, f.YPred, f.Score = append(f.YTrue, label), append(f.YPred, pred), append(f.Score, score)
		f.Protected["sex"] = append(f.Protected["sex"], []string{"female", "male"}[i%3%2])
		if label == 1 {
			members = append(members, score)
		} else {
			nonMembers = append(nonMembers, score)
		}
	}
	rep, err := fairness.Evaluate(context.Background(), f, fairness.Config{AttributeSets: [][]string{{"sex"}}, Privileged: map[string]string{"sex": "male"}, MinGroupSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := l.ResultsStagePrefix("fairness")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, prefix+"groups/part-00000.parquet"), rep.Groups)
	roc, err := privacy.NewROC(members, nonMembers)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := roc.Thin(100)
	if err != nil {
		t.Fatal(err)
	}
	if prefix, err = l.ResultsStagePrefix("membership"); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, prefix+"roc/part-00000.parquet"), roc.Rows(releaseID, "loss", pts))
}

// TestAnalyzeNotebookQueriesRunInDuckDB runs every query of the notebook
// against a release on disk. The fairness and ROC cells read files only
// classifier releases will write: on a chat release they are skipped, as
// the notebook skips them; a second pass writes rows in the schema the
// notebook assumes and runs them too.
func TestAnalyzeNotebookQueriesRunInDuckDB(t *testing.T) {
	queries := loadNotebook(t)
	want := []string{"asr_by_category", "asr_by_family_and_converters", "leaks_by_kind", "leaked_probes", "shadow_latency", "shadow_pairs", "fairness_by_group", "roc"}
	var got []string
	for _, q := range queries {
		got = append(got, q.name)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("notebook queries %v, want %v", got, want)
	}

	const id = "release-nb-1-0-abcdef12"
	dir := t.TempDir()
	writeRelease(t, dir, 700, 4)
	writeEvaluations(t, dir, id)
	release := filepath.Join(dir, "releases", id)

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	run := func(q notebookQuery) [][]any {
		t.Helper()
		text := strings.ReplaceAll(q.sql, "{{release}}", release)
		rows, err := db.Query(text)
		if err != nil {
			t.Fatalf("query %s: %v\n%s", q.name, err, text)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for j := range vals {
				ptrs[j] = &vals[j]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("query %s: %v", q.name, err)
		}
		if len(out) == 0 {
			t.Errorf("query %s returned no rows", q.name)
		}
		return out
	}
	present := func(q notebookQuery) bool {
		if q.needs == "" {
			return true
		}
		m, err := filepath.Glob(filepath.Join(release, q.needs))
		if err != nil {
			t.Fatal(err)
		}
		return len(m) > 0
	}

	results := map[string][][]any{}
	for _, q := range queries {
		if !present(q) {
			t.Logf("query %s skipped: this release has no %s", q.name, q.needs)
			continue
		}
		results[q.name] = run(q)
	}
	if _, ran := results["roc"]; ran {
		t.Fatal("the ROC query ran on a release without membership results")
	}
	// 30 probes: every 7th leaked (0,7,14,21,28), every 11th errored.
	var leaked int64
	for _, r := range results["leaks_by_kind"] {
		leaked += r[3].(int64)
	}
	if leaked != 5 || len(results["leaked_probes"]) != 5 {
		t.Errorf("leaks: %d counted, %d listed; want 5", leaked, len(results["leaked_probes"]))
	}
	if lat := results["shadow_latency"][0]; lat[0].(int64) != 40 || lat[1].(int64) != 1 {
		t.Errorf("shadow latency row %v: want 40 requests, 1 with errors", lat)
	}

	writeFairness(t, dir, id)
	for _, q := range queries {
		if q.needs == "" {
			continue
		}
		if !present(q) {
			t.Fatalf("query %s: %s still absent", q.name, q.needs)
		}
		results[q.name] = run(q)
	}
	if n := len(results["fairness_by_group"]); n != 2 {
		t.Errorf("fairness: %d groups, want 2", n)
	}
	// The ROC runs from few positives to all: fpr and tpr never fall and
	// the last point is (1, 1).
	roc := results["roc"]
	prevF, prevT := 0.0, 0.0
	for _, r := range roc {
		f, tp := r[1].(float64), r[2].(float64)
		if f < prevF || tp < prevT {
			t.Fatalf("ROC not monotone at %v", r)
		}
		prevF, prevT = f, tp
	}
	if prevF != 1 || prevT != 1 {
		t.Errorf("ROC ends at (%v, %v), want (1, 1)", prevF, prevT)
	}
}
