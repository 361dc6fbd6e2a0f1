package devstack

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestZZBig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	s := startStack(t, ctx, Options{DataDir: t.TempDir(), UIPort: NoUI, Logger: testLogger(t)})
	sc := s3Client(s.S3Endpoint())
	f, _ := os.CreateTemp(t.TempDir(), "big")
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	for i := 0; i < 25; i++ { f.Write(chunk) } // 400 MiB
	f.Seek(0, 0)
	t0 := time.Now()
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket()), Key: aws.String("big"), Body: f}); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("single put %v, heap sys %d MiB", time.Since(t0), ms.HeapSys>>20)
	created, _ := sc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket()), Key: aws.String("mp")})
	var done []s3types.CompletedPart
	for i := 0; i < 25; i++ {
		n := aws.Int32(int32(i + 1))
		up, err := sc.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(s.Bucket()), Key: aws.String("mp"), UploadId: created.UploadId, PartNumber: n, Body: bytes.NewReader(chunk)})
		if err != nil { t.Fatal(err) }
		done = append(done, s3types.CompletedPart{ETag: up.ETag, PartNumber: n})
	}
	if _, err := sc.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(s.Bucket()), Key: aws.String("mp"), UploadId: created.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	t.Logf("multipart done %v, heap sys %d MiB", time.Since(t0), ms.HeapSys>>20)
	out, err := sc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket()), Key: aws.String("mp")})
	if err != nil { t.Fatal(err) }
	n, err := io.Copy(io.Discard, out.Body)
	out.Body.Close()
	runtime.ReadMemStats(&ms)
	t.Logf("get %d bytes err=%v %v, heap sys %d MiB", n, err, time.Since(t0), ms.HeapSys>>20)
}
