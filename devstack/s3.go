package devstack

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// Dev credentials. gofakes3 does not verify signatures, so these are not a
// security boundary; they exist so clients are configured exactly as for
// MinIO (docker-compose) and the config can be copied unchanged.
const (
	DevAccessKeyID     = "sandgate"
	DevSecretAccessKey = "sandgate-dev-secret"
	DevRegion          = "us-east-1"
)

// startS3 serves an S3 API backed by files under dir on ln.
//
// The s3afero backend stores one file per object, so PutObject and GetObject
// stream to and from disk and objects survive restarts; multipart parts are
// staged on disk too (diskMultipart), so object size is bounded by disk, not
// memory.
func startS3(ln net.Listener, dir, bucket string, logger *slog.Logger) (*http.Server, error) {
	fs, err := s3afero.FsPath(dir, s3afero.FsPathCreateAll)
	if err != nil {
		return nil, fmt.Errorf("devstack: S3 data dir %s: %w", dir, err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("devstack: S3 backend in %s: %w", dir, err)
	}
	exists, err := backend.BucketExists(bucket)
	if err != nil {
		return nil, fmt.Errorf("devstack: check bucket %q in %s: %w", bucket, dir, err)
	}
	if !exists {
		if err := backend.CreateBucket(bucket); err != nil {
			return nil, fmt.Errorf("devstack: create bucket %q in %s: %w", bucket, filepath.Join(dir, "buckets"), err)
		}
	}
	mp, err := newDiskMultipart(backend, filepath.Join(dir, "uploads"))
	if err != nil {
		return nil, err
	}
	faker := gofakes3.New(mp,
		gofakes3.WithLogger(s3Logger{l: logger}),
		// Versioning is not implemented by the afero backend; say so up front
		// instead of failing per request.
		gofakes3.WithoutVersioning(),
	)
	srv := &http.Server{
		Handler:           faker.Server(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "s3").Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("S3 server stopped", "component", "s3", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return srv, nil
}
