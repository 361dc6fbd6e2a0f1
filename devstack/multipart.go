package devstack

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// diskMultipart stages multipart upload parts in files. gofakes3's built-in
// uploader keeps every part in memory and then concatenates them into one
// more buffer, so a 500 MB Parquet upload through an SDK transfer manager
// would cost ~1 GB of RAM; here it costs a copy on disk.
//
// Uploads in progress do not survive a restart (their index is in memory);
// their leftover files are removed when the stack starts, and clients retry
// with a new upload as they would after an S3 AbortMultipartUpload.
type diskMultipart struct {
	gofakes3.Backend
	dir string

	mu      sync.Mutex
	uploads map[gofakes3.UploadID]*upload
}

type upload struct {
	bucket, object string
	meta           map[string]string
	initiated      time.Time
	parts          map[int]partInfo
}

type partInfo struct {
	etag     string // quoted hex md5, as S3 returns it
	size     int64
	modified time.Time
}

var _ gofakes3.MultipartBackend = (*diskMultipart)(nil)

func newDiskMultipart(b gofakes3.Backend, dir string) (*diskMultipart, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("devstack: clear stale multipart uploads in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: create multipart staging dir %s: %w", dir, err)
	}
	return &diskMultipart{Backend: b, dir: dir, uploads: map[gofakes3.UploadID]*upload{}}, nil
}

func (d *diskMultipart) partPath(id gofakes3.UploadID, n int) string {
	return filepath.Join(d.dir, string(id), strconv.Itoa(n))
}

func (d *diskMultipart) get(bucket, object string, id gofakes3.UploadID) (*upload, error) {
	u, ok := d.uploads[id]
	if !ok || u.bucket != bucket || u.object != object {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (d *diskMultipart) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := gofakes3.UploadID(hex.EncodeToString(b[:]))
	if err := os.Mkdir(filepath.Join(d.dir, string(id)), 0o700); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uploads[id] = &upload{bucket: bucket, object: object, meta: meta, initiated: time.Now(), parts: map[int]partInfo{}}
	return id, nil
}

func (d *diskMultipart) UploadPart(bucket, object string, id gofakes3.UploadID, n int, contentLength int64, input io.Reader) (string, error) {
	if n < 1 || n > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	d.mu.Lock()
	_, err := d.get(bucket, object, id)
	d.mu.Unlock()
	if err != nil {
		return "", err
	}

	// Stream into a temp file outside the lock so parts upload in parallel;
	// the rename makes a retried part replace the old one atomically.
	final := d.partPath(id, n)
	f, err := os.CreateTemp(filepath.Dir(final), "part-*")
	if err != nil {
		return "", err
	}
	h := md5.New()
	size, err := io.Copy(io.MultiWriter(f, h), input)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && contentLength >= 0 && size != contentLength {
		err = gofakes3.ErrIncompleteBody
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}

	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.get(bucket, object, id)
	if err != nil { // aborted while we were writing
		return "", err
	}
	u.parts[n] = partInfo{etag: etag, size: size, modified: time.Now()}
	return etag, nil
}

func (d *diskMultipart) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, err := d.get(bucket, object, id)
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: object, UploadID: id,
		PartNumberMarker: marker, MaxParts: limit, StorageClass: "STANDARD",
	}
	nums := make([]int, 0, len(u.parts))
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	for _, n := range nums {
		if int64(len(res.Parts)) >= limit {
			res.IsTruncated = true
			break
		}
		p := u.parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: n, ETag: p.etag, Size: p.size, LastModified: gofakes3.NewContentTime(p.modified),
		})
		res.NextPartNumberMarker = n
	}
	return res, nil
}

// ListMultipartUploads ignores pagination markers: a dev stack has a handful
// of concurrent uploads, far below the page size.
func (d *diskMultipart) ListMultipartUploads(bucket string, _ *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	res := &gofakes3.ListMultipartUploadsResult{
		Bucket: bucket, Prefix: prefix.Prefix, Delimiter: prefix.Delimiter, MaxUploads: limit,
	}
	for id, u := range d.uploads {
		if u.bucket != bucket || !strings.HasPrefix(u.object, prefix.Prefix) {
			continue
		}
		res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{
			Key: u.object, UploadID: id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(u.initiated),
		})
	}
	slices.SortFunc(res.Uploads, func(a, b gofakes3.ListMultipartUploadItem) int {
		return strings.Compare(a.Key+"\x00"+string(a.UploadID), b.Key+"\x00"+string(b.UploadID))
	})
	if int64(len(res.Uploads)) > limit {
		res.Uploads, res.IsTruncated = res.Uploads[:limit], true
	}
	return res, nil
}

func (d *diskMultipart) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.get(bucket, object, id); err != nil {
		return err
	}
	delete(d.uploads, id)
	return os.RemoveAll(filepath.Join(d.dir, string(id)))
}

func (d *diskMultipart) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	d.mu.Lock()
	u, err := d.get(bucket, object, id)
	if err == nil {
		// Removing the entry first stops concurrent UploadPart/Abort calls
		// from changing the parts while they are being assembled.
		delete(d.uploads, id)
	}
	d.mu.Unlock()
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(filepath.Join(d.dir, string(id)))

	var (
		size  int64
		files []string
		sums  = md5.New()
		prev  int
	)
	for _, p := range in.Parts {
		if p.PartNumber <= prev {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		prev = p.PartNumber
		info, ok := u.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(info.etag, `"`) {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d is missing or its ETag does not match", p.PartNumber)
		}
		raw, _ := hex.DecodeString(strings.Trim(info.etag, `"`))
		sums.Write(raw)
		size += info.size
		files = append(files, d.partPath(id, p.PartNumber))
	}
	if len(files) == 0 {
		return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "no parts given")
	}

	r := &concatFiles{paths: files}
	defer r.Close()
	res, err := d.PutObject(bucket, object, u.meta, r, size, nil)
	if err != nil {
		return "", "", err
	}
	etag := fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(files))
	return res.VersionID, etag, nil
}

// concatFiles reads files one after another, holding one open at a time.
type concatFiles struct {
	paths []string
	cur   *os.File
}

func (c *concatFiles) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.paths) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(c.paths[0])
			if err != nil {
				return 0, err
			}
			c.cur, c.paths = f, c.paths[1:]
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *concatFiles) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}
