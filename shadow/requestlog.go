package shadow

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sandgate/sandgate/modelapi"
)

// RecordedRequest is one request read back from a Parquet request log, to
// be sent again through the proxy (DriveRecorded) or replayed with a noise
// floor (ChatRequests + Replay).
type RecordedRequest struct {
	ID             string
	ReceivedUnixMS int64 // 0 when the log has no timestamps
	Method         string
	Path           string // path and query
	Body           []byte
}

// Columns of a request log. Any Parquet file with these (flat, top-level)
// columns is a request log; the proxy recorder's part files (ProxyPairRow)
// are one as they are, and replay result files (PairRow) are read through
// their prompt column.
//
//	request_body      string  required (or prompt): the body as the client sent it
//	prompt            string  used when request_body is absent: sent as one user message
//	request_id        string  optional; default "row-<n>" (n is the row number)
//	method            string  optional; default POST
//	path              string  optional; default /v1/chat/completions
//	received_unix_ms  int64   optional; used to pace a replay at recorded speed
//
// Rows with an empty body are skipped (counted in RequestLog.Skipped).
const (
	colBody     = "request_body"
	colPrompt   = "prompt"
	colID       = "request_id"
	colMethod   = "method"
	colPath     = "path"
	colReceived = "received_unix_ms"
)

// RequestLog is what ReadRequestLog found.
type RequestLog struct {
	Requests []RecordedRequest
	Total    int64 // rows in the file
	Skipped  int   // rows in range without a body
}

// ReadRequestLog reads up to limit rows (limit <= 0: to the end) starting
// at row offset of the request log at path. The schema is checked before
// any row is read, and an error names the column and the fix.
func ReadRequestLog(path string, offset, limit int64) (out RequestLog, err error) {
	fail := func(err error) (RequestLog, error) {
		return RequestLog{}, fmt.Errorf("shadow: request log %s: %w", path, err)
	}
	// A corrupt page can make the decoder panic; a bad file is bad input, not a crash.
	defer func() {
		if r := recover(); r != nil {
			out, err = fail(fmt.Errorf("decode: %v", r))
		}
	}()
	if offset < 0 {
		return fail(fmt.Errorf("negative offset %d", offset))
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := checkFooter(f, st.Size()); err != nil {
		return fail(err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fail(fmt.Errorf("not a readable Parquet file: %w", err))
	}
	if err := checkSizes(f, pf, st.Size()); err != nil {
		return fail(err)
	}
	cols, err := requestLogColumns(pf.Schema())
	if err != nil {
		return fail(err)
	}
	total := pf.NumRows()
	out = RequestLog{Total: total, Requests: []RecordedRequest{}}
	if offset >= total {
		return out, nil
	}
	want := total - offset
	if limit > 0 && limit < want {
		want = limit
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	if err := r.SeekToRow(offset); err != nil {
		return fail(fmt.Errorf("seek to row %d: %w", offset, err))
	}
	buf := make([]parquet.Row, 128)
	row := offset
	for row < offset+want {
		n, err := r.ReadRows(buf[:min(int64(len(buf)), offset+want-row)])
		for _, vals := range buf[:n] {
			rq := cols.request(vals, row)
			row++
			if len(rq.Body) == 0 {
				out.Skipped++
				continue
			}
			out.Requests = append(out.Requests, rq)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("at row %d: %w", row, err))
		}
		if n == 0 {
			return fail(fmt.Errorf("reader made no progress at row %d", row))
		}
	}
	return out, nil
}

// checkFooter refuses a footer length longer than the file before the
// decoder allocates a buffer of that length (up to 4 GiB).
func checkFooter(f *os.File, size int64) error {
	if size < 12 {
		return fmt.Errorf("not a readable Parquet file: %d bytes is too short", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("read footer: %w", err)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("not a readable Parquet file: footer claims %d bytes in a %d-byte file", n, size)
	}
	return nil
}

// maxChunkBytes bounds one column chunk of a request log once decoded. The
// decoder sizes its buffers from the footer, so a corrupt or hostile file
// could otherwise make it allocate gigabytes before failing.
const maxChunkBytes = 1 << 30

func checkSizes(f io.ReaderAt, pf *parquet.File, fileSize int64) error {
	md := pf.Metadata()
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("row group %d claims %d rows", i, rg.NumRows)
		}
		for j, c := range rg.Columns {
			m := c.MetaData
			if m.TotalCompressedSize < 0 || m.TotalCompressedSize > fileSize || m.TotalUncompressedSize < 0 || m.TotalUncompressedSize > maxChunkBytes ||
				m.NumValues < 0 || m.DataPageOffset < 0 || m.DataPageOffset >= fileSize || m.DictionaryPageOffset < 0 || m.DictionaryPageOffset >= fileSize {
				return fmt.Errorf("row group %d column %d: footer sizes are corrupt (compressed %d, uncompressed %d bytes, file %d bytes); split the log into files with row groups under 1 GiB",
					i, j, m.TotalCompressedSize, m.TotalUncompressedSize, fileSize)
			}
			if err := checkPages(f, m.DictionaryPageOffset, m.DataPageOffset, m.TotalCompressedSize); err != nil {
				return fmt.Errorf("row group %d column %d: %w", i, j, err)
			}
		}
	}
	return nil
}

// checkPages walks a column chunk's page headers: the decoder allocates
// each page's declared size before it can notice the page is corrupt.
func checkPages(f io.ReaderAt, dictOff, dataOff, size int64) error {
	start := dataOff
	if dictOff > 0 && dictOff < dataOff {
		start = dictOff
	}
	cr := &countingReader{r: io.NewSectionReader(f, start, size)}
	dec := thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(cr))
	for cr.n < size {
		var h format.PageHeader
		if err := dec.Decode(&h); err != nil {
			return fmt.Errorf("page header at byte %d: %w", start+cr.n, err)
		}
		if h.UncompressedPageSize < 0 || int64(h.UncompressedPageSize) > maxChunkBytes || h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > size-cr.n {
			return fmt.Errorf("page at byte %d claims %d bytes (%d compressed) in a %d-byte chunk: the file is corrupt", start+cr.n, h.UncompressedPageSize, h.CompressedPageSize, size)
		}
		cr.n += int64(h.CompressedPageSize)
		cr.skip = true
	}
	return nil
}

// countingReader reads a section sequentially and knows its offset; after
// a page header it jumps over the page body.
type countingReader struct {
	r    *io.SectionReader
	n    int64
	skip bool
}

func (c *countingReader) Read(b []byte) (int, error) {
	if c.skip {
		if _, err := c.r.Seek(c.n, io.SeekStart); err != nil {
			return 0, err
		}
		c.skip = false
	}
	k, err := c.r.Read(b)
	c.n += int64(k)
	return k, err
}

// logColumns holds the leaf index of each column found, -1 when absent.
type logColumns struct{ body, prompt, id, method, path, received int }

func requestLogColumns(s *parquet.Schema) (logColumns, error) {
	c := logColumns{-1, -1, -1, -1, -1, -1}
	var errs []error
	find := func(name string, kind parquet.Kind, dst *int) {
		leaf, ok := s.Lookup(name)
		if !ok {
			return
		}
		if leaf.MaxRepetitionLevel > 0 || len(leaf.Path) != 1 {
			errs = append(errs, fmt.Errorf("column %s is nested or repeated; it must be a top-level scalar", name))
			return
		}
		if got := leaf.Node.Type().Kind(); got != kind {
			errs = append(errs, fmt.Errorf("column %s has type %s; it must be %s", name, got, kind))
			return
		}
		*dst = leaf.ColumnIndex
	}
	find(colBody, parquet.ByteArray, &c.body)
	find(colPrompt, parquet.ByteArray, &c.prompt)
	find(colID, parquet.ByteArray, &c.id)
	find(colMethod, parquet.ByteArray, &c.method)
	find(colPath, parquet.ByteArray, &c.path)
	find(colReceived, parquet.Int64, &c.received)
	if c.body < 0 && c.prompt < 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no %s (or %s) column; a request log needs the request bodies (see shadow.ReadRequestLog for the schema)", colBody, colPrompt))
	}
	return c, errors.Join(errs...)
}

func (c logColumns) request(vals parquet.Row, row int64) RecordedRequest {
	str := func(col int) string {
		if col < 0 || col >= len(vals) {
			return ""
		}
		// Flat schemas hold one value per column, in column order.
		for _, v := range vals {
			if v.Column() == col && !v.IsNull() {
				return string(v.ByteArray())
			}
		}
		return ""
	}
	rq := RecordedRequest{ID: str(c.id), Method: str(c.method), Path: str(c.path), Body: []byte(str(c.body))}
	if c.received >= 0 {
		for _, v := range vals {
			if v.Column() == c.received && !v.IsNull() {
				rq.ReceivedUnixMS = v.Int64()
			}
		}
	}
	if len(rq.Body) == 0 && c.prompt >= 0 {
		if p := str(c.prompt); p != "" {
			rq.Body, _ = json.Marshal(map[string]any{"messages": []modelapi.Message{{Role: "user", Content: p}}})
		}
	}
	if rq.ID == "" {
		rq.ID = fmt.Sprintf("row-%d", row)
	}
	if rq.Method == "" {
		rq.Method = http.MethodPost
	}
	if rq.Path == "" {
		rq.Path = "/v1/chat/completions"
	}
	return rq
}

// ChatRequests turns recorded OpenAI chat requests into Replay requests
// (their messages; sampling parameters come from ReplayOptions so both
// models are asked the same way). Other APIs and unparsable bodies are
// skipped and counted: Replay speaks chat only, DriveRecorded speaks both.
// Ids repeated in the log get a "#n" suffix, since Replay needs unique ids.
func ChatRequests(recs []RecordedRequest) (reqs []Request, skipped int) {
	seen := map[string]int{}
	for _, rc := range recs {
		if !strings.HasSuffix(strings.SplitN(rc.Path, "?", 2)[0], "/chat/completions") {
			skipped++
			continue
		}
		var body struct {
			Messages []modelapi.Message `json:"messages"`
		}
		if json.Unmarshal(rc.Body, &body) != nil || len(body.Messages) == 0 {
			skipped++
			continue
		}
		id := rc.ID
		if n := seen[rc.ID]; n > 0 {
			id = fmt.Sprintf("%s#%d", rc.ID, n)
		}
		seen[rc.ID]++
		reqs = append(reqs, Request{ID: id, Messages: body.Messages})
	}
	return reqs, skipped
}

// DriveOptions paces DriveRecorded.
type DriveOptions struct {
	// Target is the proxy's (or any server's) root URL, e.g. http://127.0.0.1:8080.
	Target string
	// Rate sends this many requests per second, open loop. 0 uses Speed.
	Rate float64
	// Speed replays at the recorded pace multiplied by Speed (2 = twice as
	// fast), from received_unix_ms. 0 with Rate 0, or a log without
	// timestamps, sends as fast as Concurrency allows.
	Speed float64
	// Concurrency bounds requests in flight; default 64.
	Concurrency int
	// RequestIDHeader carries each recorded id (default X-Request-Id), so
	// the proxy samples and records it under the same id.
	RequestIDHeader string
	Client          *http.Client // default: a client with a 60s timeout
}

// DriveStats counts what DriveRecorded sent.
type DriveStats struct {
	Sent, Failed int64 // Failed: transport errors and non-2xx replies
}

// DriveRecorded sends recorded requests to opt.Target as a client would,
// so a Proxy in front of the incumbent mirrors and records them exactly as
// live traffic. It returns when every request has been answered or ctx ends.
func DriveRecorded(ctx context.Context, reqs []RecordedRequest, opt DriveOptions) (DriveStats, error) {
	if opt.Target == "" {
		return DriveStats{}, errors.New("shadow: drive: Target is empty; give the proxy's root URL")
	}
	if opt.Rate < 0 || opt.Speed < 0 {
		return DriveStats{}, fmt.Errorf("shadow: drive: rate %v and speed %v must not be negative", opt.Rate, opt.Speed)
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 64
	}
	if opt.RequestIDHeader == "" {
		opt.RequestIDHeader = "X-Request-Id"
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: 60 * time.Second}
	}
	target := strings.TrimRight(opt.Target, "/")
	var st DriveStats
	var sent, failed atomic.Int64
	sem := make(chan struct{}, opt.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	var first int64
	if len(reqs) > 0 {
		first = reqs[0].ReceivedUnixMS
	}
	for i, rq := range reqs {
		var at time.Time
		switch {
		case opt.Rate > 0:
			at = start.Add(time.Duration(float64(i) / opt.Rate * float64(time.Second)))
		case opt.Speed > 0 && rq.ReceivedUnixMS > 0 && first > 0:
			at = start.Add(time.Duration(float64(rq.ReceivedUnixMS-first) / opt.Speed * float64(time.Millisecond)))
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sent.Add(1)
			req, err := http.NewRequestWithContext(ctx, rq.Method, target+rq.Path, strings.NewReader(string(rq.Body)))
			if err != nil {
				failed.Add(1)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(opt.RequestIDHeader, rq.ID)
			resp, err := opt.Client.Do(req)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	st.Sent, st.Failed = sent.Load(), failed.Load()
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("shadow: drive stopped after %d of %d requests: %w", st.Sent, len(reqs), err)
	}
	return st, nil
}
