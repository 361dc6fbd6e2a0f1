package cli

import (
	"github.com/sandgate/sandgate/internal/testutil"

	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sandgate/sandgate/codec"
)

func testCodec(t *testing.T) *codec.Codec {
	t.Helper()
	c, err := codec.New(codec.Keyring{Keys: []codec.Key{{ID: "k1", Secret: bytes.Repeat([]byte{3}, codec.KeySize)}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecHandlerAuthAndCORS(t *testing.T) {
	c := testCodec(t)
	const origin = "http://127.0.0.1:8233"
	srv := httptest.NewServer(newCodecHandler(c, "s3cret", []string{origin}))
	defer srv.Close()

	plain, err := converter.GetDefaultDataConverter().ToPayload("release data")
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := c.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: encrypted})
	if err != nil {
		t.Fatal(err)
	}
	post := func(auth, from string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if from != "" {
			req.Header.Set("Origin", from)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	if resp := post("", origin); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s", resp.Status)
	}
	if resp := post("Bearer wrong", origin); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %s", resp.Status)
	}
	resp := post("Bearer s3cret", origin)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("decode: %s %s", resp.Status, b)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Allow-Origin = %q", got)
	}
	b, _ := io.ReadAll(resp.Body)
	var out commonpb.Payloads
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(out.Payloads[0], &s); err != nil || s != "release data" {
		t.Fatalf("decoded %q %v", s, err)
	}
	// Another site's page gets no CORS grant.
	if got := post("Bearer s3cret", "http://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}

	// Browsers send preflights without credentials: they must pass.
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusNoContent || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "X-Namespace") {
		t.Errorf("preflight: %s %v", pre.Status, pre.Header)
	}
}

func TestCodecServerCmdNeedsKeys(t *testing.T) {
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := Run(context.Background(), env, []string{"codec-server", "--listen", "127.0.0.1:0"}); code != ExitBadInput {
		t.Fatalf("exit %d, want %d: %s", code, ExitBadInput, errb.String())
	}
	if !strings.Contains(errb.String(), codec.EnvKeys) {
		t.Errorf("error does not say how to give keys: %s", errb.String())
	}
}

func TestCodecServerCmdServes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	line := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, codec.KeySize))
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &testutil.LockedBuffer{}
	env := Env{Stdout: out, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, env, []string{"codec-server", "--keys", path, "--listen", "127.0.0.1:0"}) }()
	for i := 0; i < 200 && !strings.Contains(out.String(), "codec server on"); i++ {
		select {
		case code := <-done:
			t.Fatalf("exited early with %d: %s", code, out.String())
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "auth off") {
		t.Errorf("startup line: %s", out.String())
	}
	cancel()
	if code := <-done; code != ExitReleased {
		t.Fatalf("exit %d after interrupt", code)
	}
}
