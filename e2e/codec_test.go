package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/sandgate/sandgate/codec"
	"github.com/sandgate/sandgate/config"
)

// TestEncryptedPayloadsNeverReachTheDatabase runs a release whose config
// carries a unique marker, stops the stack and searches Temporal's SQLite
// files for it: with the codec the marker must be absent. The same run
// without the codec must show it, or the search proves nothing.
func TestEncryptedPayloadsNeverReachTheDatabase(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	secret := make([]byte, codec.KeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	enc, err := codec.New(codec.Keyring{Keys: []codec.Key{{ID: "e2e-1", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		codec      converter.PayloadCodec
		wantMarker bool
	}{
		{name: "plain (control)", codec: nil, wantMarker: true},
		{name: "encrypted", codec: enc, wantMarker: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nonce := make([]byte, 8)
			if _, err := rand.Read(nonce); err != nil {
				t.Fatal(err)
			}
			marker := "sandgate-marker-" + hex.EncodeToString(nonce)
			dataDir := t.TempDir()
			env := startStackWithCodec(t, ctx, dataDir, tc.codec)
			const taskQueue = "e2e-codec"
			stopWorker := env.startWorkerWithKey(t, ctx, taskQueue, nil)

			in := loadExample(t, "release.yaml", func(c *config.Release) {
				c.Suites.Adversarial.Prompts = 60
				c.Suites.Shadow.Requests = 5
				c.Model.SystemPrompt = "You are a careful assistant. " + marker
			})
			res := waitResult(t, ctx, startRelease(t, ctx, env.client, taskQueue, in))
			if res.ReleaseID != in.ReleaseID {
				t.Fatalf("result is for %q, want %q", res.ReleaseID, in.ReleaseID)
			}

			// What the server holds, read without decoding: the workflow's
			// input payload says how it was stored.
			it := env.client.GetWorkflowHistory(ctx, in.ReleaseID, "", false, 0)
			first, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			stored := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			gotEncoding := string(stored.GetMetadata()[converter.MetadataEncoding])
			if encrypted := gotEncoding == codec.EncodingEncrypted; encrypted == tc.wantMarker {
				t.Errorf("workflow input stored with encoding %q", gotEncoding)
			}

			stopWorker()
			if err := env.stack.Stop(); err != nil {
				t.Fatalf("stop stack: %v", err)
			}
			files, err := filepath.Glob(filepath.Join(dataDir, "temporal.db*"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no Temporal database under %s: %v", dataDir, err)
			}
			var hits []string
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d bytes", filepath.Base(f), len(b))
				if bytes.Contains(b, []byte(marker)) {
					hits = append(hits, filepath.Base(f))
				}
			}
			switch {
			case tc.wantMarker && len(hits) == 0:
				t.Fatalf("control: marker %s not found in %v; the search cannot tell encrypted from plain", marker, files)
			case !tc.wantMarker && len(hits) > 0:
				t.Fatalf("marker %s found in clear text in %v despite the codec", marker, hits)
			}
			t.Logf("marker in clear text: %v (files %v)", len(hits) > 0, hits)
		})
	}
}
