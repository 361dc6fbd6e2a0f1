package kube

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	spdyserver "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/sandgate/sandgate/sandbox"
)

// fakeKubelet speaks the server side of the portforward protocol over
// SPDY, as the kubelet does behind the API server: for each data stream it
// dials the model's port (here on host loopback) and reports a failed dial
// on the paired error stream.
func fakeKubelet(t *testing.T, modelAddr string, modelPort int) *httptest.Server {
	t.Helper()
	upgrader := spdyserver.NewResponseUpgrader()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpstream.Handshake(r, w, []string{portforward.PortForwardProtocolV1Name}); err != nil {
			return
		}
		streams := make(chan httpstream.Stream, 16)
		conn := upgrader.UpgradeResponse(w, r, func(s httpstream.Stream, _ <-chan struct{}) error {
			streams <- s
			return nil
		})
		if conn == nil {
			return
		}
		defer conn.Close()
		var mu sync.Mutex
		errStreams := map[string]httpstream.Stream{}
		for {
			select {
			case s := <-streams:
				id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
				switch s.Headers().Get(corev1.StreamType) {
				case corev1.StreamTypeError:
					mu.Lock()
					errStreams[id] = s
					mu.Unlock()
				case corev1.StreamTypeData:
					mu.Lock()
					es := errStreams[id]
					mu.Unlock()
					go serveData(s, es, modelAddr, modelPort)
				}
			case <-conn.CloseChan():
				return
			}
		}
	}))
}

func serveData(data, errStream httpstream.Stream, modelAddr string, modelPort int) {
	defer data.Close()
	if errStream != nil {
		defer errStream.Close()
	}
	port, _ := strconv.Atoi(data.Headers().Get(corev1.PortHeader))
	if port != modelPort {
		if errStream != nil {
			fmt.Fprintf(errStream, "failed to connect to localhost:%d inside namespace: connection refused", port)
		}
		return
	}
	c, err := net.Dial("tcp", modelAddr)
	if err != nil {
		return
	}
	defer c.Close()
	go func() {
		io.Copy(c, data)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(data, c)
}

func spdyDialer(t *testing.T, srv *httptest.Server) httpstream.Dialer {
	t.Helper()
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/namespaces/ns/pods/model/portforward", nil)
	return spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u.URL)
}

func TestStreamForwarderCarriesRelayTrafficOverSPDY(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", r.URL.Path, len(body))
	}))
	defer model.Close()
	port := model.Listener.Addr().(*net.TCPAddr).Port
	kubelet := fakeKubelet(t, model.Listener.Addr().String(), port)
	defer kubelet.Close()

	fwd := NewStreamForwarder(spdyDialer(t, kubelet), port)
	relay, err := sandbox.NewRelay(sandbox.RelayOptions{}, sandbox.Upstream{Host: "sandbox", Dial: fwd.Dial}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Repeat("x", 100_000+i)
			resp, err := http.Post(fmt.Sprintf("%s/v1/chat/completions/%d", relay.URL(), i), "text/plain", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("/v1/chat/completions/%d %d", i, len(body)); resp.StatusCode != 200 || string(got) != want {
				errs <- fmt.Errorf("request %d: %d %q, want %q", i, resp.StatusCode, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := relay.Stats(); st.Requests != 8 || st.Errors != 0 {
		t.Errorf("relay stats %+v", st)
	}
	if err := fwd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fwd.Dial(context.Background()); err == nil {
		t.Error("Dial after Close succeeded")
	}
}

func TestStreamForwarderSurfacesTheKubeletsError(t *testing.T) {
	kubelet := fakeKubelet(t, "127.0.0.1:1", 8000)
	defer kubelet.Close()
	fwd := NewStreamForwarder(spdyDialer(t, kubelet), 9999)
	defer fwd.Close()
	c, err := fwd.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(c)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "localhost:9999") {
			t.Errorf("read = %v, want the kubelet's connect error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("read did not end")
	}
}
