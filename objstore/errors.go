package objstore

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// apiCode returns the S3 error code ("NoSuchBucket", "AccessDenied", ...) or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNotFound is true for any 404, whatever the code: HEAD responses carry
// only the status ("NotFound").
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nsb *types.NoSuchBucket
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nsb) || errors.As(err, &nf) {
		return true
	}
	switch apiCode(err) {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

// wrap turns an SDK error into one that names the bucket and key, and
// classifies the failures no retry can fix.
func (s *Store) wrap(op, key string, err error) error {
	where := "s3://" + s.bucket + "/" + key
	code := apiCode(err)
	switch {
	case code == "NoSuchBucket" || (key == "" && isNotFound(err)):
		return s.bucketMissing(op, key, err)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		code == "InvalidToken" || code == "ExpiredToken" || code == "AllAccessDisabled" ||
		httpStatus(err) == http.StatusForbidden:
		return fmt.Errorf("objstore: %s %s: %w: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy: %v",
			op, where, ErrAccessDenied, err)
	case isNotFound(err):
		return fmt.Errorf("objstore: %s %s: %w", op, where, ErrNotFound)
	}
	return fmt.Errorf("objstore: %s %s: %w", op, where, err)
}

func (s *Store) bucketMissing(op, key string, err error) error {
	return fmt.Errorf("objstore: %s s3://%s/%s: %w: create it (sandgate dev does, or call EnsureBucket) or set SANDGATE_BUCKET: %v",
		op, s.bucket, key, ErrBucketMissing, err)
}
