package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/sandgate/sandgate/sandbox/splice"
)

// apiCall is one request the fake engine received.
type apiCall struct {
	Method string
	Path   string // without the /vX.Y prefix
	Query  url.Values
	Body   map[string]any
}

func (c apiCall) String() string { return c.Method + " " + c.Path + "?" + c.Query.Encode() }

type fakeContainer struct {
	id, name   string
	config     map[string]any
	hostConfig map[string]any
	running    bool
	paused     bool
	exitCode   int
	exited     chan struct{}
	stopServe  context.CancelFunc
}

// fakeEngine answers the Docker Engine API calls the provider makes,
// minimally, and records every call. "Starting" a container runs the real
// splice helper code on the bind-mounted socket directory, joined to the
// port the entrypoint names on host loopback, so the relay path is real
// except for the container itself.
type fakeEngine struct {
	t      *testing.T
	socket string
	// mutateHostConfig, when set, changes what inspect reports as applied:
	// an engine that silently ignores an option.
	mutateHostConfig func(map[string]any)

	mu         sync.Mutex
	calls      []apiCall
	containers map[string]*fakeContainer
	next       int
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	dir, err := os.MkdirTemp("", "sgdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeEngine{t: t, socket: filepath.Join(dir, "docker.sock"), containers: map[string]*fakeContainer{}}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.containers {
			f.exitLocked(c, 137)
		}
	})
	return f
}

func (f *fakeEngine) Host() string { return "unix://" + f.socket }

func (f *fakeEngine) Calls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

var (
	versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)
	containerPath = regexp.MustCompile(`^/containers/([^/]+)(?:/([a-z]+))?$`)
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	call := apiCall{Method: r.Method, Path: path, Query: r.URL.Query()}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &call.Body); err != nil {
			f.t.Errorf("fake engine: %s %s: body is not JSON: %v", r.Method, path, err)
		}
	}
	if path == "/_ping" {
		w.Header().Set("Api-Version", "1.51")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "OK")
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	if r.Method == http.MethodPost && path == "/containers/create" {
		f.next++
		c := &fakeContainer{id: fmt.Sprintf("%064x", f.next), name: call.Query.Get("name"), exited: make(chan struct{})}
		c.hostConfig, _ = call.Body["HostConfig"].(map[string]any)
		c.config = map[string]any{}
		for k, v := range call.Body {
			if k != "HostConfig" && k != "NetworkingConfig" {
				c.config[k] = v
			}
		}
		f.containers[c.id] = c
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"Id": c.id, "Warnings": []string{}})
		return
	}
	m := containerPath.FindStringSubmatch(path)
	if m == nil {
		f.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "fake engine: no route " + path})
		return
	}
	c := f.containers[m[1]]
	if c == nil {
		f.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "No such container: " + m[1]})
		return
	}
	switch op := r.Method + " " + m[2]; op {
	case "GET json":
		hc := map[string]any{}
		for k, v := range c.hostConfig {
			hc[k] = v
		}
		if f.mutateHostConfig != nil {
			f.mutateHostConfig(hc)
		}
		body := map[string]any{
			"Id": c.id, "Name": "/" + c.name, "Config": c.config, "HostConfig": hc,
			"State": map[string]any{"Running": c.running, "Paused": c.paused, "ExitCode": c.exitCode, "OOMKilled": false},
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, body)
	case "POST start":
		err := f.startLocked(c)
		f.mu.Unlock()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "POST wait":
		exited := c.exited
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-exited:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
		code := c.exitCode
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": code})
	case "POST pause", "POST unpause":
		c.paused = m[2] == "pause"
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "POST stop":
		f.exitLocked(c, 143)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "POST kill":
		f.exitLocked(c, 137)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "DELETE ":
		if c.running && call.Query.Get("force") != "1" {
			f.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]string{"message": "container is running"})
			return
		}
		f.exitLocked(c, 137)
		delete(f.containers, c.id)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		f.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "fake engine: no route " + op})
	}
}

// startLocked plays the container: the splice helper serving the socket
// in the bind-mounted run dir, joined to the -port the entrypoint names.
func (f *fakeEngine) startLocked(c *fakeContainer) error {
	var runDir string
	mounts, _ := c.hostConfig["Mounts"].([]any)
	for _, m := range mounts {
		mm, _ := m.(map[string]any)
		if mm["Target"] == RunDir {
			runDir, _ = mm["Source"].(string)
		}
	}
	if runDir == "" {
		return fmt.Errorf("no bind mount at %s", RunDir)
	}
	ep, _ := c.config["Entrypoint"].([]any)
	port := 0
	for i := 0; i+1 < len(ep); i++ {
		if ep[i] == "-port" {
			port, _ = strconv.Atoi(ep[i+1].(string))
		}
	}
	ln, err := splice.Listen(filepath.Join(runDir, socketName))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go splice.Serve(ctx, ln, fmt.Sprintf("127.0.0.1:%d", port), nil)
	c.running, c.stopServe = true, cancel
	return nil
}

func (f *fakeEngine) exitLocked(c *fakeContainer, code int) {
	if !c.running {
		return
	}
	c.running, c.exitCode = false, code
	c.stopServe()
	close(c.exited)
}
