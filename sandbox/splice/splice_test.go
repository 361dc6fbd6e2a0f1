package splice

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func modelPort(t *testing.T, srv *httptest.Server) int {
	t.Helper()
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestServeJoinsSocketToTCP(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(append([]byte("echo:"), body...))
	}))
	defer model.Close()
	sock := filepath.Join(t.TempDir(), "model.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); Serve(ctx, ln, model.Listener.Addr().String(), nil) }()

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	big := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < 3; i++ {
		resp, err := client.Post("http://sandbox/", "text/plain", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(got) != len(big)+5 || !bytes.HasPrefix(got, []byte("echo:")) {
			t.Fatalf("reply %d bytes, want %d", len(got), len(big)+5)
		}
	}
	client.CloseIdleConnections()
	cancel()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Fatal("socket still accepts after Serve returned")
	}
}

func TestServeClosesWhenModelNotListening(t *testing.T) {
	// A port nothing listens on: the accepted connection must be closed, not
	// left hanging, so a readiness probe fails fast.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	sock := filepath.Join(t.TempDir(), "model.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, dead, nil)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Fatalf("read from a join to a dead port = %d, %v; want 0, EOF", n, err)
	}
}

func TestRunReturnsModelStatus(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	code, err := Run(context.Background(), Config{
		Socket: filepath.Join(dir, "m.sock"), Port: 8000,
		Argv: []string{"/bin/sh", "-c", "echo hi; exit 3"}, Stdout: &out, Stderr: io.Discard,
	})
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v; want 3, nil", code, err)
	}
	if strings.TrimSpace(out.String()) != "hi" {
		t.Fatalf("model stdout %q", out.String())
	}
}

func TestRunPassesTermination(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _ := Run(ctx, Config{Socket: filepath.Join(t.TempDir(), "m.sock"), Port: 8000,
			Argv: []string{"/bin/sleep", "60"}, Stdout: io.Discard, Stderr: io.Discard})
		done <- code
	}()
	cancel()
	select {
	case code := <-done:
		if code != 128+15 {
			t.Fatalf("status %d, want 143 (SIGTERM)", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("model not terminated")
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Port: 1, Argv: []string{"m"}}, "-socket"},
		{Config{Socket: "s", Argv: []string{"m"}}, "-port"},
		{Config{Socket: "s", Port: 1}, "--"},
	} {
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v) = %v; want an error naming %s", c.cfg, err, c.want)
		}
	}
}
