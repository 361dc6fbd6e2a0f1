//go:build !unix

package devstack

import "os"

// lockDir is a no-op where flock is unavailable; sharing a data dir between
// two stacks is then the user's responsibility.
func lockDir(string) (*os.File, error) { return nil, nil }
