package datasets

import (
	"fmt"
	"strings"
)

// MaxReleaseIDLen keeps a release id usable as a Temporal workflow id, a
// Kubernetes label value and a DNS label all at once.
const MaxReleaseIDLen = 63

// ValidateReleaseID checks that id is lowercase [a-z0-9-], 1..63 characters,
// starting and ending with a letter or digit.
func ValidateReleaseID(id string) error {
	if err := validateSegment(id, MaxReleaseIDLen, false); err != nil {
		return fmt.Errorf("datasets: release id: %w (expected e.g. release-mymodel-1-2-3-ab12cd)", err)
	}
	return nil
}

// ValidateName checks a dataset or stage name: lowercase [a-z0-9_-],
// 1..63 characters. Underscores are allowed because stage names are often
// Go-ish identifiers ("red_team").
func ValidateName(name string) error {
	return validateSegment(name, 63, true)
}

func validateSegment(s string, maxLen int, underscore bool) error {
	allowed := "lowercase letters, digits and '-'"
	if underscore {
		allowed = "lowercase letters, digits, '-' and '_'"
	}
	if s == "" {
		return fmt.Errorf("empty; use %s", allowed)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%q is %d characters, the limit is %d", s, len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || underscore && c == '_'
		if !ok {
			return fmt.Errorf("%q has %q at position %d; use %s", s, rune(c), i, allowed)
		}
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return fmt.Errorf("%q must start and end with a letter or digit", s)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Layout computes every object key a release writes. Keys are a pure
// function of (release, name, shard, part), so a retried activity overwrites
// its own objects instead of adding rows.
//
//	releases/<id>/datasets/<name>/part-00000.parquet
//	releases/<id>/datasets/<name>/manifest.json
//	releases/<id>/results/<stage>/shard=007/part-00000.parquet
//	releases/<id>/results/<stage>/manifest.json
//	releases/<id>/snapshots/<name>
//	releases/<id>/audit/<name>
//	releases/<id>/report/report.md, report.json
//
// The zero Layout is invalid; use NewLayout.
type Layout struct {
	release string
}

// NewLayout validates the release id.
func NewLayout(releaseID string) (Layout, error) {
	if err := ValidateReleaseID(releaseID); err != nil {
		return Layout{}, err
	}
	return Layout{release: releaseID}, nil
}

// ReleaseID returns the id the layout was built with.
func (l Layout) ReleaseID() string { return l.release }

// Prefix is "releases/<id>/", the prefix of every key of the release.
func (l Layout) Prefix() string { return "releases/" + l.release + "/" }

// DatasetsPrefix is "releases/<id>/datasets/".
func (l Layout) DatasetsPrefix() string { return l.Prefix() + "datasets/" }

// ResultsPrefix is "releases/<id>/results/".
func (l Layout) ResultsPrefix() string { return l.Prefix() + "results/" }

// SnapshotsPrefix is "releases/<id>/snapshots/".
func (l Layout) SnapshotsPrefix() string { return l.Prefix() + "snapshots/" }

// AuditPrefix is "releases/<id>/audit/".
func (l Layout) AuditPrefix() string { return l.Prefix() + "audit/" }

// ReportPrefix is "releases/<id>/report/".
func (l Layout) ReportPrefix() string { return l.Prefix() + "report/" }

// DatasetPart is the key of part number part of dataset name
// ("datasets/<name>/part-00000.parquet").
func (l Layout) DatasetPart(name string, part int) (string, error) {
	if err := l.check("dataset", name, part); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%s/part-%05d.parquet", l.DatasetsPrefix(), name, part), nil
}

// DatasetManifest is the key of the dataset's manifest.json.
func (l Layout) DatasetManifest(name string) (string, error) {
	if err := l.check("dataset", name, 0); err != nil {
		return "", err
	}
	return l.DatasetsPrefix() + name + "/manifest.json", nil
}

// ResultPart is the key of one shard's result part, Hive-partitioned by
// shard so notebooks can filter on it ("results/<stage>/shard=007/part-00000.parquet").
// Shards past 999 get more digits; readers parse shard= as an integer.
func (l Layout) ResultPart(stage string, shard, part int) (string, error) {
	if err := l.check("stage", stage, part); err != nil {
		return "", err
	}
	if shard < 0 {
		return "", fmt.Errorf("datasets: shard %d is negative", shard)
	}
	return fmt.Sprintf("%s%s/shard=%03d/part-%05d.parquet", l.ResultsPrefix(), stage, shard, part), nil
}

// ResultsStagePrefix is "results/<stage>/", what a notebook globs.
func (l Layout) ResultsStagePrefix(stage string) (string, error) {
	if err := l.check("stage", stage, 0); err != nil {
		return "", err
	}
	return l.ResultsPrefix() + stage + "/", nil
}

// ResultManifest is the key of the stage's manifest.json.
func (l Layout) ResultManifest(stage string) (string, error) {
	if err := l.check("stage", stage, 0); err != nil {
		return "", err
	}
	return l.ResultsPrefix() + stage + "/manifest.json", nil
}

// Snapshot is the key of a forensic snapshot object (file is a relative
// path such as "sandbox-1/transcript.jsonl").
func (l Layout) Snapshot(file string) (string, error) {
	return l.under(l.SnapshotsPrefix(), "snapshot", file)
}

// Audit is the key of an audit object (e.g. "log.jsonl", "attestation.json").
func (l Layout) Audit(file string) (string, error) {
	return l.under(l.AuditPrefix(), "audit", file)
}

// ReportMarkdown is "releases/<id>/report/report.md".
func (l Layout) ReportMarkdown() string { return l.ReportPrefix() + "report.md" }

// ReportJSON is "releases/<id>/report/report.json".
func (l Layout) ReportJSON() string { return l.ReportPrefix() + "report.json" }

func (l Layout) check(kind, name string, part int) error {
	if l.release == "" {
		return fmt.Errorf("datasets: zero Layout; build it with NewLayout")
	}
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("datasets: %s name: %w", kind, err)
	}
	if part < 0 || part > 99999 {
		return fmt.Errorf("datasets: part %d out of range 0..99999", part)
	}
	return nil
}

// under validates a free-form relative path: no empty, "." or ".."
// segments, so a key can never escape the release prefix.
func (l Layout) under(prefix, kind, file string) (string, error) {
	if l.release == "" {
		return "", fmt.Errorf("datasets: zero Layout; build it with NewLayout")
	}
	if file == "" {
		return "", fmt.Errorf("datasets: empty %s file name", kind)
	}
	for _, seg := range strings.Split(file, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("datasets: %s file %q must be a relative path without empty, '.' or '..' segments", kind, file)
		}
	}
	if strings.ContainsAny(file, "\\\x00") {
		return "", fmt.Errorf("datasets: %s file %q contains a backslash or NUL", kind, file)
	}
	return prefix + file, nil
}
