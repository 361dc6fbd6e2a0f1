package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// newServer serves a real S3 protocol implementation on loopback.
func newServer(t *testing.T) string {
	t.Helper()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func newStore(t *testing.T, endpoint, bucket string) *Store {
	t.Helper()
	s, err := New(t.Context(), Config{
		Endpoint: endpoint, Bucket: bucket, Region: "us-east-1",
		AccessKeyID: "test", SecretAccessKey: "test", PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, newServer(t), "sandgate-test")
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket must be idempotent: %v", err)
	}

	// A file bigger than the SDK's internal buffers, random so nothing compresses.
	dir := t.TempDir()
	src := filepath.Join(dir, "part-00000.parquet")
	data := make([]byte, 3<<20+17)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	key := "releases/r1/datasets/prompts/part-00000.parquet"

	info, err := s.PutFile(ctx, key, src)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != hex.EncodeToString(want[:]) || info.Key != key {
		t.Fatalf("PutFile info = %+v", info)
	}

	ok, err := s.Exists(ctx, key)
	if err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	st, err := s.Stat(ctx, key)
	if err != nil || st.SHA256 != info.SHA256 || st.Size != info.Size {
		t.Fatalf("Stat = %+v, %v; want %+v", st, err, info)
	}

	dst := filepath.Join(dir, "out", "copy.parquet")
	dl, err := s.Download(ctx, key, dst)
	if err != nil {
		t.Fatal(err)
	}
	if dl != info {
		t.Fatalf("Download info = %+v, want %+v", dl, info)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded bytes differ (err %v)", err)
	}

	mkey := "releases/r1/datasets/prompts/manifest.json"
	mi, err := s.PutBytes(ctx, mkey, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, mkey)
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if mi.Size != 7 {
		t.Fatalf("PutBytes size = %d", mi.Size)
	}

	// Overwrite is how retried activities stay idempotent.
	if _, err := s.PutBytes(ctx, mkey, []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Get(ctx, mkey); string(b) != `{"a":2}` {
		t.Fatalf("overwrite not visible: %q", b)
	}
}

func TestListPaginates(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, newServer(t), "sandgate-list")
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	// More than one ListObjectsV2 page (1000 keys) to exercise the paginator.
	const n = 1005
	for i := range n {
		if _, err := s.PutBytes(ctx, fmt.Sprintf("releases/r/results/x/shard=%03d/part-00000.parquet", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutBytes(ctx, "releases/other/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "releases/r/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("List returned %d objects, want %d", len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Key >= got[i].Key {
			t.Fatalf("List not in key order at %d: %q >= %q", i, got[i-1].Key, got[i].Key)
		}
	}
	if got[0].Size != 1 {
		t.Fatalf("size = %d", got[0].Size)
	}
}

func TestMissingObjectAndBucket(t *testing.T) {
	ctx := t.Context()
	url := newServer(t)
	s := newStore(t, url, "present")
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err := s.Exists(ctx, "nope")
	if err != nil || ok {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}

	missing := newStore(t, url, "absent-bucket")
	_, err = missing.PutBytes(ctx, "k", []byte("x"))
	if !errors.Is(err, ErrBucketMissing) {
		t.Fatalf("PutBytes into missing bucket: %v, want ErrBucketMissing", err)
	}
	if !strings.Contains(err.Error(), "s3://absent-bucket/k") {
		t.Fatalf("error does not name bucket/key: %v", err)
	}
	if _, err := missing.Exists(ctx, "k"); !errors.Is(err, ErrBucketMissing) {
		t.Fatalf("Exists in missing bucket: %v, want ErrBucketMissing", err)
	}
	if _, err := missing.PutFile(ctx, "k", filepath.Join(t.TempDir(), "no-such-file")); err == nil ||
		!strings.Contains(err.Error(), "no-such-file") {
		t.Fatalf("PutFile(missing file) = %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ENDPOINT_URL":      "http://127.0.0.1:9000",
		"AWS_DEFAULT_REGION":    "eu-west-1",
		"AWS_ACCESS_KEY_ID":     "ak",
		"AWS_SECRET_ACCESS_KEY": "sk",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c := configFromLookup(lookup)
	want := Config{Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", Bucket: "sandgate",
		AccessKeyID: "ak", SecretAccessKey: "sk", PathStyle: true}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	env["AWS_ENDPOINT_URL_S3"] = "http://s3.local:9000"
	env["AWS_REGION"] = "us-west-2"
	env["SANDGATE_S3_PATH_STYLE"] = "false"
	env["SANDGATE_BUCKET"] = "my-bucket"
	c = configFromLookup(lookup)
	if c.Endpoint != "http://s3.local:9000" || c.Region != "us-west-2" || c.PathStyle || c.Bucket != "my-bucket" {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c := configFromLookup(func(string) (string, bool) { return "", false }); c.PathStyle || c.Bucket != DefaultBucket {
		t.Fatalf("AWS default: %+v", c)
	}

	t.Setenv("SANDGATE_BUCKET", "from-env")
	if got := ConfigFromEnv().Bucket; got != "from-env" {
		t.Fatalf("ConfigFromEnv bucket = %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bucket: "Bad_Bucket"}, "SANDGATE_BUCKET"},
		{Config{Bucket: "ok-bucket", Endpoint: "localhost:9000"}, "http://"},
		{Config{Bucket: "ok-bucket", AccessKeyID: "x"}, "SecretAccessKey"},
		{Config{Bucket: ""}, "3 to 63"},
	} {
		_, err := New(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error = %v, want mention of %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(context.Background(), Config{Bucket: "ok-bucket", Endpoint: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyValidation(t *testing.T) {
	s := newStore(t, "http://127.0.0.1:1", "b-b-b")
	for _, k := range []string{"", "/abs", strings.Repeat("k", 1025), "bad\xffutf8"} {
		if _, err := s.PutBytes(t.Context(), k, nil); err == nil {
			t.Errorf("key %.20q accepted", k)
		}
	}
}

// S3 answers bad credentials with 403 + an XML error; the message must say
// which variables to check rather than leak a raw SDK dump only.
func TestAccessDeniedIsClassified(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The key does not exist.</Message></Error>`)
		}
	}))
	t.Cleanup(srv.Close)
	s := newStore(t, srv.URL, "denied")
	_, err := s.PutBytes(t.Context(), "releases/x/a", []byte("x"))
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("PutBytes error = %v, want ErrAccessDenied naming AWS_ACCESS_KEY_ID", err)
	}
	if err := s.EnsureBucket(t.Context()); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("EnsureBucket error = %v, want ErrAccessDenied", err)
	}
}
