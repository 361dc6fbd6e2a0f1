//go:build unix

package devstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive advisory lock on dir. Two Temporal servers on
// one SQLite file would fight over the single history shard, and two S3
// servers would race on object files; failing fast names the real problem.
// The kernel drops the lock when the process dies, so no stale lock files.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "devstack.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devstack: open lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("devstack: data dir %s is in use by another running dev stack: stop it or choose another %s", dir, FlagDataDir)
		}
		return nil, fmt.Errorf("devstack: lock %s: %w", path, err)
	}
	return f, nil
}
