package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sandgate/sandgate/objstore"
)

const testRelease = "release-demo-1-0-0-ab12cd"

// newChainStore is a real S3 client talking to a real S3 protocol server
// on loopback.
func newChainStore(t *testing.T) *objstore.Store {
	st, _ := newChainStoreDel(t)
	return st
}

// newChainStoreDel also returns a delete function: the audit Store
// interface deliberately has none, so tests delete through the backend.
func newChainStoreDel(t *testing.T) (*objstore.Store, func(key string)) {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server())
	t.Cleanup(srv.Close)
	st, err := objstore.New(t.Context(), objstore.Config{
		Endpoint: srv.URL, Bucket: "audit-test", Region: "us-east-1",
		AccessKeyID: "test", SecretAccessKey: "test", PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	del := func(key string) {
		if _, err := backend.DeleteObject("audit-test", key); err != nil {
			t.Fatal(err)
		}
	}
	return st, del
}

func putObject(t *testing.T, st Store, key string, b []byte, rows int64) Digest {
	t.Helper()
	info, err := st.PutBytes(t.Context(), key, b)
	if err != nil {
		t.Fatal(err)
	}
	return Digest{Key: key, SHA256: info.SHA256, Rows: rows}
}

// writeChain writes a small release: data objects, then five records whose
// outputs name them, closed by a final record.
func writeChain(t *testing.T, st Store) []Record {
	t.Helper()
	ctx := t.Context()
	base := "releases/" + testRelease + "/"
	prompts := putObject(t, st, base+"datasets/prompts/part-00000.parquet", bytes.Repeat([]byte("PAR1prompts"), 500), 1000)
	manifest := putObject(t, st, base+"datasets/prompts/manifest.json", []byte(`{"rows":1000}`), 0)
	results := putObject(t, st, base+"results/redteam/shard=000/part-00000.parquet", bytes.Repeat([]byte("PAR1results"), 300), 1000)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	in := []Record{
		{Kind: KindConfig, Summary: json.RawMessage(`{"config_sha256":"` + strings.Repeat("c", 64) + `"}`)},
		{Kind: KindStage, Stage: "datasets", Outputs: []Digest{prompts, manifest}, Summary: json.RawMessage(`{"rows": 1000, "seed": 7}`)},
		{Kind: KindStage, Stage: "redteam", Inputs: []Digest{prompts}, Outputs: []Digest{results}, Summary: json.RawMessage(`{"asr":0.0125,"tiny":1e-9}`)},
		{Kind: KindOverride, Actor: "alice@example.com", Reason: "known false positive, ticket SEC-42"},
		{Kind: KindFinal, Summary: json.RawMessage(`{"verdict":"Released"}`)},
	}
	var out []Record
	for i, r := range in {
		r.Seq = int64(i + 1)
		r.ReleaseID = testRelease
		r.Time = t0.Add(time.Duration(i) * time.Minute)
		got, err := Append(ctx, st, r)
		if err != nil {
			t.Fatalf("append %d: %v", r.Seq, err)
		}
		out = append(out, got)
	}
	return out
}

func recordKey(t *testing.T, seq int64) string {
	t.Helper()
	k, err := RecordKey(testRelease, seq)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustVerify(t *testing.T, st Store) VerifyReport {
	t.Helper()
	rep, err := Verify(t.Context(), st, testRelease)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// wantProblem fails unless rep reports a problem at seq for key whose text
// contains what.
func wantProblem(t *testing.T, rep VerifyReport, seq int64, key, what string) {
	t.Helper()
	if rep.OK {
		t.Fatalf("Verify OK despite tampering; report %+v", rep)
	}
	for _, p := range rep.Problems {
		if p.Seq == seq && p.Key == key && strings.Contains(p.What, what) {
			return
		}
	}
	t.Fatalf("no problem {seq %d, key %s, %q}; got %+v", seq, key, what, rep.Problems)
}

func flipByte(t *testing.T, st Store, key string, at func([]byte) int) {
	t.Helper()
	b, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	b[at(b)] ^= 0x01
	if _, err := st.PutBytes(t.Context(), key, b); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIntactChain(t *testing.T) {
	st := newChainStore(t)
	recs := writeChain(t, st)
	rep := mustVerify(t, st)
	if !rep.OK || rep.Records != 5 || rep.Objects != 3 || rep.Head != recs[4].Hash {
		t.Fatalf("report = %+v, want OK, 5 records, 3 objects, head %s", rep, recs[4].Hash)
	}
	// Links as documented.
	if recs[0].PrevHash != "" {
		t.Errorf("record 1 prev_hash = %q", recs[0].PrevHash)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].PrevHash != recs[i-1].Hash {
			t.Errorf("record %d prev_hash does not link", i+1)
		}
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	dataKey := "releases/" + testRelease + "/results/redteam/shard=000/part-00000.parquet"
	cases := []struct {
		name   string
		tamper func(t *testing.T, st Store, del func(string))
		seq    int64
		key    string
		what   string
	}{
		{
			name: "data object byte",
			tamper: func(t *testing.T, st Store, del func(string)) {
				flipByte(t, st, dataKey, func(b []byte) int { return len(b) / 2 })
			},
			seq: 3, key: dataKey, what: "sha256 mismatch",
		},
		{
			name: "audit record byte",
			tamper: func(t *testing.T, st Store, del func(string)) {
				// Flip a byte inside the reason so the record still parses:
				// only the hash can tell.
				flipByte(t, st, recordKey(t, 4), func(b []byte) int { return bytes.Index(b, []byte("false positive")) })
			},
			seq: 4, key: recordKey(t, 4), what: "hash mismatch",
		},
		{
			name: "audit record syntax byte",
			tamper: func(t *testing.T, st Store, del func(string)) {
				flipByte(t, st, recordKey(t, 2), func(b []byte) int { return 0 })
			},
			seq: 2, key: recordKey(t, 2), what: "unreadable",
		},
		{
			name: "last record deleted",
			tamper: func(t *testing.T, st Store, del func(string)) {
				del(recordKey(t, 5))
			},
			seq: 4, key: recordKey(t, 4), what: "open chain",
		},
		{
			name: "middle record deleted",
			tamper: func(t *testing.T, st Store, del func(string)) {
				del(recordKey(t, 3))
			},
			seq: 3, key: recordKey(t, 3), what: "missing",
		},
		{
			name: "records reordered",
			tamper: func(t *testing.T, st Store, del func(string)) {
				ctx := t.Context()
				b2, _ := st.Get(ctx, recordKey(t, 2))
				b3, _ := st.Get(ctx, recordKey(t, 3))
				st.PutBytes(ctx, recordKey(t, 2), b3)
				st.PutBytes(ctx, recordKey(t, 3), b2)
			},
			seq: 2, key: recordKey(t, 2), what: "says seq 3",
		},
		{
			name: "record rewritten with a fresh hash",
			tamper: func(t *testing.T, st Store, del func(string)) {
				// A careful forger recomputes the hash; the next record's
				// prev_hash still gives them away.
				ctx := t.Context()
				b, _ := st.Get(ctx, recordKey(t, 4))
				r, err := ParseRecord(b)
				if err != nil {
					t.Fatal(err)
				}
				r.Actor = "mallory@example.com"
				if r.Hash, err = HashRecord(r); err != nil {
					t.Fatal(err)
				}
				nb, _ := EncodeRecord(r)
				st.PutBytes(ctx, recordKey(t, 4), nb)
			},
			seq: 4, key: recordKey(t, 4), what: "rewritten",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, del := newChainStoreDel(t)
			writeChain(t, st)
			tc.tamper(t, st, del)
			rep := mustVerify(t, st)
			wantProblem(t, rep, tc.seq, tc.key, tc.what)
			t.Logf("problems: %+v", rep.Problems)
		})
	}
}

func TestAppendIdempotent(t *testing.T) {
	st := newChainStore(t)
	recs := writeChain(t, st)
	ctx := t.Context()

	// A retried activity appends the same record again: same result, same bytes.
	before, _ := st.Get(ctx, recordKey(t, 3))
	again := recs[2]
	again.Hash, again.PrevHash = "", ""
	got, err := Append(ctx, st, again)
	if err != nil {
		t.Fatalf("re-append: %v", err)
	}
	after, _ := st.Get(ctx, recordKey(t, 3))
	if got.Hash != recs[2].Hash || !bytes.Equal(before, after) {
		t.Fatalf("re-append changed the record: %s vs %s", got.Hash, recs[2].Hash)
	}

	// Different content under an existing seq is history being rewritten.
	again.Reason = "something else"
	if _, err := Append(ctx, st, again); !errors.Is(err, ErrRewritten) {
		t.Fatalf("conflicting re-append: err = %v, want ErrRewritten", err)
	}
	// Nothing follows a final record; gaps are refused.
	if _, err := Append(ctx, st, Record{Seq: 6, ReleaseID: testRelease, Kind: KindStage, Time: time.Now()}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("append after final: err = %v", err)
	}
	if _, err := Append(ctx, st, Record{Seq: 9, ReleaseID: testRelease, Kind: KindStage, Time: time.Now()}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("append with a gap: err = %v", err)
	}
	if rep := mustVerify(t, st); !rep.OK {
		t.Fatalf("refused appends damaged the chain: %+v", rep.Problems)
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	st := newChainStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, r := range map[string]Record{
		"seq 0":              {Seq: 0, ReleaseID: testRelease, Kind: KindStage, Time: now},
		"bad kind":           {Seq: 1, ReleaseID: testRelease, Kind: "oops", Time: now},
		"no time":            {Seq: 1, ReleaseID: testRelease, Kind: KindStage},
		"bad release":        {Seq: 1, ReleaseID: "Bad/ID", Kind: KindStage, Time: now},
		"override no reason": {Seq: 1, ReleaseID: testRelease, Kind: KindOverride, Actor: "a", Time: now},
		"bad digest":         {Seq: 1, ReleaseID: testRelease, Kind: KindStage, Time: now, Outputs: []Digest{{Key: "k", SHA256: "abc"}}},
		"bad summary":        {Seq: 1, ReleaseID: testRelease, Kind: KindStage, Time: now, Summary: json.RawMessage(`{"a":1,"a":2}`)},
	} {
		if _, err := Append(t.Context(), st, r); err == nil {
			t.Errorf("%s: Append accepted %+v", name, r)
		}
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		`{"b":1,"a":[true,null,"x"]}`:         `{"a":[true,null,"x"],"b":1}`,
		`{ "n": 1.0, "m": -0, "e": 1e21 }`:    `{"e":1e+21,"m":0,"n":1}`,
		`[1e-7, 0.000001, 123456789012, 0.1]`: `[1e-7,0.000001,123456789012,0.1]`,
		`"<&>\u2028\u0001\t\"é"`:              "\"<&>\u2028\\u0001\\t\\\"é\"",
		"{\"\U0001F600\":1,\"\uFB01\":2}":     "{\"\U0001F600\":1,\"\uFB01\":2}", // UTF-16 order, not byte order
	} {
		got, err := Canonical([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":1}`, `1 2`, "\"\xff\"", `1e400`, `{`} {
		if _, err := Canonical([]byte(bad)); err == nil {
			t.Errorf("Canonical(%q) accepted", bad)
		}
	}
}

// TestHashIsReproducible pins the documented recipe: sha256 over the
// canonical object without "hash", computed here independently of HashRecord.
func TestHashIsReproducible(t *testing.T) {
	st := newChainStore(t)
	recs := writeChain(t, st)
	b, err := st.Get(t.Context(), recordKey(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "hash")
	plain, _ := json.Marshal(m) // encoding/json sorts keys; fine for this ASCII record
	canon, err := Canonical(plain)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if got := hex.EncodeToString(sum[:]); got != recs[2].Hash {
		t.Fatalf("independent hash %s != record hash %s", got, recs[2].Hash)
	}
	if !bytes.HasSuffix(b, []byte("\n")) || !bytes.Contains(b, []byte(`"tiny":1e-9`)) {
		t.Fatalf("stored record is not canonical: %s", b)
	}
}

func FuzzParseRecord(f *testing.F) {
	r := Record{Seq: 2, ReleaseID: testRelease, Kind: KindStage, Stage: "x", Time: time.Unix(0, 0).UTC(),
		Outputs: []Digest{{Key: "k", SHA256: strings.Repeat("a", 64), Rows: 3}}, Summary: json.RawMessage(`{"a":[1,2.5]}`)}
	r.Hash, _ = HashRecord(r)
	good, _ := EncodeRecord(r)
	f.Add(good)
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":1,"seq":2}`))
	f.Add([]byte(`{"summary":{"a":{"b":[[[]]]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseRecord(b)
		if err != nil {
			return
		}
		// Whatever parses must re-encode, re-parse to the same hash, and
		// canonicalize idempotently.
		h1, err := HashRecord(rec)
		if err != nil {
			return // e.g. a summary number JSON accepts but doubles cannot hold
		}
		enc, err := EncodeRecord(rec)
		if err != nil {
			t.Fatalf("parsed record does not encode: %v", err)
		}
		back, err := ParseRecord(enc)
		if err != nil {
			t.Fatalf("encoded record does not parse: %v\n%s", err, enc)
		}
		if h2, _ := HashRecord(back); h1 != h2 {
			t.Fatalf("hash changed across encode/parse: %s vs %s", h1, h2)
		}
		c2, err := Canonical(enc)
		if err != nil || !bytes.Equal(c2, bytes.TrimSuffix(enc, []byte("\n"))) {
			t.Fatalf("EncodeRecord output is not canonical: %s", enc)
		}
	})
}
