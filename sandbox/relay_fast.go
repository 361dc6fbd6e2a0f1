package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The relay's plain path (no simulated network): a fasthttp server in
// front of the same upstream transport. net/http's server costs a
// background-read goroutine and its wake-up per request, header maps and a
// request clone in ReverseProxy; on this kind of VM those were most of the
// 130–150 µs the relay added at the median, against 55–70 µs for fasthttp
// with the same upstream transport (bench/sandbox). Simulated networks keep
// the net/http path (relay.go), whose paced full-duplex streams they need.

// maxFastBody caps a request body on the plain path; a larger one is
// refused by the server with 413 before the relay sees it.
const maxFastBody = 64 << 20

// maxBuffered is the largest reply read whole before it is sent on; larger
// ones, and replies of unknown length (streams), are passed on as they come.
const maxBuffered = 1 << 20

func (r *Relay) newFastServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               r.serveFast,
		Name:                  "sandgate-relay",
		MaxRequestBodySize:    maxFastBody,
		ReadTimeout:           r.opt.RequestTimeout,
		IdleTimeout:           90 * time.Second,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true,
		Logger:                fastLogger{r.log},
	}
}

type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Warn("relay server: " + fmt.Sprintf(format, args...))
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1); Host is set apart.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true,
}

func (r *Relay) serveFast(fc *fasthttp.RequestCtx) {
	start := time.Now()
	body := fc.PostBody()
	ex := Exchange{
		Time: start, Method: string(fc.Method()), Path: string(fc.Path()),
		Query: string(fc.URI().QueryString()), ContentType: string(fc.Request.Header.ContentType()),
		BytesIn: int64(len(body)),
	}
	ex.Request, ex.RequestTruncated = capped(body, r.bodyCap)

	seq, budget, limit, used, ok := r.admit()
	ex.Seq = seq
	if !ok {
		ex.Status, ex.Err, ex.BytesIn = http.StatusTooManyRequests, budget+" budget exhausted", 0
		fastJSONError(fc, ex.Status, map[string]any{
			"type": "budget_exceeded", "budget": budget, "limit": limit, "used": used,
			"message": fmt.Sprintf("sandbox relay: %s budget of %d exhausted (%d used)", budget, limit, used),
		})
		ex.Latency = time.Since(start)
		r.book(ex, false)
		return
	}

	ctx, cancel := context.WithTimeout(r.base, r.opt.RequestTimeout)
	req, err := http.NewRequestWithContext(ctx, ex.Method, "http://"+r.upHost+string(fc.RequestURI()), bytes.NewReader(body))
	if err != nil {
		cancel()
		r.fastFail(fc, &ex, start, fmt.Errorf("request: %w", err))
		return
	}
	req.Host = r.upHost
	req.ContentLength = int64(len(body))
	fc.Request.Header.VisitAll(func(k, v []byte) {
		if key := textproto.CanonicalMIMEHeaderKey(string(k)); !hopHeaders[key] {
			req.Header.Add(key, string(v))
		}
	})
	resp, err := r.tr.RoundTrip(req)
	if err != nil {
		cancel()
		r.fastFail(fc, &ex, start, err)
		return
	}
	fc.SetStatusCode(resp.StatusCode)
	for k, vs := range resp.Header {
		if hopHeaders[k] {
			continue
		}
		for _, v := range vs {
			fc.Response.Header.Add(k, v)
		}
	}
	ex.Status = resp.StatusCode
	stream := resp.ContentLength < 0 || resp.ContentLength > maxBuffered ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if !stream {
		buf := make([]byte, resp.ContentLength)
		n, err := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		cancel()
		if err != nil {
			// The status line is not sent yet: the client gets a clean
			// error rather than a truncated reply.
			r.fastFail(fc, &ex, start, fmt.Errorf("read reply body (%d of %d bytes): %w", n, resp.ContentLength, err))
			return
		}
		fc.SetBody(buf)
		ex.BytesOut = int64(n)
		ex.Response, ex.ResponseTruncated = capped(buf, r.bodyCap)
		ex.Tokens = parseUsage(buf[max(0, n-usageTail):])
		ex.Latency = time.Since(start)
		r.book(ex, ex.Status >= 500)
		return
	}
	// A stream (SSE tokens, a large or unsized body): sent on as it comes,
	// each read flushed, and booked when it ends.
	fc.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		defer resp.Body.Close()
		out := newHeadTail(r.bodyCap)
		buf := r.bufs.Get()
		defer r.bufs.Put(buf)
		var werr error
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				out.Write(buf[:n])
				ex.BytesOut += int64(n)
				if _, werr = w.Write(buf[:n]); werr == nil {
					werr = w.Flush()
				}
				if werr != nil {
					ex.Err = "client went away: " + werr.Error()
					break
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					ex.Err = "reply stream: " + err.Error()
				}
				break
			}
		}
		ex.Response, ex.ResponseTruncated = out.headString()
		ex.Tokens = usageTokens(out)
		ex.Latency = time.Since(start)
		r.book(ex, ex.Status >= 500 || ex.Err != "")
	})
}

// fastFail answers for an upstream that could not be reached or did not
// answer in time, as the net/http path's proxyError does.
func (r *Relay) fastFail(fc *fasthttp.RequestCtx, ex *Exchange, start time.Time, err error) {
	status, kind := http.StatusBadGateway, "upstream_unreachable"
	if errors.Is(err, context.DeadlineExceeded) {
		status, kind = http.StatusGatewayTimeout, "timeout"
	}
	r.log.Debug("relay upstream error", "path", ex.Path, "err", err)
	fastJSONError(fc, status, map[string]any{"type": kind, "message": "sandbox relay: " + err.Error()})
	ex.Status, ex.Err, ex.Latency = status, err.Error(), time.Since(start)
	r.book(*ex, true)
}

func fastJSONError(fc *fasthttp.RequestCtx, status int, body map[string]any) {
	fc.Response.Reset()
	fc.SetStatusCode(status)
	fc.SetContentType("application/json")
	fc.Response.Header.Set("X-Sandgate-Relay", "1")
	b, _ := json.Marshal(map[string]any{"error": body})
	fc.SetBody(append(b, '\n'))
}

// capped is the first n bytes of b as a string, and whether b was longer.
func capped(b []byte, n int) (string, bool) {
	if len(b) <= n {
		return string(b), false
	}
	return string(b[:n]), true
}
