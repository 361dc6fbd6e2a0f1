package sandbox

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandgate/sandgate/internal/reexec"
)

// Roles the test binary plays inside sandboxes.
const (
	roleTestModel = "sandgate-test-model" // HTTP server: sandgate-test-model <port>
)

func TestMain(m *testing.M) {
	reexec.Register(roleTestModel, testModelMain)
	if reexec.Init() {
		return
	}
	code := m.Run()
	// Each sandbox removes its own cgroup; the shared test parent is ours to
	// remove once no test needs it (it only goes if empty).
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + testCgroupParent)
	for _, d := range append(dirs, "/sys/fs/cgroup/"+testCgroupParent) {
		_ = os.Remove(d)
	}
	os.Exit(code)
}

const testCgroupParent = "sandgate-test"

// testModelMain stands in for a model server and reports what it can see
// from inside the sandbox.
func testModelMain() {
	port := os.Args[1]
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	})
	// /dial?addr=host:port tries egress from inside.
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		res := map[string]any{"ok": err == nil}
		if err != nil {
			res["err"] = err.Error()
		} else {
			c.Close()
		}
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /self", func(w http.ResponseWriter, r *http.Request) {
		ifs, _ := net.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		host, _ := os.Hostname()
		ents, _ := os.ReadDir("/proc")
		nproc := 0
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				nproc++
			}
		}
		status, _ := os.ReadFile("/proc/self/status")
		nnp := strings.Contains(string(status), "NoNewPrivs:\t1")
		json.NewEncoder(w).Encode(map[string]any{
			"pid": os.Getpid(), "hostname": host, "interfaces": names,
			"procs": nproc, "no_new_privs": nnp, "env": os.Environ(),
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, "test model listening on", srv.Addr)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "test model:", err)
		os.Exit(1)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}
