package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// unmountScratch removes the host tmpfs mounts of a scratch dir. A busy
// mount (a host process with its cwd there) is detached instead, so the
// wipe still happens; VerifyWipe then checks mountinfo.
func unmountScratch(scratch string) error {
	var errs []error
	for _, a := range []string{"tmp", "home"} {
		p := filepath.Join(scratch, a)
		err := unix.Unmount(p, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(p, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
