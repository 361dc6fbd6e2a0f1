package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandgate/sandgate/datasets"
	"github.com/sandgate/sandgate/objstore"
)

// ProxyPairRow is one mirrored live request: the request, the incumbent's
// reply (the one the client got), the candidate's (discarded) reply, both
// latencies and statuses. It is the Parquet schema of the proxy's part
// files; PairRow stays the schema of replays, which have a noise-floor
// repeat that live traffic lacks. ToPairRow converts for Accumulator.
//
// Responses are the assistant text for OpenAI chat (streamed replies are
// reassembled from their SSE deltas) and the raw JSON for OIP v2, cut at
// MaxCaptureBytes (see *_truncated; comparison columns are then false/0).
type ProxyPairRow struct {
	ReleaseID          string  `parquet:"release_id,dict" json:"release_id"`
	Seq                int64   `parquet:"seq" json:"seq"` // arrival order at the proxy, 1-based
	RequestID          string  `parquet:"request_id" json:"request_id"`
	ReceivedUnixMS     int64   `parquet:"received_unix_ms" json:"received_unix_ms"`
	API                string  `parquet:"api,dict" json:"api"` // openai_chat | oip_v2_infer
	Method             string  `parquet:"method,dict" json:"method"`
	Path               string  `parquet:"path,dict" json:"path"`
	Stream             bool    `parquet:"stream" json:"stream"`
	Prompt             string  `parquet:"prompt" json:"prompt"`             // last user message (chat) or the body, truncated
	RequestBody        string  `parquet:"request_body" json:"request_body"` // as the client sent it (credentials live in headers, never here)
	IncumbentResponse  string  `parquet:"incumbent_response" json:"incumbent_response"`
	CandidateResponse  string  `parquet:"candidate_response" json:"candidate_response"`
	IncumbentCode      int32   `parquet:"incumbent_code" json:"incumbent_code"` // HTTP status; 0 when no reply
	CandidateCode      int32   `parquet:"candidate_code" json:"candidate_code"`
	IncumbentStatus    string  `parquet:"incumbent_status,dict" json:"incumbent_status"` // ok | timeout | canceled | transport | http_<code>
	CandidateStatus    string  `parquet:"candidate_status,dict" json:"candidate_status"`
	IncumbentLatencyMS float64 `parquet:"incumbent_latency_ms" json:"incumbent_latency_ms"` // to the last byte delivered to the client
	CandidateLatencyMS float64 `parquet:"candidate_latency_ms" json:"candidate_latency_ms"` // to the last byte read
	IncumbentTTFBMS    float64 `parquet:"incumbent_ttfb_ms" json:"incumbent_ttfb_ms"`       // to the response headers
	CandidateTTFBMS    float64 `parquet:"candidate_ttfb_ms" json:"candidate_ttfb_ms"`
	IncumbentBytes     int64   `parquet:"incumbent_bytes" json:"incumbent_bytes"`
	CandidateBytes     int64   `parquet:"candidate_bytes" json:"candidate_bytes"`
	IncumbentTruncated bool    `parquet:"incumbent_truncated" json:"incumbent_truncated"`
	CandidateTruncated bool    `parquet:"candidate_truncated" json:"candidate_truncated"`
	ExactMatch         bool    `parquet:"exact_match" json:"exact_match"`
	Similarity         float64 `parquet:"similarity" json:"similarity"` // token Jaccard
	RougeL             float64 `parquet:"rouge_l" json:"rouge_l"`
	Error              string  `parquet:"error" json:"error"`
}

// ToPairRow maps the row onto the replay schema so Accumulator can
// summarise live traffic; live traffic has no noise-floor repeat, so that
// call is "skipped".
func (r ProxyPairRow) ToPairRow() PairRow {
	return PairRow{
		ReleaseID:             r.ReleaseID,
		RequestID:             r.RequestID,
		Prompt:                r.Prompt,
		IncumbentResponse:     r.IncumbentResponse,
		CandidateResponse:     r.CandidateResponse,
		IncumbentLatencyMS:    r.IncumbentLatencyMS,
		CandidateLatencyMS:    r.CandidateLatencyMS,
		IncumbentStatus:       r.IncumbentStatus,
		CandidateStatus:       r.CandidateStatus,
		IncumbentRepeatStatus: StatusSkipped,
		ExactMatch:            r.ExactMatch,
		Similarity:            r.Similarity,
		RougeL:                r.RougeL,
		Error:                 r.Error,
	}
}

// PartSink publishes a finished local file under a relative slash name
// and returns the key a manifest should record.
type PartSink interface {
	Publish(ctx context.Context, rel, localPath string) (key string, err error)
	// Stage is a local directory for files before Publish.
	Stage() string
}

// DirSink writes parts into a local directory (Stage is the directory itself).
type DirSink struct{ Dir string }

// Stage implements PartSink.
func (d DirSink) Stage() string { return d.Dir }

// Publish implements PartSink: files are already in place; the key is the
// path relative to Dir.
func (d DirSink) Publish(_ context.Context, rel, localPath string) (string, error) {
	want := filepath.Join(d.Dir, filepath.FromSlash(rel))
	if localPath != want {
		if err := os.Rename(localPath, want); err != nil {
			return "", fmt.Errorf("shadow: move %s to %s: %w", localPath, want, err)
		}
	}
	return rel, nil
}

// S3Sink uploads parts under Prefix ("" or ending in "/") and deletes the
// local copy, so disk use stays at one batch.
type S3Sink struct {
	Store  *objstore.Store
	Prefix string
	Tmp    string // staging directory
}

// Stage implements PartSink.
func (s S3Sink) Stage() string { return s.Tmp }

// Publish implements PartSink.
func (s S3Sink) Publish(ctx context.Context, rel, localPath string) (string, error) {
	key := s.Prefix + rel
	if _, err := s.Store.PutFile(ctx, key, localPath); err != nil {
		return "", fmt.Errorf("shadow: upload %s to s3://%s/%s: %w", localPath, s.Store.Bucket(), key, err)
	}
	_ = os.Remove(localPath)
	return key, nil
}

// RecorderConfig tunes a Recorder.
type RecorderConfig struct {
	Sink          PartSink
	BatchRows     int           // rows per part file; default 10000
	FlushInterval time.Duration // a non-empty batch is written at least this often; default 30s
	ReleaseID     string        // goes into the manifest
	Logger        *slog.Logger
}

// Recorder batches ProxyPairRows into Parquet part files
// (part-00000.parquet, part-00001.parquet, … in the order batches close)
// and writes manifest.json listing them at Close. Add only appends to a
// slice; the Parquet encoding and upload happen on the recorder's own
// goroutine, so a slow S3 slows the mirror workers at most by the one
// full batch that waits to be handed over.
type Recorder struct {
	cfg      RecorderConfig
	mu       sync.Mutex
	batch    []ProxyPairRow
	nextPart int
	sending  sync.WaitGroup // Adds handing a full batch to the writer
	full     chan batch     // batches waiting for the writer (1 deep)
	done     chan struct{}
	stop     chan struct{}
	once     sync.Once

	// Written by the writer goroutine only; read after done is closed.
	manifest datasets.Manifest
	errs     []error
}

// NewRecorder starts the writer goroutine; ctx bounds its uploads. Call Close.
func NewRecorder(ctx context.Context, cfg RecorderConfig) (*Recorder, error) {
	if cfg.Sink == nil {
		return nil, errors.New("shadow: recorder: Sink is nil; use DirSink{Dir} or S3Sink")
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 10000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Sink.Stage(), 0o755); err != nil {
		return nil, fmt.Errorf("shadow: recorder: create %s: %w", cfg.Sink.Stage(), err)
	}
	r := &Recorder{
		cfg:  cfg,
		full: make(chan batch, 1),
		done: make(chan struct{}),
		stop: make(chan struct{}),
		manifest: datasets.Manifest{
			SchemaVersion:    datasets.ManifestSchemaVersion,
			Dataset:          "shadow-proxy",
			Generator:        "shadow.proxy",
			GeneratorVersion: "1",
			Params:           map[string]string{"release_id": cfg.ReleaseID},
		},
	}
	go r.run(ctx)
	return r, nil
}

// Add implements RowSink. It blocks only while an earlier full batch
// waits for the writer, and fails once Close has begun.
func (r *Recorder) Add(ctx context.Context, row ProxyPairRow) error {
	r.mu.Lock()
	select {
	case <-r.stop:
		r.mu.Unlock()
		return errors.New("shadow: recorder is closed")
	default:
	}
	r.batch = append(r.batch, row)
	if len(r.batch) < r.cfg.BatchRows {
		r.mu.Unlock()
		return nil
	}
	b := r.takeLocked()
	r.sending.Add(1)
	r.mu.Unlock()
	defer r.sending.Done()
	// Sent outside the lock so the writer's timer flush can never deadlock
	// with a blocked Add; the part number was fixed under the lock, so
	// names stay deterministic whatever order batches arrive in.
	select {
	case r.full <- b:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shadow: recorder: %d rows lost waiting for the writer: %w", len(b.rows), ctx.Err())
	}
}

type batch struct {
	part int
	rows []ProxyPairRow
}

// takeLocked detaches the open batch and numbers it; r.mu must be held.
func (r *Recorder) takeLocked() batch {
	b := batch{part: r.nextPart, rows: r.batch}
	r.nextPart++
	r.batch = make([]ProxyPairRow, 0, min(r.cfg.BatchRows, 1024))
	return b
}

func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case b := <-r.full:
			r.write(ctx, b)
		case <-t.C:
			r.mu.Lock()
			var b batch
			if len(r.batch) > 0 {
				b = r.takeLocked()
			}
			r.mu.Unlock()
			if len(b.rows) > 0 {
				r.write(ctx, b)
			}
		case <-r.stop:
			// No Add starts a hand-over after stop; finish the ones under
			// way, then the open batch.
			r.mu.Lock()
			var last batch
			if len(r.batch) > 0 {
				last = r.takeLocked()
			}
			r.mu.Unlock()
			sent := make(chan struct{})
			go func() { r.sending.Wait(); close(sent) }()
		drain:
			for {
				select {
				case b := <-r.full:
					r.write(ctx, b)
				case <-sent:
					select {
					case b := <-r.full:
						r.write(ctx, b)
					default:
					}
					break drain
				}
			}
			if len(last.rows) > 0 {
				r.write(ctx, last)
			}
			return
		}
	}
}

func (r *Recorder) write(ctx context.Context, b batch) {
	rel := fmt.Sprintf("part-%05d.parquet", b.part)
	local := filepath.Join(r.cfg.Sink.Stage(), rel)
	st, err := datasets.WriteFile(local, slices.Values(b.rows), datasets.WriteOptions{
		Metadata: map[string]string{"release_id": r.cfg.ReleaseID, "part": strconv.Itoa(b.part)},
	})
	if err == nil {
		var key string
		key, err = r.cfg.Sink.Publish(ctx, rel, local)
		if err == nil {
			r.manifest.AddFile(key, st)
			r.cfg.Logger.Debug("shadow: part written", "key", key, "rows", st.Rows)
			return
		}
	}
	// The part number stays used, so the manifest's gap shows where rows were lost.
	r.errs = append(r.errs, fmt.Errorf("part %s (%d rows): %w", rel, len(b.rows), err))
	r.cfg.Logger.Error("shadow: writing a part failed; its rows are lost", "part", rel, "rows", len(b.rows), "err", err)
}

// Close writes the open batch and manifest.json (last, so a reader that
// finds a manifest finds every part it lists) and returns the manifest.
// Errors of earlier parts are returned joined; the manifest lists the
// parts that were written.
func (r *Recorder) Close(ctx context.Context) (datasets.Manifest, error) {
	r.once.Do(func() {
		r.mu.Lock()
		close(r.stop)
		r.mu.Unlock()
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		return datasets.Manifest{}, fmt.Errorf("shadow: recorder close: %w", ctx.Err())
	}
	m := r.manifest
	// Batches can reach the writer out of order; list parts by name.
	slices.SortFunc(m.Files, func(a, b datasets.ManifestFile) int { return strings.Compare(a.Key, b.Key) })
	if m.Files == nil {
		m.Files = []datasets.ManifestFile{}
	}
	b, err := m.Marshal()
	if err != nil {
		return m, fmt.Errorf("shadow: recorder: manifest: %w", err)
	}
	local := filepath.Join(r.cfg.Sink.Stage(), "manifest.json")
	if err := os.WriteFile(local+".tmp", b, 0o644); err != nil {
		return m, fmt.Errorf("shadow: recorder: write manifest: %w", err)
	}
	if err := os.Rename(local+".tmp", local); err != nil {
		return m, fmt.Errorf("shadow: recorder: write manifest: %w", err)
	}
	if _, err := r.cfg.Sink.Publish(ctx, path.Base(local), local); err != nil {
		return m, err
	}
	return m, errors.Join(r.errs...)
}
