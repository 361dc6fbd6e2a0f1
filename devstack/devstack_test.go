package devstack

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	// Stack goroutines may log after the test returns, when t.Log would
	// panic: collect the logs and print them only when the test fails.
	lb := &testutil.LockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("stack logs (warn+):\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startStack(t *testing.T, ctx context.Context, opt Options) *Stack {
	t.Helper()
	began := time.Now()
	s, err := Start(ctx, opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("stack ready in %v: temporal=%s ui=%s s3=%s", time.Since(began).Round(time.Millisecond), s.FrontendAddress(), s.UIURL(), s.S3Endpoint())
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func s3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       DevRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(DevAccessKeyID, DevSecretAccessKey, ""),
		UsePathStyle: true,
	})
}

func dialTemporal(t *testing.T, ctx context.Context, s *Stack) client.Client {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    nopSDKLogger{},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	return c
}

type nopSDKLogger struct{}

func (nopSDKLogger) Debug(string, ...any) {}
func (nopSDKLogger) Info(string, ...any)  {}
func (nopSDKLogger) Warn(string, ...any)  {}
func (nopSDKLogger) Error(string, ...any) {}

func checkSearchAttributes(t *testing.T, ctx context.Context, c client.Client, ns string) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	for _, name := range SearchAttributes() {
		if got := resp.GetCustomAttributes()[name]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s: type %v, want Keyword (all: %v)", name, got, resp.GetCustomAttributes())
		}
	}
}

// eventually retries f until it succeeds or the test's context ends.
func eventually(t *testing.T, ctx context.Context, what string, f func() error) {
	t.Helper()
	if err := poll(ctx, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestStackLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	dir := t.TempDir()
	opt := Options{DataDir: dir, Logger: testLogger(t)} // all ports 0: free ports

	s := startStack(t, ctx, opt)
	if s.Namespace() != DefaultNamespace || s.Bucket() != DefaultBucket {
		t.Fatalf("namespace/bucket = %q/%q, want defaults", s.Namespace(), s.Bucket())
	}

	// Temporal: search attributes registered and usable in a visibility query.
	tc := dialTemporal(t, ctx, s)
	checkSearchAttributes(t, ctx, tc, s.Namespace())
	const wfID = "devstack-test-release"
	modelName := temporal.NewSearchAttributeKeyKeyword("ModelName")
	_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    wfID,
		TaskQueue:             "devstack-test", // no worker: the run just stays open
		TypedSearchAttributes: temporal.NewSearchAttributes(modelName.ValueSet("tiny-llm")),
	}, "NoSuchWorkflow")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	eventually(t, ctx, "visibility query by ModelName", func() error {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.Namespace(),
			Query:     `ModelName = "tiny-llm"`,
		})
		if err != nil {
			return err
		}
		if len(resp.GetExecutions()) != 1 {
			return fmt.Errorf("got %d executions", len(resp.GetExecutions()))
		}
		return nil
	})

	// S3: put, get, list with prefix and delimiter.
	sc := s3Client(s.S3Endpoint())
	body := []byte("id,prompt\n1,hello\n")
	keys := []string{"releases/r1/datasets/prompts.csv", "releases/r1/results/suite=a/part-0.parquet", "releases/r2/audit/log.jsonl"}
	for _, k := range keys {
		if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket()), Key: aws.String(k), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %s: %v", k, err)
		}
	}
	getObject(t, ctx, sc, s.Bucket(), keys[0], body)
	list, err := sc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket()), Prefix: aws.String("releases/r1/")})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	if got := objectKeys(list); strings.Join(got, " ") != keys[0]+" "+keys[1] {
		t.Errorf("ListObjectsV2 prefix releases/r1/: %v, want %v", got, keys[:2])
	}
	list, err = sc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket()), Prefix: aws.String("releases/"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatalf("ListObjectsV2 with delimiter: %v", err)
	}
	var prefixes []string
	for _, p := range list.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	if strings.Join(prefixes, " ") != "releases/r1/ releases/r2/" {
		t.Errorf("common prefixes: %v", prefixes)
	}

	// Multipart: parts are staged on disk and assembled on completion.
	mpKey := "releases/r1/snapshots/big.bin"
	parts := [][]byte{bytes.Repeat([]byte("a"), 5<<20), []byte("tail")}
	created, err := sc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket()), Key: aws.String(mpKey)})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var done []s3types.CompletedPart
	for i, p := range parts {
		n := aws.Int32(int32(i + 1))
		up, err := sc.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.Bucket()), Key: aws.String(mpKey), UploadId: created.UploadId,
			PartNumber: n, Body: bytes.NewReader(p),
		})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		done = append(done, s3types.CompletedPart{ETag: up.ETag, PartNumber: n})
	}
	if _, err := sc.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.Bucket()), Key: aws.String(mpKey), UploadId: created.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done},
	}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	getObject(t, ctx, sc, s.Bucket(), mpKey, bytes.Join(parts, nil))
	if staged, _ := os.ReadDir(filepath.Join(dir, "s3", "uploads")); len(staged) != 0 {
		t.Errorf("multipart staging dir not cleaned: %d entries", len(staged))
	}

	// UI serves its embedded assets.
	resp, err := http.Get(s.UIURL() + "/")
	if err != nil {
		t.Fatalf("GET UI: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/: %s", s.UIURL(), resp.Status)
	}

	// A second stack on the same directory is refused, not corrupting it.
	if _, err := Start(ctx, Options{DataDir: dir, UIPort: NoUI}); err == nil || !strings.Contains(err.Error(), "in use by another running dev stack") {
		t.Fatalf("second stack on same data dir: err = %v", err)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restart on the same directory (existing DB path): state survives.
	s2 := startStack(t, ctx, opt)
	getObject(t, ctx, s3Client(s2.S3Endpoint()), s2.Bucket(), keys[0], body)
	tc2 := dialTemporal(t, ctx, s2)
	checkSearchAttributes(t, ctx, tc2, s2.Namespace())
	desc, err := tc2.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow status after restart = %v, want running", st)
	}
	if err := tc2.TerminateWorkflow(ctx, wfID, "", "test done"); err != nil {
		t.Errorf("terminate: %v", err)
	}
	if err := s2.Stop(); err != nil {
		t.Fatalf("Stop after restart: %v", err)
	}
}

// TestSearchAttributesAddedToExistingNamespace covers a DB created before
// the attributes existed: they must be added at runtime.
func TestSearchAttributesAddedToExistingNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	dbPath := dir + "/temporal.db"
	// A namespace registered without any custom attributes.
	if err := prepareDB(dbPath, "other"); err != nil {
		t.Fatal(err)
	}
	if err := sqliteSchemaOnlyNamespace(dbPath, "legacy"); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, ctx, Options{DataDir: dir, Namespace: "legacy", UIPort: NoUI, Logger: testLogger(t)})
	checkSearchAttributes(t, ctx, dialTemporal(t, ctx, s), "legacy")
}

func sqliteSchemaOnlyNamespace(dbPath, ns string) error {
	cfg, err := sqliteschema.NewNamespaceConfig(clusterName, ns, false, nil)
	if err != nil {
		return err
	}
	return sqliteschema.CreateNamespaces(sqliteConfig(dbPath), cfg)
}

func TestPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	addr := busy.Addr().String()

	for _, tc := range []struct {
		name string
		opt  Options
		flag string
	}{
		{"frontend", Options{FrontendPort: port}, FlagFrontendPort},
		{"ui", Options{UIPort: port}, FlagUIPort},
		{"s3", Options{S3Port: port}, FlagS3Port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.DataDir = t.TempDir()
			s, err := Start(context.Background(), tc.opt)
			if err == nil {
				s.Stop()
				t.Fatal("Start succeeded on a busy port")
			}
			if !errors.Is(err, ErrPortInUse) {
				t.Fatalf("err = %v, want ErrPortInUse", err)
			}
			msg := err.Error()
			for _, want := range []string{addr, tc.flag, "already in use"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, opt := range []Options{
		{Host: "localhost"},
		{FrontendPort: 70000},
		{UIPort: -2},
		{Bucket: "Not_A_Bucket"},
		{DataDir: "a?b"},
	} {
		if _, err := Start(context.Background(), opt); err == nil {
			t.Errorf("Start(%+v) succeeded, want validation error", opt)
		}
	}
}

func getObject(t *testing.T, ctx context.Context, sc *s3.Client, bucket, key string, want []byte) {
	t.Helper()
	out, err := sc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetObject %s = %q, want %q", key, got, want)
	}
}

func objectKeys(out *s3.ListObjectsV2Output) []string {
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
