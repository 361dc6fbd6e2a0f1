// Package devstack runs sandgate's default local stack inside one process:
// a Temporal server persisted in SQLite, the Temporal Web UI, and an
// S3-compatible object store on local disk.
//
// It exists so that `sandgate dev`, tests and demos need no Docker and no
// network: everything binds to loopback by default and all state lives in
// one directory (Options.DataDir), so stopping and starting again resumes
// the same workflows and the same objects.
//
// Layout of DataDir:
//
//	temporal.db       Temporal persistence + visibility (SQLite, WAL mode)
//	s3/buckets/...    object bodies, one file per key
//	s3/metadata/...   object metadata (ETag, user metadata)
//	devstack.lock     held while a stack uses the directory
//
// The S3 server does not verify request signatures: any access key works.
// Clients should still use DevAccessKeyID / DevSecretAccessKey / DevRegion
// so the same configuration works against MinIO in docker-compose.
//
// Only loopback use is intended. Nothing here is authenticated.
package devstack
