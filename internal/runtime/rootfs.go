package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// prepareRootfs creates upper, work and rootfs under dir and mounts the
// overlay of lowers (bottom first) plus the writable upper on dir/rootfs.
// A given upper (Spec.Upper) is used instead of dir/upper.
func (r *Runtime) prepareRootfs(dir string, lowers []string, upper string) error {
	work, rootfs := filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	dirs := []string{work, rootfs}
	if upper == "" {
		upper = filepath.Join(dir, "upper")
		dirs = append(dirs, upper)
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	top := make([]string, len(lowers))
	for i, l := range lowers {
		top[len(lowers)-1-i] = filepath.Clean(l)
	}
	if err := mountOverlay(rootfs, top, upper, work); err != nil {
		return err
	}
	return fixTmp(rootfs)
}

// mountOverlay mounts an overlay with the given lower dirs (top first).
//
// It uses the new mount API, one fsconfig("lowerdir+") per layer (Linux
// 6.8+), so there is no limit on the length of the paths: the legacy
// mount(2) data string is limited to one page, which 40 layers with long
// cache paths already exceed. On older kernels it falls back to mount(2),
// refusing (rather than truncating) when the options do not fit.
//
// The mount is nosuid and nodev (no setuid or device files from an image),
// and volatile: the upper is discarded with the container, so there is
// nothing to gain from syncing it.
func mountOverlay(target string, lowersTopFirst []string, upper, work string) error {
	err := mountOverlayFsconfig(target, lowersTopFirst, upper, work)
	if errors.Is(err, errNoLowerdirPlus) {
		err = mountOverlayLegacy(target, lowersTopFirst, upper, work)
	}
	return err
}

var errNoLowerdirPlus = errors.New("kernel does not support lowerdir+")

func mountOverlayFsconfig(target string, lowers []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return errNoLowerdirPlus
		}
		return fmt.Errorf("runtime: fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	fail := func(what string, err error) error {
		if msg := fsContextMessages(fd); msg != "" {
			return fmt.Errorf("runtime: overlay %s: %w (%s)", what, err, msg)
		}
		return fmt.Errorf("runtime: overlay %s: %w", what, err)
	}
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) && strings.Contains(fsContextMessages(fd), "Unknown parameter") {
				return errNoLowerdirPlus
			}
			return fail("lowerdir "+l, err)
		}
	}
	if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
		return fail("upperdir", err)
	}
	if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
		return fail("workdir", err)
	}
	if err := unix.FsconfigSetFlag(fd, "volatile"); err != nil {
		return fail("volatile", err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fail("create", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return fail("fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("runtime: move_mount overlay to %s: %w", target, err)
	}
	return nil
}

// fsContextMessages drains the messages the kernel queued on an fs context.
func fsContextMessages(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

func mountOverlayLegacy(target string, lowers []string, upper, work string) error {
	for _, p := range append(append([]string{}, lowers...), upper, work) {
		if strings.ContainsAny(p, ":,") {
			return fmt.Errorf("runtime: overlay path %q contains ':' or ','", p)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work + ",volatile"
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("runtime: overlay options are %d bytes, over the kernel's %d (too many or too long layer paths; Linux 6.8+ lifts this)", len(opts), os.Getpagesize()-1)
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("runtime: mount overlay: %w", err)
	}
	return nil
}

// fixTmp makes /tmp a world-writable sticky directory, creating it in the
// upper layer if the image has none. runc would reset a tmpfs's mode to the
// mount point's, and Heroku's /tmp is part of the ephemeral filesystem
// anyway, so /tmp lives in the overlay. A /tmp that is a symlink or a file is
// left alone: following it could reach outside the rootfs.
func fixTmp(rootfs string) error {
	p := filepath.Join(rootfs, "tmp")
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	case err != nil:
		return fmt.Errorf("runtime: %w", err)
	case !fi.IsDir():
		return nil
	case fi.Mode()&(os.ModePerm|os.ModeSticky) == os.ModePerm|os.ModeSticky:
		return nil
	}
	// p is a directory (checked with Lstat, and nothing runs in the rootfs
	// yet), so chmod cannot follow a symlink.
	if err := unix.Chmod(p, 0o1777); err != nil {
		return fmt.Errorf("runtime: chmod /tmp: %w", err)
	}
	return nil
}

// mountsUnder returns the mount points strictly under dir (or dir itself),
// deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || within(mp, dir) {
			mps = append(mps, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything mounted at or under dir, deepest first.
func unmountAll(dir string) error {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		mps, err := mountsUnder(dir)
		if err != nil {
			return fmt.Errorf("runtime: reading mounts: %w", err)
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			err := unix.Unmount(mp, unix.UMOUNT_NOFOLLOW)
			if errors.Is(err, unix.EBUSY) {
				// Still in use by something we do not control: detach it
				// so that it disappears once the last user lets go.
				err = unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			}
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				last = fmt.Errorf("runtime: unmount %s: %w", mp, err)
			}
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
	if mps, err := mountsUnder(dir); err == nil && len(mps) == 0 {
		return nil
	}
	if last == nil {
		last = fmt.Errorf("runtime: %s is still mounted", dir)
	}
	return last
}

// removeDir removes a container directory, but only when nothing is mounted
// in it: removing files through a still-mounted rootfs would be a disaster
// if a bind mount pointed anywhere else.
func removeDir(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("runtime: reading mounts: %w", err)
	}
	if len(mps) > 0 {
		return fmt.Errorf("runtime: not removing %s: %s is still mounted", dir, mps[0])
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}
