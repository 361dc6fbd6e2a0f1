// Package notebooks holds the notebook page's queries and the test that runs
// them through DuckDB, a reader independent of sandgate's writers.
package notebooks

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/redteam"
)

// writeRelease lays out a release the way the pipeline does: the prompt
// dataset in parts, and one attempt row per prompt in shard=NNN partitions.
func writeRelease(t *testing.T, dir string, prompts, shards int) {
	t.Helper()
	l, err := datasets.NewLayout("release-nb-1-0-abcdef12")
	if err != nil {
		t.Fatal(err)
	}
	rows := slices.Collect(datasets.Prompts(7, prompts, datasets.PromptOptions{}))
	per := (prompts + shards - 1) / shards
	for s := 0; s < shards; s++ {
		part := rows[s*per : min((s+1)*per, prompts)]
		key, err := l.DatasetPart("prompts", s)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, key), part)
		attempts := make([]redteam.AttemptRow, 0, len(part))
		for i, p := range part {
			outcome := redteam.Defended
			switch {
			case i%7 == 0:
				outcome = redteam.Breached
			case i%31 == 0:
				outcome = redteam.Errored
			}
			attempts = append(attempts, redteam.AttemptRow{PromptID: p.ID, PromptIndex: p.Index, Shard: int32(s), Family: p.Family,
				Category: p.Category, Converters: p.Converters, Goal: p.Goal, Outcome: outcome})
		}
		key, err = l.ResultPart("adversarial", s, 0)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, key), attempts)
	}
}

func write[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.WriteFile(path, slices.Values(rows), datasets.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// TestNotebookQueriesRunInDuckDB runs every SQL block of README.md.
func TestNotebookQueriesRunInDuckDB(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d sql blocks in README.md, want the 3 documented queries", len(blocks))
	}
	dir := t.TempDir()
	const prompts, shards = 700, 4
	writeRelease(t, dir, prompts, shards)
	release := filepath.Join(dir, "releases", "release-nb-1-0-abcdef12")

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, b := range blocks {
		q := strings.ReplaceAll(b[1], "{{release}}", release)
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("query %d: %v\n%s", i+1, err, q)
		}
		cols, _ := rows.Columns()
		n := 0
		var total int64
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for j := range vals {
				ptrs[j] = &vals[j]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if i == 1 { // rows per shard: the partition column must come from the path
				total += vals[1].(int64)
				if fmt.Sprint(vals[0]) != fmt.Sprintf("%03d", n) {
					t.Errorf("shard column %v, want %d", vals[0], n)
				}
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n == 0 {
			t.Errorf("query %d returned no rows", i+1)
		}
		if i == 1 && (n != shards || total != prompts) {
			t.Errorf("%d partitions holding %d rows, want %d holding %d", n, total, shards, prompts)
		}
	}
}
