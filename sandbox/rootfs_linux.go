package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// rootConfig says how the shim builds the model's scratch root.
type rootConfig struct {
	// Dir is an empty host directory (in the sandbox's scratch dir) on
	// which the new root's tmpfs is mounted before pivot_root.
	Dir string `json:"dir"`
	// ReadOnly are further host paths bound read-only at the same path:
	// the model's WorkDir, Spec.ReadOnlyPaths, an absolute Command[0].
	ReadOnly []string `json:"read_only"`
	// TmpfsBytes caps /tmp and the home directory, each.
	TmpfsBytes int64 `json:"tmpfs_bytes"`
	// TmpSrc and HomeSrc, when set, are host tmpfs mounts (already capped)
	// bound read-write as /tmp and the home directory; otherwise fresh
	// tmpfs are mounted inside.
	TmpSrc  string `json:"tmp_src,omitempty"`
	HomeSrc string `json:"home_src,omitempty"`
}

// systemDirs are bound read-only when the host has them. A merged-/usr
// symlink (/bin -> usr/bin) is recreated as the same symlink instead.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// etcEntries are the parts of /etc a runtime needs to start: the loader's
// cache, user and host names, TLS roots, the Debian alternatives symlink
// farm and the time zone. The rest of /etc (shadow, ssh host keys, service
// credentials) stays out: the model runs as uid 0 without capabilities and
// would otherwise read root-owned secrets through a read-only bind.
var etcEntries = []string{
	"passwd", "group", "nsswitch.conf", "hosts", "host.conf", "hostname",
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
	"alternatives", "ssl", "ca-certificates", "ca-certificates.conf", "pki",
	"mime.types", "os-release", "protocols", "services", "profile",
	"bash.bashrc", "inputrc", "locale.alias", "locale.gen", "debian_version",
	"java-17-openjdk", "java-21-openjdk", "python3", "fonts", "terminfo",
}

// devNodes are bound from the host's /dev; nothing else exists there.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// writableMounts are the mount points the model may write to in a scratch
// root; every other mount must be read-only (IsolationEvidence.Check).
func writableMounts() []string {
	w := []string{sandboxTmp, sandboxHome, "/proc"}
	for _, d := range devNodes {
		w = append(w, "/dev/"+d)
	}
	return w
}

// enterScratchRoot builds the model's root and pivots the shim into it.
// The relay socket's listener must already be open: its path is not in the
// new root.
func enterScratchRoot(rc rootConfig) error {
	root := rc.Dir
	if err := unix.Mount("sandgate-root", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
		return fmt.Errorf("mount scratch root tmpfs at %s: %w", root, err)
	}
	for _, d := range systemDirs {
		if err := placeHostPath(root, d, true); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		return fmt.Errorf("scratch root /etc: %w", err)
	}
	for _, e := range etcEntries {
		if err := placeHostPath(root, "/etc/"+e, true); err != nil {
			return err
		}
	}
	// The writable areas come before the caller's binds, so that a WorkDir
	// under /tmp on the host is bound on top of the tmpfs, not hidden by it.
	size := strconv.FormatInt(rc.TmpfsBytes, 10)
	for _, a := range []struct{ src, dst, mode string }{{rc.TmpSrc, sandboxTmp, "1777"}, {rc.HomeSrc, sandboxHome, "0700"}} {
		var err error
		if a.src != "" {
			err = bindWritable(root, a.src, a.dst)
		} else {
			err = mountTmpfs(root, a.dst, "size="+size+",mode="+a.mode, 0)
		}
		if err != nil {
			return err
		}
	}
	for _, p := range rc.ReadOnly {
		if err := placeHostPath(root, p, false); err != nil {
			return err
		}
	}
	// The harness binary itself, for reexec roles and the isolation probe.
	// By path: /proc/self/exe points at a mount of the host's namespace,
	// which cannot be the source of a bind in this one.
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("scratch root: find own executable: %w", err)
	}
	if err := bindReadOnly(root, exe, sandboxExe, false); err != nil {
		return fmt.Errorf("%w (was the binary replaced since it started?)", err)
	}
	if err := buildDev(root); err != nil {
		return err
	}
	// A fresh /proc shows only this pid namespace. /proc/sys is read-only:
	// uid 0 passes the permission check on most sysctls without any
	// capability.
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o555); err != nil {
		return fmt.Errorf("scratch root /proc: %w", err)
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc for the new pid namespace: %w", err)
	}
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			continue
		}
		if err := bindReadOnly(root, filepath.Join(root, p), p, false); err != nil {
			return err
		}
	}

	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("enter scratch root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// detach then drops it, leaving no path back to the host's tree.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	// The skeleton itself (mount points, /etc stubs) is read-only too.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount scratch root read-only: %w", err)
	}
	return nil
}

// placeHostPath makes host path p appear read-only at p inside root: a
// symlink is copied as a symlink, anything else is bound. optional paths
// that the host lacks are skipped.
func placeHostPath(root, p string, optional bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("scratch root: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("scratch root: %w", err)
		}
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("scratch root: %w", err)
		}
		if err := os.Symlink(target, dst); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("scratch root: %w", err)
		}
		return nil
	}
	return bindReadOnly(root, p, p, false)
}

// bindReadOnly binds host path src at dst inside root, recursively and
// read-only (mount_setattr makes submounts read-only too, which a remount
// of the top mount would not). dev keeps device nodes usable.
func bindReadOnly(root, src, dst string, dev bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("scratch root: bind source: %w", err)
	}
	target := filepath.Join(root, dst)
	if err := makeMountPoint(target, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("scratch root: bind %s at %s: %w", src, dst, err)
	}
	attr := uint64(unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID)
	if !dev {
		attr |= unix.MOUNT_ATTR_NODEV
	}
	err = unix.MountSetattr(-1, target, unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attr})
	if errors.Is(err, unix.ENOSYS) {
		// Before 5.12: the top mount at least.
		flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID)
		if !dev {
			flags |= unix.MS_NODEV
		}
		err = unix.Mount("", target, "", flags, "")
	}
	if err != nil {
		return fmt.Errorf("scratch root: make %s read-only: %w", dst, err)
	}
	return nil
}

// bindWritable binds host directory src read-write at dst inside root,
// without suid or device files.
func bindWritable(root, src, dst string) error {
	target := filepath.Join(root, dst)
	if err := makeMountPoint(target, true); err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("scratch root: bind %s at %s: %w", src, dst, err)
	}
	if err := unix.MountSetattr(-1, target, 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}); err != nil && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("scratch root: %s nosuid,nodev: %w", dst, err)
	}
	return nil
}

func makeMountPoint(target string, dir bool) error {
	if _, err := os.Lstat(target); err == nil {
		return nil // already there (a path inside an earlier bind)
	}
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("scratch root: mount point: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("scratch root: mount point: %w", err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("scratch root: mount point: %w", err)
	}
	return f.Close()
}

func mountTmpfs(root, dst, opts string, flags uintptr) error {
	target := filepath.Join(root, dst)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("scratch root: %s: %w", dst, err)
	}
	if err := unix.Mount("sandgate-"+filepath.Base(dst), target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|flags, opts); err != nil {
		return fmt.Errorf("scratch root: mount tmpfs at %s: %w", dst, err)
	}
	return nil
}

// buildDev makes a /dev holding only harmless character devices and the
// usual symlinks into /proc, then freezes it read-only.
func buildDev(root string) error {
	if err := mountTmpfs(root, "/dev", "size=64k,mode=0755", unix.MS_NOEXEC); err != nil {
		return err
	}
	for _, d := range devNodes {
		if _, err := os.Stat("/dev/" + d); err != nil {
			continue
		}
		if err := bindReadOnly(root, "/dev/"+d, "/dev/"+d, true); err != nil {
			return err
		}
		// Device nodes stay writable (writes to /dev/null are the point);
		// the bind only stops mount-level tricks.
		if err := unix.MountSetattr(-1, filepath.Join(root, "dev", d), 0, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("scratch root: /dev/%s writable: %w", d, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(root, "dev", name)); err != nil {
			return fmt.Errorf("scratch root: /dev/%s: %w", name, err)
		}
	}
	if err := unix.Mount("", filepath.Join(root, "dev"), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("scratch root: /dev read-only: %w", err)
	}
	return nil
}
