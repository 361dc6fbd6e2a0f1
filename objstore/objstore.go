// Package objstore is a thin S3 client for the objects a release writes
// (Parquet shards, manifests, audit logs, reports).
//
// It works against AWS S3 and S3-compatible servers (MinIO, the devstack's
// embedded server). Every object's size and sha256 are computed on our side,
// so callers can record them in manifests and in the workflow history without
// trusting ETags, which are not content hashes for multipart or encrypted
// objects.
//
// Transient failures (throttling, 5xx, connection resets) are retried by the
// SDK's standard retryer. Configuration and permission problems are reported
// as errors wrapping ErrBucketMissing or ErrAccessDenied, with the bucket, the
// key and the fix in the message, so an activity can mark them non-retryable.
package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// DefaultBucket is used when neither Config.Bucket nor SANDGATE_BUCKET is set.
const DefaultBucket = "sandgate"

// DefaultRegion is used when no region is configured; S3-compatible servers
// accept any region but the SDK's signer needs one.
const DefaultRegion = "us-east-1"

// maxSinglePut is the largest object S3 accepts in one PutObject request.
const maxSinglePut = 5 << 30

// metaSHA256 is the user-metadata key under which PutFile/PutBytes record
// the content hash, so Stat can return it without downloading the object.
const metaSHA256 = "sha256"

// Errors callers can test with errors.Is. Both mean retrying will not help.
var (
	// ErrBucketMissing: the bucket does not exist (call EnsureBucket or fix SANDGATE_BUCKET).
	ErrBucketMissing = errors.New("bucket does not exist")
	// ErrAccessDenied: the credentials are missing, wrong or lack permission.
	ErrAccessDenied = errors.New("access denied")
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
)

// Config says where the objects live and how to authenticate.
// The zero value (plus a Bucket) talks to AWS S3 with the SDK's default
// credential chain.
type Config struct {
	// Endpoint is the base URL of an S3-compatible server, e.g.
	// http://127.0.0.1:9000. Empty means AWS S3.
	Endpoint string
	// Region defaults to DefaultRegion.
	Region string
	// Bucket holds everything sandgate writes.
	Bucket string
	// AccessKeyID and SecretAccessKey are static credentials. When both are
	// empty the SDK's default chain (env, shared config, IMDS, IRSA) is used.
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle addresses objects as endpoint/bucket/key, which MinIO and
	// most local servers need because they have no wildcard DNS.
	PathStyle bool
	// Logger receives debug lines for each transfer; nil means slog.Default().
	Logger *slog.Logger `json:"-"`
}

// ConfigFromEnv reads the standard AWS variables (AWS_ENDPOINT_URL_S3, falling
// back to AWS_ENDPOINT_URL; AWS_REGION, falling back to AWS_DEFAULT_REGION;
// AWS_ACCESS_KEY_ID; AWS_SECRET_ACCESS_KEY) plus SANDGATE_BUCKET (default
// "sandgate") and SANDGATE_S3_PATH_STYLE (a boolean; defaults to true when an
// endpoint is set, because custom endpoints are almost always MinIO-like).
func ConfigFromEnv() Config {
	return configFromLookup(os.LookupEnv)
}

func configFromLookup(lookup func(string) (string, bool)) Config {
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := lookup(n); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	cfg := Config{
		Endpoint:        get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Region:          get("AWS_REGION", "AWS_DEFAULT_REGION"),
		Bucket:          get("SANDGATE_BUCKET"),
		AccessKeyID:     get("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: get("AWS_SECRET_ACCESS_KEY"),
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	cfg.PathStyle = cfg.Endpoint != ""
	if v := get("SANDGATE_S3_PATH_STYLE"); v != "" {
		// An unparsable value keeps the default rather than failing here;
		// Validate cannot see the raw string, so be conservative.
		if b, err := strconv.ParseBool(v); err == nil {
			cfg.PathStyle = b
		}
	}
	return cfg
}

// Validate reports configuration mistakes before any request is made.
func (c Config) Validate() error {
	var errs []error
	if err := validateBucketName(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("objstore: Bucket (SANDGATE_BUCKET): %w", err))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("objstore: Endpoint (AWS_ENDPOINT_URL_S3) %q is not a URL: %w", c.Endpoint, err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("objstore: Endpoint (AWS_ENDPOINT_URL_S3) %q must start with http:// or https://", c.Endpoint))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("objstore: Endpoint (AWS_ENDPOINT_URL_S3) %q has no host", c.Endpoint))
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("objstore: set both AccessKeyID and SecretAccessKey (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or neither"))
	}
	return errors.Join(errs...)
}

// validateBucketName applies the S3 naming rules that matter in practice, so a
// typo fails with a readable message instead of a signature error.
func validateBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.'
		if !ok {
			return fmt.Errorf("bucket name %q has %q at position %d; use lowercase letters, digits, '-' and '.'", b, r, i)
		}
	}
	first, last := b[0], b[len(b)-1]
	if first == '-' || first == '.' || last == '-' || last == '.' {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
	}
	return nil
}

// ObjectInfo describes a stored object. SHA256 is lowercase hex; it is empty
// where it is not known without reading the object (List, and objects not
// written by this package in Stat).
type ObjectInfo struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// Store is safe for concurrent use.
type Store struct {
	client *s3.Client
	bucket string
	region string
	log    *slog.Logger
}

// New builds a client. It makes no request; call EnsureBucket to check
// connectivity and create the bucket.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		// S3-compatible servers differ in their support for the SDK's newer
		// default CRC trailers (aws-chunked uploads); we hash content ourselves,
		// so only send checksums when an operation requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryMaxAttempts(5),
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{client: client, bucket: cfg.Bucket, region: region, log: log.With("bucket", cfg.Bucket)}, nil
}

// Bucket is the bucket every key is relative to.
func (s *Store) Bucket() string { return s.bucket }

// EnsureBucket creates the bucket if it does not exist. It is idempotent and
// doubles as a connectivity and credentials check at worker start.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return s.wrap("check bucket", "", err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	// us-east-1 is the one region that rejects an explicit location constraint.
	if s.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	if _, err := s.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) || apiCode(err) == "BucketAlreadyOwnedByYou" {
			return nil // created concurrently by another worker
		}
		return s.wrap("create bucket", "", err)
	}
	s.log.InfoContext(ctx, "objstore: created bucket")
	return nil
}

// PutFile uploads the file at path under key, streaming it from disk. The
// file is read twice (once to hash, once to send) instead of buffered, so
// memory stays flat for multi-GiB shards.
func (s *Store) PutFile(ctx context.Context, key, path string) (ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("objstore: put s3://%s/%s: %w", s.bucket, key, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("objstore: put s3://%s/%s: hash %s: %w", s.bucket, key, path, err)
	}
	if size > maxSinglePut {
		return ObjectInfo{}, fmt.Errorf("objstore: put s3://%s/%s: %s is %d bytes, over the 5 GiB single-upload limit; write smaller shards", s.bucket, key, path, size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ObjectInfo{}, fmt.Errorf("objstore: put s3://%s/%s: rewind %s: %w", s.bucket, key, path, err)
	}
	// io.NewSectionReader keeps the body seekable (the SDK rewinds on
	// retry) while hiding bytes appended after we hashed.
	return s.put(ctx, key, io.NewSectionReader(f, 0, size), size, h.Sum(nil))
}

// PutBytes uploads b under key.
func (s *Store) PutBytes(ctx context.Context, key string, b []byte) (ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	sum := sha256.Sum256(b)
	return s.put(ctx, key, bytes.NewReader(b), int64(len(b)), sum[:])
}

func (s *Store) put(ctx context.Context, key string, body io.ReadSeeker, size int64, sum []byte) (ObjectInfo, error) {
	hexSum := hex.EncodeToString(sum)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		// Servers that understand it (AWS, MinIO) verify the upload end to end.
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:       map[string]string{metaSHA256: hexSum},
	})
	if err != nil {
		return ObjectInfo{}, s.wrap("put", key, err)
	}
	s.log.DebugContext(ctx, "objstore: put", "key", key, "size", size, "sha256", hexSum)
	return ObjectInfo{Key: key, Size: size, SHA256: hexSum}, nil
}

// Get returns the whole object; meant for small objects (manifests, reports).
// A missing object yields an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("objstore: get s3://%s/%s: read body: %w", s.bucket, key, err)
	}
	return b, nil
}

// Download streams the object to path (parent directories are created) and
// returns its size and sha256. The file appears atomically: a failed
// download leaves no partial file behind.
func (s *Store) Download(ctx context.Context, key, path string) (ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return ObjectInfo{}, s.wrap("download", key, err)
	}
	defer out.Body.Close()
	fail := func(err error) (ObjectInfo, error) {
		return ObjectInfo{}, fmt.Errorf("objstore: download s3://%s/%s to %s: %w", s.bucket, key, path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), out.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if out.ContentLength != nil && *out.ContentLength != n {
		return fail(fmt.Errorf("short body: got %d of %d bytes", n, *out.ContentLength))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	return ObjectInfo{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// List returns every object under prefix in key order. SHA256 is left empty:
// S3 listings do not carry it (use Stat for one object).
func (s *Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list", prefix+"*", err)
		}
		for _, o := range page.Contents {
			out = append(out, ObjectInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	return out, nil
}

// Exists reports whether key exists. A missing bucket is an error (wrapping
// ErrBucketMissing), not "false", so a misconfigured bucket never looks like
// "nothing written yet".
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Stat returns the object's size and, for objects written by this package,
// its sha256 (from the object's metadata). A missing object yields an error
// wrapping ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := validateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			// HEAD responses have no body, so "no such bucket" and "no such
			// key" look the same; ask about the bucket to tell them apart.
			if _, berr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); berr != nil && isNotFound(berr) {
				return ObjectInfo{}, s.bucketMissing("stat", key, berr)
			}
			return ObjectInfo{}, fmt.Errorf("objstore: stat s3://%s/%s: %w", s.bucket, key, ErrNotFound)
		}
		return ObjectInfo{}, s.wrap("stat", key, err)
	}
	info := ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength)}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, metaSHA256) {
			info.SHA256 = v
		}
	}
	return info, nil
}

// validateKey rejects keys S3 would accept but that break our layout
// assumptions or that S3 rejects with an unhelpful message.
func validateKey(key string) error {
	switch {
	case key == "":
		return errors.New("objstore: empty object key")
	case len(key) > 1024:
		return fmt.Errorf("objstore: object key %.40q... is %d bytes, over S3's 1024", key, len(key))
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("objstore: object key %q must not start with '/' (keys are relative to the bucket)", key)
	case !utf8.ValidString(key):
		return fmt.Errorf("objstore: object key %q is not valid UTF-8", key)
	}
	return nil
}
