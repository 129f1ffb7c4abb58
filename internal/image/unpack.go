package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Limits bound what one layer may unpack to. A zero field means its default.
type Limits struct {
	// MaxBytes is the most file content one layer may hold: the sum of the
	// declared sizes of its regular files. Default DefaultMaxBytes.
	MaxBytes int64
	// MaxEntries is the most tar entries one layer may hold. Default
	// DefaultMaxEntries.
	MaxEntries int
}

const (
	// DefaultMaxBytes is the default Limits.MaxBytes: 10 GiB.
	DefaultMaxBytes int64 = 10 << 30
	// DefaultMaxEntries is the default Limits.MaxEntries.
	DefaultMaxEntries = 1 << 20

	// maxTrailing is how many bytes may follow the tar's end-of-archive
	// marker (writers pad to a record of 10 KiB; anything large is abuse).
	maxTrailing = 1 << 20

	// maxNameLen is PATH_MAX: no longer name can be created anyway, and
	// a PAX name of a megabyte would otherwise make as many directories.
	maxNameLen = 4096

	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	// overlayOpaque marks a directory of an overlay lower as opaque: the
	// lower layers' entries under it are hidden.
	overlayOpaque = "trusted.overlay.opaque"
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Unpack unpacks the layer tar read from r (uncompressed, gzip or zstd,
// detected by its magic bytes) into dir with DefaultLimits. See
// UnpackWithLimits.
func Unpack(r io.Reader, dir string) error {
	return UnpackWithLimits(r, dir, Limits{})
}

// UnpackWithLimits unpacks the layer tar read from r into dir, which must not
// exist or be an empty directory.
//
// The layer is unpacked into a temporary sibling of dir that is renamed to
// dir only once it is complete, so on any error dir is absent (or still
// empty) and nothing of the layer is visible.
//
// The unpacker never writes outside dir: names are cleaned and a name that
// climbs out with ".." is refused; an absolute name is taken relative to dir;
// every parent directory is resolved beneath dir without following symbolic
// links (a layer that writes through a symbolic link it made is refused);
// hard links must point at an entry of this layer. Symbolic links themselves
// may point anywhere: they are stored, never followed.
//
// OCI whiteouts become their overlayfs form, because each layer is mounted as
// its own overlay lower: ".wh.NAME" becomes a character device 0/0 named
// NAME, and ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory.
// Modes (setuid, setgid, sticky included), owners and modification times are
// kept; device nodes are skipped; the xattrs kept are user.* and
// security.capability. Unpacking needs root (CAP_CHOWN, CAP_MKNOD and
// CAP_SYS_ADMIN for trusted.* xattrs).
//
// Errors about the layer's content wrap ErrInvalidLayer; a layer past lim
// gets an error wrapping ErrLayerTooLarge.
func UnpackWithLimits(r io.Reader, dir string, lim Limits) error {
	dir = filepath.Clean(dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("unpack into %s: directory is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".unpack-")
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if _, err := unpackStream(r, tmp, lim); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// An existing empty dir is replaced by the rename.
	if err := commitDir(tmp, dir, false); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	return nil
}

// unpackStream decompresses r, unpacks the tar into root (an existing empty
// directory) and returns the sha256 hex digest of the uncompressed stream:
// the layer's diff-id.
func unpackStream(r io.Reader, root string, lim Limits) (diffID string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	var stream io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("%w: gzip: %v", ErrInvalidLayer, err)
		}
		defer zr.Close()
		stream = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return "", fmt.Errorf("%w: zstd: %v", ErrInvalidLayer, err)
		}
		defer zr.Close()
		stream = zr
	case bytes.HasPrefix(magic, []byte("BZh")), bytes.HasPrefix(magic, []byte("\xfd7zXZ\x00")):
		return "", fmt.Errorf("%w: unsupported compression (bzip2 or xz); use gzip, zstd or none", ErrInvalidLayer)
	}
	h := sha256.New()
	tee := io.TeeReader(stream, h)
	if err := unpackTar(tee, root, lim.withDefaults()); err != nil {
		return "", err
	}
	// Read what follows the end-of-archive marker: it counts towards the
	// diff-id, and reaching EOF makes gzip check its CRC.
	n, err := io.Copy(io.Discard, io.LimitReader(tee, maxTrailing+1))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidLayer, err)
	}
	if n > maxTrailing {
		return "", fmt.Errorf("%w: more than %d bytes after the end of the tar archive", ErrInvalidLayer, maxTrailing)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// commitDir makes the unpacked tmp durable and renames it to final. With
// noReplace, an existing final is left alone and errExist returned.
func commitDir(tmp, final string, noReplace bool) error {
	if err := syncFS(tmp); err != nil {
		return err
	}
	if noReplace {
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
		case errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY):
			return errExist
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
			// A file system without RENAME_NOREPLACE.
			if _, serr := os.Lstat(final); serr == nil {
				return errExist
			}
			if err := os.Rename(tmp, final); err != nil {
				return err
			}
		default:
			return &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err}
		}
	} else if err := unix.Rename(tmp, final); err != nil {
		// unix.Rename, not os.Rename: os.Rename refuses to replace even
		// an empty directory.
		return &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err}
	}
	return syncDir(filepath.Dir(final))
}

var errExist = errors.New("already exists")

// useOpenat2 lets tests exercise the component-by-component fallback used
// where openat2(2) is missing.
var useOpenat2 = true

// syncFS flushes the file system that holds dir: one call makes every file of
// a freshly unpacked layer durable, where an fsync per file would be slow.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// unpacker writes one layer's entries beneath root.
type unpacker struct {
	root      int // O_DIRECTORY fd of the layer root
	lim       Limits
	bytes     int64
	entries   int
	dirTimes  map[string]*tar.Header // directory → header whose times it gets at the end
	noOpenat2 bool
}

func unpackTar(r io.Reader, root string, lim Limits) error {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	// A layer without a "./" entry gets a root everyone may enter.
	if err := unix.Fchmod(rootfd, 0o755); err != nil {
		return &os.PathError{Op: "chmod", Path: root, Err: err}
	}
	u := &unpacker{root: rootfd, lim: lim, dirTimes: map[string]*tar.Header{}, noOpenat2: !useOpenat2}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading tar: %v", ErrInvalidLayer, err)
		}
		u.entries++
		if u.entries > lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrLayerTooLarge, lim.MaxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	u.setDirTimes()
	return nil
}

// invalid reports a refused entry.
func invalid(hdr *tar.Header, format string, args ...any) error {
	return fmt.Errorf("%w: entry %q: %s", ErrInvalidLayer, hdr.Name, fmt.Sprintf(format, args...))
}

// cleanName turns an entry name into a clean path relative to the layer root
// ("" is the root itself), refusing names that climb out of it.
func cleanName(name string) (string, bool) {
	if strings.IndexByte(name, 0) >= 0 || len(name) > maxNameLen {
		return "", false
	}
	n := path.Clean(strings.TrimLeft(name, "/"))
	if n == "." {
		return "", true
	}
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", false
	}
	return n, true
}

func splitName(name string) (parent, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata for the archive (git archive writes one)
	}
	name, ok := cleanName(hdr.Name)
	if !ok {
		return invalid(hdr, "path escapes the layer root (or is not a valid path)")
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-2 || int64(hdr.Gid) > 1<<32-2 {
		return invalid(hdr, "bad owner %d:%d", hdr.Uid, hdr.Gid)
	}
	parent, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr, parent, base)
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return invalid(hdr, "the layer root must be a directory")
		}
		if err := u.setMeta(u.root, hdr); err != nil {
			return err
		}
		u.dirTimes[""] = hdr
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		if hdr.Size > u.lim.MaxBytes-u.bytes {
			return fmt.Errorf("%w: entry %q: file content exceeds %d bytes", ErrLayerTooLarge, hdr.Name, u.lim.MaxBytes)
		}
		u.bytes += hdr.Size
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		return nil // device nodes have no place in a dyno's image
	default:
		return invalid(hdr, "unsupported entry type %q", hdr.Typeflag)
	}
	return u.inDir(hdr, parent, true, func(pfd int) error {
		switch hdr.Typeflag {
		case tar.TypeDir:
			return u.mkdir(hdr, pfd, name, base)
		case tar.TypeSymlink:
			return u.symlink(hdr, pfd, base)
		case tar.TypeLink:
			return u.hardlink(hdr, pfd, name, base)
		case tar.TypeFifo:
			return u.fifo(hdr, pfd, base)
		default:
			return u.file(hdr, r, pfd, base)
		}
	})
}

// inDir calls fn with an fd of the directory parent (relative to the root),
// resolved beneath the root without following any symbolic link. With
// create, missing directories are made (mode 0755, owned by root).
func (u *unpacker) inDir(hdr *tar.Header, parent string, create bool, fn func(fd int) error) error {
	if parent == "" {
		return fn(u.root)
	}
	fd, err := u.openDir(parent, create)
	switch {
	case err == nil:
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return invalid(hdr, "%s", u.describeParent(parent))
	case errors.Is(err, unix.EXDEV):
		return invalid(hdr, "a parent crosses a mount point")
	default:
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	return fn(fd)
}

// describeParent says why parent (which failed to open as a directory) is
// not one, for the error message.
func (u *unpacker) describeParent(parent string) string {
	fd, err := unix.Dup(u.root)
	if err != nil {
		return "a parent is not a directory"
	}
	defer func() { unix.Close(fd) }()
	comps := strings.Split(parent, "/")
	for i, c := range comps {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			p := strings.Join(comps[:i+1], "/")
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				next, err := unix.Openat(fd, c, dirFlags, 0)
				if err == nil {
					unix.Close(fd)
					fd = next
					continue
				}
			case unix.S_IFLNK:
				return fmt.Sprintf("parent %q is a symbolic link: the unpacker does not follow links", p)
			default:
				return fmt.Sprintf("parent %q is not a directory", p)
			}
		}
		break
	}
	return "a parent is not a directory"
}

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

func (u *unpacker) openDir(rel string, create bool) (int, error) {
	if !u.noOpenat2 {
		fd, err := unix.Openat2(u.root, rel, &unix.OpenHow{
			Flags:   dirFlags,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			u.noOpenat2 = true // an old kernel or a seccomp filter: walk instead
		case errors.Is(err, unix.ENOENT) && create:
			// walk and make the missing directories
		case errors.Is(err, unix.EAGAIN):
			// a concurrent rename somewhere: walk instead
		default:
			return -1, err
		}
	}
	// One component at a time, each opened with O_NOFOLLOW|O_DIRECTORY: a
	// symbolic link fails with ELOOP or ENOTDIR. Components are clean names
	// (no "", "." or "..") so nothing resolves above the root.
	fd, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, c, dirFlags, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, err
			}
			next, err = unix.Openat(fd, c, dirFlags, 0)
			if err == nil {
				err = unix.Fchmod(next, 0o755) // undo the umask
			}
		}
		unix.Close(fd)
		if err != nil {
			if next >= 0 {
				unix.Close(next)
			}
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// makeRoom makes room for a new entry named base in pfd: an existing entry is
// removed, except that a directory is kept when keepDir is set (a directory
// entry over a directory only updates its metadata). It reports whether a
// directory was kept.
func makeRoom(hdr *tar.Header, pfd int, base string, keepDir bool) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		if err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
				return false, invalid(hdr, "would replace a non-empty directory")
			}
			return false, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		return false, nil
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return false, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return false, nil
}

func (u *unpacker) mkdir(hdr *tar.Header, pfd int, name, base string) error {
	kept, err := makeRoom(hdr, pfd, base, true)
	if err != nil {
		return err
	}
	if !kept {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	fd, err := unix.Openat(pfd, base, dirFlags, 0)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	if err := u.setMeta(fd, hdr); err != nil {
		return err
	}
	// Times last, once the directory's children are in place.
	u.dirTimes[name] = hdr
	return nil
}

func (u *unpacker) file(hdr *tar.Header, r io.Reader, pfd int, base string) error {
	if _, err := makeRoom(hdr, pfd, base, false); err != nil {
		return err
	}
	// O_EXCL|O_NOFOLLOW: never open something that is already there.
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	if _, err := io.CopyN(f, r, hdr.Size); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
			return invalid(hdr, "truncated content")
		}
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := u.setMeta(fd, hdr); err != nil {
		return err
	}
	if err := setTimes(pfd, base, hdr); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return nil
}

func (u *unpacker) symlink(hdr *tar.Header, pfd int, base string) error {
	if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return invalid(hdr, "bad symbolic link target")
	}
	if _, err := makeRoom(hdr, pfd, base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	return setTimes(pfd, base, hdr)
}

func (u *unpacker) hardlink(hdr *tar.Header, pfd int, name, base string) error {
	target, ok := cleanName(hdr.Linkname)
	if !ok || target == "" {
		return invalid(hdr, "hard link target %q escapes the layer root", hdr.Linkname)
	}
	if target == name {
		return nil // a link to itself: nothing to do
	}
	tparent, tbase := splitName(target)
	err := u.inDir(hdr, tparent, false, func(tfd int) error {
		var st unix.Stat_t
		if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return invalid(hdr, "hard link target %q is not in this layer", hdr.Linkname)
			}
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return invalid(hdr, "hard link to directory %q", hdr.Linkname)
		}
		if _, err := makeRoom(hdr, pfd, base, false); err != nil {
			return err
		}
		// Flags 0: a symbolic link target is linked itself, not followed.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return fmt.Errorf("layer entry %q: link: %w", hdr.Name, err)
		}
		return nil
	})
	if errors.Is(err, unix.ENOENT) {
		return invalid(hdr, "hard link target %q is not in this layer", hdr.Linkname)
	}
	return err
}

func (u *unpacker) fifo(hdr *tar.Header, pfd int, base string) error {
	if _, err := makeRoom(hdr, pfd, base, false); err != nil {
		return err
	}
	if err := unix.Mkfifoat(pfd, base, 0o600); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	// O_NONBLOCK: opening a FIFO to read does not wait for a writer.
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	if err := u.setMeta(fd, hdr); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr)
}

// whiteout turns an OCI whiteout entry into its overlayfs form.
func (u *unpacker) whiteout(hdr *tar.Header, parent, base string) error {
	if base == whiteoutOpaque {
		return u.inDir(hdr, parent, true, func(fd int) error {
			if err := unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0); err != nil {
				return fmt.Errorf("layer entry %q: set %s: %w", hdr.Name, overlayOpaque, err)
			}
			return nil
		})
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata (.wh..wh.plnk and the like)
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return invalid(hdr, "bad whiteout")
	}
	return u.inDir(hdr, parent, true, func(pfd int) error {
		// A whiteout hides only what lower layers hold: an entry of this
		// layer with that name stays.
		var st unix.Stat_t
		err := unix.Fstatat(pfd, victim, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
		if err := unix.Mknodat(pfd, victim, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("layer entry %q: whiteout: %w", hdr.Name, err)
		}
		return nil
	})
}

// setMeta applies owner, mode and xattrs to an open regular file or
// directory. The owner goes first: chown clears setuid and setgid bits.
func (u *unpacker) setMeta(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !(strings.HasPrefix(attr, "user.") || attr == "security.capability") {
			continue // trusted.* would let a layer forge overlay metadata
		}
		if err := unix.Fsetxattr(fd, attr, []byte(v), 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("layer entry %q: set xattr %s: %w", hdr.Name, attr, err)
		}
	}
	return nil
}

func setTimes(pfd int, base string, hdr *tar.Header) error {
	if hdr.ModTime.IsZero() {
		return nil
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	ts, _ := unix.TimeToTimespec(t)
	return ts
}

// setDirTimes gives directories their times once nothing more is written
// into them. Best effort: a directory a later entry replaced is skipped.
func (u *unpacker) setDirTimes() {
	for name, hdr := range u.dirTimes {
		if name == "" {
			_ = setTimes(u.root, ".", hdr)
			continue
		}
		parent, base := splitName(name)
		_ = u.inDir(hdr, parent, false, func(pfd int) error {
			var st unix.Stat_t
			if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return nil
			}
			return setTimes(pfd, base, hdr)
		})
	}
}
