package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/objstore"
)

// Record kinds. KindFinal closes a chain: Verify reports a chain without
// one as open, which is how a deleted tail is noticed.
const (
	KindStage     = "stage"
	KindDecision  = "decision"
	KindApproval  = "approval"
	KindOverride  = "override"
	KindRejection = "rejection"
	KindTeardown  = "teardown"
	KindConfig    = "config"
	KindFinal     = "final"
)

var kinds = []string{KindStage, KindDecision, KindApproval, KindOverride, KindRejection, KindTeardown, KindConfig, KindFinal}

// MaxSeq keeps record keys six digits wide, so listing order is seq order.
const MaxSeq = 999999

// maxSummary keeps records small: they are read back whole and often
// travel through workflow history.
const maxSummary = 64 << 10

// maxExactInt is the largest integer a double (and so the canonical
// encoding) holds exactly; a bigger row count would hash ambiguously.
const maxExactInt = 1 << 53

// ErrRewritten is wrapped by Append when a record already stored under the
// same seq has different content: history was changed, or two workflows
// share a release id. Retrying will not help.
var ErrRewritten = errors.New("audit record already exists with different content")

// Record is one entry of a release's audit log, stored as its own object
// under releases/<id>/audit/log/NNNNNN.json.
type Record struct {
	Seq       int64           `json:"seq"`
	ReleaseID string          `json:"release_id"`
	Kind      string          `json:"kind"`
	Stage     string          `json:"stage,omitempty"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Inputs    []Digest        `json:"inputs,omitempty"`
	Outputs   []Digest        `json:"outputs,omitempty"`
	Summary   json.RawMessage `json:"summary,omitempty"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// Digest names an object and its content hash at the time it was recorded.
type Digest struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows,omitempty"`
}

// Store is the part of objstore.Store the audit log needs. Get must return
// an error wrapping objstore.ErrNotFound for a missing object.
type Store interface {
	PutBytes(ctx context.Context, key string, b []byte) (objstore.ObjectInfo, error)
	Get(ctx context.Context, key string) ([]byte, error)
	List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error)
}

// LogPrefix is "releases/<id>/audit/log/".
func LogPrefix(releaseID string) (string, error) {
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	return l.AuditPrefix() + "log/", nil
}

// RecordKey is the object key of record seq: releases/<id>/audit/log/000042.json.
func RecordKey(releaseID string, seq int64) (string, error) {
	if seq < 1 || seq > MaxSeq {
		return "", fmt.Errorf("audit: seq %d out of range 1..%d", seq, MaxSeq)
	}
	l, err := datasets.NewLayout(releaseID)
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	return l.Audit(fmt.Sprintf("log/%06d.json", seq))
}

// HashRecord computes the record's hash as documented in the package doc:
// sha256 of the canonical encoding of the record's JSON object without its
// "hash" member. Hash in r is ignored.
func HashRecord(r Record) (string, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return hashObject(b)
}

// hashObject hashes a stored record's bytes as an auditor would: parse,
// drop "hash", canonicalize. Working on the bytes rather than the decoded
// struct means nothing in the object escapes the hash.
func hashObject(b []byte) (string, error) {
	v, err := decodeStrict(b)
	if err != nil {
		return "", err
	}
	obj, ok := v.([]member)
	if !ok {
		return "", errors.New("audit: record is not a JSON object")
	}
	obj = slices.DeleteFunc(slices.Clone(obj), func(m member) bool { return m.name == "hash" })
	var buf bytes.Buffer
	if err := writeCanonical(&buf, obj); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// EncodeRecord is the stored form of r: its canonical JSON and a newline.
// Storing the canonical form makes a retried append byte-identical.
func EncodeRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	c, err := Canonical(b)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return append(c, '\n'), nil
}

// ParseRecord decodes a stored record strictly: unknown or duplicate
// members, trailing data and invalid UTF-8 are errors, because anything a
// lenient parser ignored could be changed without changing the hash. It
// does not check the hash; see CheckHash.
func ParseRecord(b []byte) (Record, error) {
	if _, err := decodeStrict(b); err != nil {
		return Record{}, err
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("audit: parse record: %w", err)
	}
	return r, nil
}

// checkStored parses b and reports whether its hash matches its content.
func checkStored(b []byte) (r Record, computed string, err error) {
	r, err = ParseRecord(b)
	if err != nil {
		return r, "", err
	}
	computed, err = hashObject(b)
	return r, computed, err
}

func (r Record) validate() error {
	var errs []error
	if r.Seq < 1 || r.Seq > MaxSeq {
		errs = append(errs, fmt.Errorf("seq %d out of range 1..%d (the workflow numbers records from 1)", r.Seq, MaxSeq))
	}
	if err := datasets.ValidateReleaseID(r.ReleaseID); err != nil {
		errs = append(errs, fmt.Errorf("release_id: %w", err))
	}
	if !slices.Contains(kinds, r.Kind) {
		errs = append(errs, fmt.Errorf("kind %q unknown; use one of %s", r.Kind, strings.Join(kinds, ", ")))
	}
	if r.Time.IsZero() {
		errs = append(errs, errors.New("time is zero; pass the workflow time (workflow.Now)"))
	}
	if (r.Kind == KindOverride || r.Kind == KindApproval || r.Kind == KindRejection) && (r.Actor == "" || r.Reason == "") {
		errs = append(errs, fmt.Errorf("a %s needs an actor and a reason", r.Kind))
	}
	for _, set := range []struct {
		name string
		ds   []Digest
	}{{"inputs", r.Inputs}, {"outputs", r.Outputs}} {
		for i, d := range set.ds {
			if err := d.validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", set.name, i, err))
			}
		}
	}
	if len(r.Summary) > 0 {
		if len(r.Summary) > maxSummary {
			errs = append(errs, fmt.Errorf("summary is %d bytes, over %d; store large data as an object and list it in outputs", len(r.Summary), maxSummary))
		} else if _, err := Canonical(r.Summary); err != nil {
			errs = append(errs, fmt.Errorf("summary: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: invalid record: %w", err)
	}
	return nil
}

func (d Digest) validate() error {
	switch {
	case d.Key == "":
		return errors.New("empty key")
	case !isSHA256Hex(d.SHA256):
		return fmt.Errorf("key %s: sha256 %q is not 64 lowercase hex digits", d.Key, d.SHA256)
	case d.Rows < 0 || d.Rows > maxExactInt:
		return fmt.Errorf("key %s: rows %d out of range 0..2^53", d.Key, d.Rows)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Append links rec to record rec.Seq-1, computes its hash and stores it.
// PrevHash and Hash in rec are ignored; the stored record is returned.
//
// It is idempotent, so an activity retry is safe: if rec.Seq already
// holds a record with the same hash that record is returned; if it holds
// different content Append fails with ErrRewritten. The check-then-put is
// not atomic; the single workflow that owns a release is the only writer.
func Append(ctx context.Context, st Store, rec Record) (Record, error) {
	rec.PrevHash, rec.Hash = "", ""
	// Workflow time is UTC already; normalising keeps the stored bytes the
	// same whichever zone a caller's time.Time carries.
	rec.Time = rec.Time.UTC()
	if err := rec.validate(); err != nil {
		return Record{}, err
	}
	key, err := RecordKey(rec.ReleaseID, rec.Seq)
	if err != nil {
		return Record{}, err
	}
	if rec.Seq > 1 {
		prev, err := readLinked(ctx, st, rec.ReleaseID, rec.Seq-1)
		if err != nil {
			return Record{}, fmt.Errorf("audit: append %s: %w", key, err)
		}
		rec.PrevHash = prev.Hash
	}
	if rec.Hash, err = HashRecord(rec); err != nil {
		return Record{}, err
	}

	existing, err := st.Get(ctx, key)
	switch {
	case err == nil:
		old, computed, perr := checkStored(existing)
		if perr == nil && old.Hash == computed && old.Hash == rec.Hash {
			return old, nil
		}
		return Record{}, fmt.Errorf("audit: append %s: %w (stored hash %.12s…, new %.12s…): history was rewritten or two workflows share release id %s",
			key, ErrRewritten, old.Hash, rec.Hash, rec.ReleaseID)
	case !errors.Is(err, objstore.ErrNotFound):
		return Record{}, fmt.Errorf("audit: append %s: check for an earlier attempt: %w", key, err)
	}

	b, err := EncodeRecord(rec)
	if err != nil {
		return Record{}, err
	}
	if _, err := st.PutBytes(ctx, key, b); err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", key, err)
	}
	return rec, nil
}

// readLinked reads the record rec will link to and refuses to extend a
// chain that is already broken or closed.
func readLinked(ctx context.Context, st Store, releaseID string, seq int64) (Record, error) {
	key, err := RecordKey(releaseID, seq)
	if err != nil {
		return Record{}, err
	}
	b, err := st.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return Record{}, fmt.Errorf("previous record %d (%s) is missing; records must be appended in seq order", seq, key)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read previous record %d: %w", seq, err)
	}
	prev, computed, err := checkStored(b)
	switch {
	case err != nil:
		return Record{}, fmt.Errorf("previous record %d (%s): %w", seq, key, err)
	case prev.Hash != computed:
		return Record{}, fmt.Errorf("previous record %d (%s) fails its hash; run `starter release verify %s`", seq, key, releaseID)
	case prev.Seq != seq || prev.ReleaseID != releaseID:
		return Record{}, fmt.Errorf("previous record %s holds seq %d of release %q", key, prev.Seq, prev.ReleaseID)
	case prev.Kind == KindFinal:
		return Record{}, fmt.Errorf("the chain was closed by a %q record at seq %d; nothing can follow it", KindFinal, seq)
	}
	return prev, nil
}

// seqFromKey parses "…/log/000042.json" into 42.
func seqFromKey(prefix, key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || len(digits) != 6 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}
