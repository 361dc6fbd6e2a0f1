package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/sandgate/sandgate/objstore"
)

// Problem is one piece of evidence of tampering (or of a chain still open).
// Seq is the record it concerns (0 when none), Key the object.
type Problem struct {
	Seq  int64  `json:"seq"`
	Key  string `json:"key"`
	What string `json:"what"`
}

// VerifyReport is the outcome of Verify. OK means every record hashes and
// links, the chain is closed by a final record, and every object a record
// names still has the recorded sha256.
type VerifyReport struct {
	ReleaseID string    `json:"release_id"`
	Records   int       `json:"records"`
	Objects   int       `json:"objects"` // distinct objects rehashed
	Head      string    `json:"head"`    // hash of the last record that parsed
	OK        bool      `json:"ok"`
	Problems  []Problem `json:"problems,omitempty"`
}

// verifyParallelism bounds concurrent downloads: verification is I/O bound
// and runs next to other work on small machines.
const verifyParallelism = 4

// downloader is implemented by objstore.Store. When available, objects are
// streamed to a temporary file and hashed on the way, so multi-GiB shards
// are not held in memory.
type downloader interface {
	Download(ctx context.Context, key, path string) (objstore.ObjectInfo, error)
}

// Verify checks the whole audit trail of a release: VerifyChain, then
// re-downloads every object listed in a record's inputs and outputs and
// compares its sha256. Tampering is reported in VerifyReport.Problems; the
// error is only for failures to read (network, permissions, bad id).
func Verify(ctx context.Context, st Store, releaseID string) (VerifyReport, error) {
	rep, recs, err := verifyChain(ctx, st, releaseID)
	if err != nil {
		return rep, err
	}
	probs, n, err := verifyObjects(ctx, st, recs)
	if err != nil {
		return rep, err
	}
	rep.Objects = n
	rep.Problems = append(rep.Problems, probs...)
	return finish(rep), nil
}

// VerifyChain checks the records only (hashes, links, seq continuity,
// closure), without downloading the objects they name: cheap enough to run
// before trusting an attestation's chain head.
func VerifyChain(ctx context.Context, st Store, releaseID string) (VerifyReport, error) {
	rep, _, err := verifyChain(ctx, st, releaseID)
	return finish(rep), err
}

func finish(rep VerifyReport) VerifyReport {
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Key, b.Key))
	})
	rep.OK = len(rep.Problems) == 0
	return rep
}

func verifyChain(ctx context.Context, st Store, releaseID string) (VerifyReport, []Record, error) {
	rep := VerifyReport{ReleaseID: releaseID}
	prefix, err := LogPrefix(releaseID)
	if err != nil {
		return rep, nil, err
	}
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return rep, nil, fmt.Errorf("audit: verify %s: list records: %w", releaseID, err)
	}
	add := func(seq int64, key, what string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: seq, Key: key, What: fmt.Sprintf(what, args...)})
	}
	present := map[int64]string{}
	var last int64
	for _, o := range objs {
		seq, ok := seqFromKey(prefix, o.Key)
		if !ok {
			add(0, o.Key, "unexpected object in the audit log (records are named NNNNNN.json)")
			continue
		}
		present[seq] = o.Key
		last = max(last, seq)
	}
	if last == 0 {
		add(0, prefix, "no audit records: the release never started or its log was deleted")
		return rep, nil, nil
	}

	var recs []Record
	var prev *Record // the previous record, if it parsed
	prevIntact := false
	for seq := int64(1); seq <= last; seq++ {
		key, ok := present[seq]
		if !ok {
			key, _ = RecordKey(releaseID, seq)
			add(seq, key, "missing: record deleted (gap in the chain)")
			prev, prevIntact = nil, false
			continue
		}
		b, err := st.Get(ctx, key)
		if errors.Is(err, objstore.ErrNotFound) { // deleted since the listing
			add(seq, key, "missing: record deleted (gap in the chain)")
			prev, prevIntact = nil, false
			continue
		}
		if err != nil {
			return rep, nil, fmt.Errorf("audit: verify %s: %w", releaseID, err)
		}
		rep.Records++
		r, computed, err := checkStored(b)
		if err != nil {
			add(seq, key, "unreadable record (altered): %v", err)
			prev, prevIntact = nil, false
			continue
		}
		selfOK := true
		if r.Seq != seq {
			add(seq, key, "record says seq %d but is stored as seq %d: records were moved or reordered", r.Seq, seq)
			selfOK = false
		}
		if r.ReleaseID != releaseID {
			add(seq, key, "record belongs to release %q, not %q: copied from another release", r.ReleaseID, releaseID)
			selfOK = false
		}
		if r.Hash != computed {
			add(seq, key, "hash mismatch: record content was changed after it was written (stored %s, computed %s)", r.Hash, computed)
			selfOK = false
		}
		switch {
		case !selfOK:
			// One problem per tampering: a broken record's links say nothing more.
		case seq == 1 && r.PrevHash != "":
			add(seq, key, "first record has prev_hash %q; it must be empty (earlier records were removed)", r.PrevHash)
		case seq > 1 && prevIntact && r.PrevHash != prev.Hash:
			// This record is intact, so the previous one was replaced
			// wholesale (content and hash rewritten together).
			pkey, _ := RecordKey(releaseID, seq-1)
			add(seq-1, pkey, "record was rewritten after seq %d was appended: its hash %s is not the prev_hash %s that seq %d recorded", seq, prev.Hash, r.PrevHash, seq)
		}
		if prev != nil && prev.Kind == KindFinal {
			add(seq, key, "record appended after the chain was closed by the final record at seq %d", prev.Seq)
		}
		recs = append(recs, r)
		rep.Head = r.Hash
		prev, prevIntact = &r, selfOK
	}
	if prev != nil && prev.Kind != KindFinal {
		add(last, present[last], "open chain: the last record is a %q record, not %q; the release is still running or later records were deleted", prev.Kind, KindFinal)
	}
	return rep, recs, nil
}

type objectRef struct {
	seq int64
	d   Digest
}

// verifyObjects rehashes every object the records name, each (key, sha256)
// pair once, and reports the first record that named a bad one.
func verifyObjects(ctx context.Context, st Store, recs []Record) ([]Problem, int, error) {
	var refs []objectRef
	seen := map[[2]string]bool{}
	for _, r := range recs {
		for _, d := range slices.Concat(r.Inputs, r.Outputs) {
			k := [2]string{d.Key, d.SHA256}
			if !seen[k] {
				seen[k] = true
				refs = append(refs, objectRef{r.Seq, d})
			}
		}
	}
	if len(refs) == 0 {
		return nil, 0, nil
	}
	tmp := ""
	if _, ok := st.(downloader); ok {
		dir, err := os.MkdirTemp("", "sandgate-verify-*")
		if err != nil {
			return nil, 0, fmt.Errorf("audit: verify: temporary directory for downloads: %w", err)
		}
		defer os.RemoveAll(dir)
		tmp = dir
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		problems []Problem
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, verifyParallelism)
	for i, ref := range refs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			sum, err := hashObjectAt(ctx, st, ref.d.Key, tmp, i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, objstore.ErrNotFound):
				problems = append(problems, Problem{ref.seq, ref.d.Key, "missing: object deleted after it was recorded"})
			case err != nil:
				if firstErr == nil {
					firstErr = err
					cancel()
				}
			case sum != ref.d.SHA256:
				problems = append(problems, Problem{ref.seq, ref.d.Key, fmt.Sprintf("sha256 mismatch: object was changed after it was recorded (recorded %s, now %s)", ref.d.SHA256, sum)})
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, 0, fmt.Errorf("audit: verify objects: %w", firstErr)
	}
	return problems, len(refs), nil
}

func hashObjectAt(ctx context.Context, st Store, key, tmp string, i int) (string, error) {
	if d, ok := st.(downloader); ok && tmp != "" {
		path := filepath.Join(tmp, fmt.Sprintf("obj-%d", i))
		info, err := d.Download(ctx, key, path)
		os.Remove(path) // only the hash is needed
		if err != nil {
			return "", err
		}
		return info.SHA256, nil
	}
	b, err := st.Get(ctx, key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
