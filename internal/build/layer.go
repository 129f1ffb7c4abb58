package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errLayerTooLarge is wrapped when a step's layer passes Limits.MaxLayerBytes.
var errLayerTooLarge = errors.New("layer too large")

// writeLayer writes the directory tree dir (a layer in overlay form: a
// build container's upper directory, or the files a COPY produced) as an
// uncompressed OCI layer tar to w: overlay whiteouts (0/0 character
// devices) become ".wh.<name>" entries and opaque directories get a
// ".wh..wh..opq" entry. It returns the tar's sha256 (its diff-id, and its
// digest as a blob) and size. Regular file content is capped at max bytes.
func writeLayer(w io.Writer, dir string, max int64) (digest string, size int64, err error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	tw := tar.NewWriter(cw)
	var content int64
	links := map[[2]uint64]string{} // (dev, inode) of files with several links → first name
	err = walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		st := fi.Sys().(*syscall.Stat_t)
		full := filepath.Join(dir, rel)
		name := filepath.ToSlash(rel)
		hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()).UTC(), Format: tar.FormatPAX}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0:
			parent, base := filepath.Split(name)
			return tw.WriteHeader(&tar.Header{Name: parent + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644,
				ModTime: hdr.ModTime, Format: tar.FormatPAX})
		case fi.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if opaque(full) {
				return tw.WriteHeader(&tar.Header{Name: name + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644,
					ModTime: hdr.ModTime, Format: tar.FormatPAX})
			}
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(hdr)
		case fi.Mode()&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
			return tw.WriteHeader(hdr)
		case fi.Mode().IsRegular():
			key := [2]uint64{st.Dev, st.Ino}
			if st.Nlink > 1 {
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					return tw.WriteHeader(hdr)
				}
				links[key] = name
			}
			content += fi.Size()
			if content > max {
				return fmt.Errorf("%w: more than %d bytes of files (at /%s)", errLayerTooLarge, max, name)
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyN(tw, f, fi.Size())
			return err
		default:
			return nil // sockets and device nodes are not part of an image
		}
	})
	if err != nil {
		return "", 0, err
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

// opaque reports whether an overlay directory hides the layers below it.
func opaque(dir string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// walkSorted calls fn for every entry under root/rel in lexical order,
// parents before children, without following symbolic links.
func walkSorted(root, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	ents, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		r := filepath.Join(rel, e.Name())
		fi, err := os.Lstat(filepath.Join(root, r))
		if err != nil {
			return err
		}
		if err := fn(r, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkSorted(root, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// hashTree adds the tree at path (a file, a directory or a symbolic link)
// to h as it would be copied: names relative to path, modes, sizes,
// contents and link targets. Times and owners are left out: a COPY gives
// every file the owner it asks for, and a checkout's mtimes change with
// every clone.
func hashTree(h io.Writer, path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	entry := func(rel string, fi fs.FileInfo) error {
		fmt.Fprintf(h, "%q %o %d\n", filepath.ToSlash(rel), fi.Mode(), fi.Size())
		full := filepath.Join(path, rel)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(full)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %q\n", t)
		case fi.Mode().IsRegular():
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
		}
		return nil
	}
	if err := entry("", fi); err != nil || !fi.IsDir() {
		return err
	}
	return walkSorted(path, "", entry)
}

// relClean turns a path inside an image into a clean relative one ("" for
// the root); ".." cannot climb above the root.
func relClean(p string) string {
	return strings.TrimPrefix(filepath.Clean("/"+p), "/")
}
