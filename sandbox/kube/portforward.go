package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// APIServerPortForward reaches pods through the API server's portforward
// subresource: WebSocket tunnelling first, SPDY where the server does not
// offer it, as kubectl does. Each Dial is a new stream pair on one
// connection, so no local port is opened that would bypass the relay.
func APIServerPortForward(cfg *rest.Config, cs kubernetes.Interface) PortForward {
	return func(ctx context.Context, namespace, pod string, port int) (Forwarder, error) {
		u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return nil, fmt.Errorf("spdy transport: %w", err)
		}
		var dialer httpstream.Dialer = spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
		ws, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
		if err != nil {
			return nil, fmt.Errorf("websocket transport: %w", err)
		}
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		return NewStreamForwarder(dialer, port), nil
	}
}

// StreamForwarder opens one portforward connection lazily (again after it
// drops) and makes each Dial a data and error stream pair on it.
type StreamForwarder struct {
	dialer httpstream.Dialer
	port   int
	reqID  atomic.Int64

	mu     sync.Mutex
	conn   httpstream.Connection
	closed bool
}

// NewStreamForwarder forwards to port over connections from dialer.
func NewStreamForwarder(dialer httpstream.Dialer, port int) *StreamForwarder {
	return &StreamForwarder{dialer: dialer, port: port}
}

func (f *StreamForwarder) connection() (httpstream.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("port-forward closed")
	}
	if f.conn != nil {
		select {
		case <-f.conn.CloseChan():
			f.conn = nil
		default:
			return f.conn, nil
		}
	}
	conn, proto, err := f.dialer.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return nil, fmt.Errorf("port-forward upgrade: %w", err)
	}
	if proto != portforward.PortForwardProtocolV1Name {
		conn.Close()
		return nil, fmt.Errorf("port-forward: server chose protocol %q, want %q", proto, portforward.PortForwardProtocolV1Name)
	}
	f.conn = conn
	return conn, nil
}

// Dial opens a stream to the pod's port. ctx bounds only the set-up.
func (f *StreamForwarder) Dial(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := f.connection()
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(f.reqID.Add(1), 10)
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(f.port))
	h.Set(corev1.PortForwardRequestIDHeader, id)
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("port-forward error stream: %w", err)
	}
	errStream.Close() // nothing is written to it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("port-forward data stream: %w", err)
	}
	sc := &streamConn{conn: conn, data: data, errStream: errStream, remoteErr: make(chan error, 1)}
	go func() {
		msg, err := io.ReadAll(errStream)
		switch {
		case err != nil:
			sc.remoteErr <- fmt.Errorf("port-forward error stream: %w", err)
		case len(msg) > 0:
			sc.remoteErr <- fmt.Errorf("port-forward to port %d: %s", f.port, msg)
		}
		close(sc.remoteErr)
	}()
	return sc, nil
}

// Close ends the connection and every stream on it.
func (f *StreamForwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.conn == nil {
		return nil
	}
	err := f.conn.Close()
	f.conn = nil
	return err
}

// streamConn is a data stream as a net.Conn. Deadlines are not supported
// (the relay bounds exchanges with its own timeout).
type streamConn struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	remoteErr chan error
	once      sync.Once
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.data.Read(p)
	if errors.Is(err, io.EOF) {
		// The kubelet reports a failed dial inside the pod on the error
		// stream and then closes the data stream.
		select {
		case rerr, ok := <-c.remoteErr:
			if ok && rerr != nil {
				return n, rerr
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) { return c.data.Write(p) }

// CloseWrite half-closes, as a TCP connection would.
func (c *streamConn) CloseWrite() error { return c.data.Close() }

func (c *streamConn) Close() error {
	c.once.Do(func() {
		_ = c.data.Reset()
		c.conn.RemoveStreams(c.data, c.errStream)
	})
	return nil
}

type pfAddr struct{}

func (pfAddr) Network() string { return "portforward" }
func (pfAddr) String() string  { return "portforward" }

func (c *streamConn) LocalAddr() net.Addr              { return pfAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return pfAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }
