package shadow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// worker sends queued mirrors to the candidate, one at a time.
func (p *Proxy) worker() {
	defer p.workers.Done()
	for job := range p.queue {
		p.mirror(job)
	}
}

// mirror calls the candidate with the job's request, reads (up to the
// capture limit) and discards its reply, and records the pair. Nothing here
// can reach the client: the client's response was finished before the job
// was queued.
func (p *Proxy) mirror(job *mirrorJob) {
	p.stats.Mirrored.Add(1)
	ctx, cancel := context.WithTimeout(p.workCtx, p.cfg.MirrorTimeout)
	defer cancel()

	cand := capture{limit: p.cfg.MaxCaptureBytes}
	var candCode int
	var candTTFB time.Duration
	start := time.Now()
	status, err := func() (string, error) {
		req, err := http.NewRequestWithContext(ctx, job.method, p.candidateURL(job.uri), bytes.NewReader(job.body))
		if err != nil {
			return StatusMalformed, err
		}
		req.Header = p.mirrorHeader(job.header)
		req.ContentLength = int64(len(job.body))
		resp, err := p.candRT.RoundTrip(req)
		if err != nil {
			return classifyMirror(p.workCtx, ctx, err), err
		}
		defer resp.Body.Close()
		candTTFB, candCode = time.Since(start), resp.StatusCode
		// Read to the end (so latency covers the whole reply, streamed or
		// not), keeping only the capture limit in memory.
		buf := p.bufs.Get()
		_, err = io.CopyBuffer(captureWriter{&cand}, onlyReader{resp.Body}, buf)
		p.bufs.Put(buf)
		if err != nil {
			return classifyMirror(p.workCtx, ctx, err), err
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return "http_" + strconv.Itoa(resp.StatusCode), nil
		}
		return StatusOK, nil
	}()
	candLatency := time.Since(start)
	if status != StatusOK {
		p.stats.CandidateErrors.Add(1)
		p.cfg.Logger.Debug("shadow: candidate call failed", "request_id", job.requestID, "status", status, "err", err)
	}

	if p.cfg.Recorder == nil {
		return
	}
	row := p.row(job, &cand, status, err, candCode, candTTFB, candLatency)
	if rerr := p.cfg.Recorder.Add(p.workCtx, row); rerr != nil {
		p.stats.RecordErrors.Add(1)
		p.cfg.Logger.Warn("shadow: recording a mirrored pair failed", "request_id", job.requestID, "err", rerr)
		return
	}
	p.stats.Recorded.Add(1)
}

func (p *Proxy) candidateURL(uri string) string {
	base := strings.TrimRight(p.cfg.Candidate.String(), "/")
	return base + uri
}

// mirrorHeader copies the client's headers minus hop-by-hop and
// credential-like ones (unless explicitly forwarded), then applies
// CandidateHeader.
func (p *Proxy) mirrorHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, v := range in {
		if hopByHop[http.CanonicalHeaderKey(k)] {
			continue
		}
		if isCredentialHeader(k) && !p.forwarded(k) {
			continue
		}
		out[k] = v
	}
	for k, v := range p.cfg.CandidateHeader {
		out[http.CanonicalHeaderKey(k)] = v
	}
	out.Set("X-Sandgate-Shadow", "1") // lets the candidate tell mirrors from real traffic
	return out
}

func (p *Proxy) forwarded(name string) bool {
	for _, f := range p.cfg.ForwardCredentials {
		if strings.EqualFold(f, name) {
			return true
		}
	}
	return false
}

var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// isCredentialHeader errs on the side of stripping: a header the candidate
// needed can be forwarded by name, a leaked token cannot be recalled.
func isCredentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "cookie", "token", "secret", "api-key", "apikey", "api_key", "password", "session", "credential", "signature", "x-amz-", "subscription-key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func classifyMirror(parent, call context.Context, err error) string {
	switch {
	case parent.Err() != nil:
		return StatusCanceled
	case errors.Is(call.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return StatusTimeout
	default:
		return StatusTransport
	}
}

type captureWriter struct{ c *capture }

func (w captureWriter) Write(b []byte) (int, error) { w.c.Write(b); return len(b), nil }

func (p *Proxy) row(job *mirrorJob, cand *capture, candStatus string, candErr error, candCode int, candTTFB, candLatency time.Duration) ProxyPairRow {
	incText := responseText(job.api, job.incBody.buf.Bytes())
	candText := responseText(job.api, cand.buf.Bytes())
	row := ProxyPairRow{
		ReleaseID:          p.cfg.ReleaseID,
		Seq:                job.seq,
		RequestID:          job.requestID,
		ReceivedUnixMS:     job.received.UnixMilli(),
		API:                job.api,
		Method:             job.method,
		Path:               job.uri,
		Stream:             isStream(job.body),
		Prompt:             truncate(promptText(job.api, job.body), promptMaxBytes),
		RequestBody:        string(job.body),
		IncumbentResponse:  incText,
		CandidateResponse:  candText,
		IncumbentCode:      int32(job.incCode),
		CandidateCode:      int32(candCode),
		IncumbentStatus:    job.incStatus,
		CandidateStatus:    candStatus,
		IncumbentLatencyMS: ms(job.incLatency),
		CandidateLatencyMS: ms(candLatency),
		IncumbentTTFBMS:    ms(job.incTTFB),
		CandidateTTFBMS:    ms(candTTFB),
		IncumbentBytes:     job.incBody.total,
		CandidateBytes:     cand.total,
		IncumbentTruncated: job.incBody.truncated,
		CandidateTruncated: cand.truncated,
	}
	if row.IncumbentStatus == StatusOK && row.CandidateStatus == StatusOK && !row.IncumbentTruncated && !row.CandidateTruncated {
		row.ExactMatch = ExactMatch(incText, candText)
		row.Similarity = JaccardSimilarity(incText, candText)
		row.RougeL = RougeLF1(candText, incText)
	}
	var errs []string
	if job.incErr != "" {
		errs = append(errs, "incumbent: "+truncate(job.incErr, 512))
	}
	if candErr != nil {
		errs = append(errs, "candidate: "+truncate(candErr.Error(), 512))
	}
	row.Error = strings.Join(errs, "; ")
	return row
}

const promptMaxBytes = 2048

// isStream reports an OpenAI request with "stream": true.
func isStream(body []byte) bool {
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return false
	}
	var b struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &b) == nil && b.Stream
}

// promptText is the last user message of a chat request (what a reader
// wants next to the replies) or the whole body of any other request.
func promptText(api string, body []byte) string {
	if api != APIOpenAIChat {
		return string(body)
	}
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil {
		return string(body)
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			var s string
			if json.Unmarshal(req.Messages[i].Content, &s) == nil {
				return s
			}
			return string(req.Messages[i].Content) // multi-part content: keep it as JSON
		}
	}
	return string(body)
}

// responseText reduces a chat reply, streamed (SSE) or not, to the
// assistant's text so comparators see the same thing either way; other
// APIs (OIP v2) are compared on the raw JSON.
func responseText(api string, body []byte) string {
	if api != APIOpenAIChat {
		return string(bytes.TrimSpace(body))
	}
	trimmed := bytes.TrimSpace(body)
	if bytes.HasPrefix(trimmed, []byte("data:")) {
		var sb strings.Builder
		sc := bufio.NewScanner(bytes.NewReader(trimmed))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
			if !ok {
				continue
			}
			line = bytes.TrimSpace(line)
			if bytes.Equal(line, []byte("[DONE]")) {
				break
			}
			var ev struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if json.Unmarshal(line, &ev) == nil && len(ev.Choices) > 0 {
				sb.WriteString(ev.Choices[0].Delta.Content)
			}
		}
		return sb.String()
	}
	var resp struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(trimmed, &resp) == nil && len(resp.Choices) > 0 {
		return resp.Choices[0].Message.Content
	}
	return string(trimmed)
}

// onlyReader hides WriterTo/ReaderFrom so io.CopyBuffer uses the pooled buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }
