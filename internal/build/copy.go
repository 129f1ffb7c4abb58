package build

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// owner is a --chown (uid, gid), or nil to keep the source's.
type owner struct{ uid, gid int }

// source is one file or tree a COPY takes, found under root.
type source struct {
	root string // the build context, or a stage's root filesystem
	rel  string // slash-separated, relative to root
}

func (s source) path() string { return filepath.Join(s.root, filepath.FromSlash(s.rel)) }

// resolveSources finds what a COPY's source arguments name under root.
// Paths are resolved inside root: ".." and symbolic links cannot leave it.
// An argument with wildcards matches the entries whose path matches it; a
// plain argument must exist.
func resolveSources(root string, args []string) ([]source, error) {
	var out []source
	for _, a := range args {
		clean := relClean(a)
		if !strings.ContainsAny(clean, "*?[") {
			p, err := securejoin.SecureJoin(root, clean)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", a, err)
			}
			if _, err := os.Lstat(p); err != nil {
				return nil, fmt.Errorf("%s: not found in the build context", a)
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				return nil, fmt.Errorf("%s: outside the build context", a)
			}
			if rel == "." {
				rel = ""
			}
			out = append(out, source{root, filepath.ToSlash(rel)})
			continue
		}
		if _, err := path.Match(clean, ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern: %w", a, err)
		}
		n := len(out)
		depth := strings.Count(clean, "/")
		err := walkSorted(root, "", func(rel string, fi fs.FileInfo) error {
			r := filepath.ToSlash(rel)
			if strings.Count(r, "/") != depth {
				if fi.IsDir() && strings.Count(r, "/") > depth {
					return nil
				}
				return nil
			}
			if ok, _ := path.Match(clean, r); ok {
				out = append(out, source{root, r})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: no file in the build context matches", a)
		}
	}
	return out, nil
}

// copyInto copies srcs into layer (a new layer's directory) at dest, with
// Docker's rules: into a directory when dest ends in "/", names several
// sources or is a directory of the image (isDir reports that); a
// directory's contents, not the directory itself. Parent directories the
// layer lacks are created with the attributes the image gives them (attrs).
func copyInto(layer string, srcs []source, dest string, own *owner, chmod *fs.FileMode,
	isDir func(rel string) bool, attrs func(rel string) (fs.FileInfo, bool)) error {
	destRel := relClean(dest)
	toDir := strings.HasSuffix(dest, "/") || len(srcs) > 1 || destRel == "" || isDir(destRel)
	for _, s := range srcs {
		fi, err := os.Lstat(s.path())
		if err != nil {
			return err
		}
		target := destRel
		if toDir && !fi.IsDir() {
			target = path.Join(destRel, path.Base(s.rel))
		}
		if err := mkParents(layer, target, attrs); err != nil {
			return err
		}
		if err := copyTree(s.path(), filepath.Join(layer, filepath.FromSlash(target)), own, chmod); err != nil {
			return err
		}
	}
	return nil
}

// mkParents creates the parent directories of rel inside layer.
func mkParents(layer, rel string, attrs func(rel string) (fs.FileInfo, bool)) error {
	dir := path.Dir(rel)
	if dir == "." || dir == "/" {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		r := strings.Join(parts[:i+1], "/")
		p := filepath.Join(layer, filepath.FromSlash(r))
		if fi, err := os.Lstat(p); err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("/%s is not a directory", r)
			}
			continue
		}
		mode, uid, gid := fs.FileMode(0o755), 0, 0
		if fi, ok := attrs(r); ok {
			if !fi.IsDir() {
				return fmt.Errorf("/%s is not a directory in the image", r)
			}
			st := fi.Sys().(*syscall.Stat_t)
			mode, uid, gid = fi.Mode().Perm(), int(st.Uid), int(st.Gid)
		}
		if err := os.Mkdir(p, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies src (file, symbolic link or directory, never followed)
// to dst, keeping modes; owners become own (root when nil and from the
// context: see copyInto's callers).
func copyTree(src, dst string, own *owner, chmod *fs.FileMode) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := copyEntry(src, dst, fi, own, chmod); err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	return walkSorted(src, "", func(rel string, fi fs.FileInfo) error {
		return copyEntry(filepath.Join(src, rel), filepath.Join(dst, rel), fi, own, chmod)
	})
}

func copyEntry(src, dst string, fi fs.FileInfo, own *owner, chmod *fs.FileMode) error {
	st := fi.Sys().(*syscall.Stat_t)
	uid, gid := int(st.Uid), int(st.Gid)
	if own != nil {
		uid, gid = own.uid, own.gid
	}
	mode := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if chmod != nil {
		mode = *chmod
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		return os.Lchown(dst, uid, gid)
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		_ = os.Remove(dst)
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	default:
		return nil // no devices, sockets or fifos from a context
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(dst, mode); err != nil {
		return err
	}
	t := unix.NsecToTimespec(fi.ModTime().UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}
