package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ent is a tar entry for these tests; Typeflag 0 means a regular file.
type ent struct {
	tar.Header
	body string
}

func file(name, body string) ent {
	return ent{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, body: body}
}
func dir(name string, mode int64) ent {
	return ent{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}
func symlink(name, target string) ent {
	return ent{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) ent {
	return ent{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

var modTime = time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)

func mkTar(t *testing.T, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = modTime
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "unpacking layers needs root (chown, mknod, trusted.* xattrs)")
	}
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return &st
}

func TestUnpackKeepsMetadataAndConvertsWhiteouts(t *testing.T) {
	requireRoot(t)
	dirTime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	layer := mkTar(t,
		dir("./", 0o755),
		dir("tmp/", 0o1777),
		dir("bin/", 0o755),
		ent{Header: tar.Header{Name: "bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, body: "#!su"},
		ent{Header: tar.Header{Name: "bin/sg", Typeflag: tar.TypeReg, Mode: 0o2755, Gid: 5}, body: "#!sg"},
		ent{Header: tar.Header{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 10000, Gid: 10000, ModTime: dirTime}},
		ent{Header: tar.Header{Name: "home/app/f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 10000, Gid: 10001}, body: "hello"},
		ent{Header: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/bin/su", Uid: 10000, Gid: 10000}},
		hardlink("hard", "/bin/su"),
		ent{Header: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o620, Uid: 7, Gid: 8}},
		file("etc/.wh.passwd", ""),
		dir("var/lib/", 0o755),
		file("var/lib/.wh..wh..opq", ""),
		file("var/lib/keep", "kept"),
		file("usr/.wh.x", ""),
		file("usr/x", "x again"),
		file("opt/y", "y"),
		file("opt/.wh.y", ""),
		ent{Header: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		ent{Header: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}},
		ent{Header: tar.Header{Name: "xattrs", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.user.skiff":             "yes",
			"SCHILY.xattr.trusted.overlay.opaque": "y",
		}}},
	)
	root := filepath.Join(t.TempDir(), "root")
	if err := Unpack(bytes.NewReader(layer), root); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		fmt      uint32
		mode     uint32
		uid, gid uint32
	}{
		{".", unix.S_IFDIR, 0o755, 0, 0},
		{"tmp", unix.S_IFDIR, 0o1777, 0, 0},
		{"bin/su", unix.S_IFREG, 0o4755, 0, 0},
		{"bin/sg", unix.S_IFREG, 0o2755, 0, 5},
		{"home", unix.S_IFDIR, 0o755, 0, 0}, // implied parent
		{"home/app", unix.S_IFDIR, 0o700, 10000, 10000},
		{"home/app/f", unix.S_IFREG, 0o640, 10000, 10001},
		{"link", unix.S_IFLNK, 0o777, 10000, 10000},
		{"hard", unix.S_IFREG, 0o4755, 0, 0},
		{"fifo", unix.S_IFIFO, 0o620, 7, 8},
		{"etc", unix.S_IFDIR, 0o755, 0, 0},
		{"etc/passwd", unix.S_IFCHR, 0, 0, 0},
		{"var/lib/keep", unix.S_IFREG, 0o644, 0, 0},
		{"usr/x", unix.S_IFREG, 0o644, 0, 0},
		{"opt/y", unix.S_IFREG, 0o644, 0, 0},
	}
	for _, tt := range tests {
		st := lstat(t, filepath.Join(root, tt.path))
		if st.Mode&unix.S_IFMT != tt.fmt || st.Mode&0o7777 != tt.mode || st.Uid != tt.uid || st.Gid != tt.gid {
			t.Errorf("%s: type %o mode %o owner %d:%d, want type %o mode %o owner %d:%d",
				tt.path, st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, tt.fmt, tt.mode, tt.uid, tt.gid)
		}
	}
	if st := lstat(t, filepath.Join(root, "etc/passwd")); st.Rdev != 0 {
		t.Errorf("whiteout device %d, want 0/0", st.Rdev)
	}
	if a, b := lstat(t, filepath.Join(root, "hard")), lstat(t, filepath.Join(root, "bin/su")); a.Ino != b.Ino {
		t.Error("hard link is not the same inode as its target")
	}
	if target, _ := os.Readlink(filepath.Join(root, "link")); target != "/bin/su" {
		t.Errorf("symlink target %q", target)
	}
	for _, p := range []string{"dev/null", "dev/sda"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("device node %s was created (err %v)", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "home/app/f")); string(b) != "hello" {
		t.Errorf("content %q", b)
	}
	for p, want := range map[string]time.Time{"home/app/f": modTime, "home/app": dirTime, "tmp": modTime, "link": modTime} {
		st := lstat(t, filepath.Join(root, p))
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", p, got, want)
		}
	}
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(filepath.Join(root, "var/lib"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr on var/lib: %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "usr"), "trusted.overlay.opaque", buf); err == nil {
		t.Error("usr is opaque")
	}
	if n, err := unix.Lgetxattr(filepath.Join(root, "xattrs"), "user.skiff", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user xattr: %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "xattrs"), "trusted.overlay.opaque", buf); err == nil {
		t.Error("a trusted.* xattr from the layer was applied")
	}
	// No temporary sibling is left.
	if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
		t.Errorf("parent holds %d entries, want just the root", len(entries))
	}
}

func TestUnpackCompression(t *testing.T) {
	requireRoot(t)
	layer := mkTar(t, file("a", "compressed"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	var zs bytes.Buffer
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(layer)
	ze.Close()
	for name, b := range map[string][]byte{"plain": layer, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			diffID, err := unpackStream(bytes.NewReader(b), mustMkdir(t, root), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(root, "a")); string(got) != "compressed" {
				t.Errorf("content %q", got)
			}
			if want := sha256hex(layer); diffID != want {
				t.Errorf("diff-id %s, want %s", diffID, want)
			}
		})
	}
	t.Run("corrupt gzip", func(t *testing.T) {
		bad := bytes.Clone(gz.Bytes())
		bad[len(bad)-5] ^= 0xff // the CRC
		err := Unpack(bytes.NewReader(bad), filepath.Join(t.TempDir(), "root"))
		if !errors.Is(err, ErrInvalidLayer) {
			t.Errorf("err %v, want ErrInvalidLayer", err)
		}
	})
}

func mustMkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshot records every path under base except those under skip.
func snapshot(t *testing.T, base, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		link, _ := os.Readlink(p)
		if d.IsDir() {
			// A directory's mtime and link count change as the unpacker
			// makes and removes its temporary sibling; its entries are
			// checked one by one.
			out[p] = fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid)
		} else {
			out[p] = fmt.Sprintf("%o %d:%d n%d %d %d %q", st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Nano(), link)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnpackHostileLayers(t *testing.T) {
	requireRoot(t)
	// Each case runs in its own base directory:
	//   base/sentinel/keep   a file the layer must not touch
	//   base/work/root       the unpack target
	// and nothing under base outside base/work/root may change.
	type check func(t *testing.T, root, sentinel string)
	exists := func(p string) check {
		return func(t *testing.T, root, _ string) {
			if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
	content := func(p, want string) check {
		return func(t *testing.T, root, _ string) {
			b, err := os.ReadFile(filepath.Join(root, p))
			if err != nil || string(b) != want {
				t.Errorf("%s: %q, %v; want %q", p, b, err, want)
			}
			if st := lstat(t, filepath.Join(root, p)); st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("%s is not a regular file", p)
			}
		}
	}
	absent := func(p string) check {
		return func(t *testing.T, root, _ string) {
			if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists (err %v)", p, err)
			}
		}
	}
	huge := func(t *testing.T) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes() // the content never follows
	}
	tests := []struct {
		name    string
		layer   func(t *testing.T, sentinel string) []byte
		lim     Limits
		wantErr error // nil: the entry is neutralized
		checks  []check
	}{
		{name: "dotdot", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("../escape", "x")) }},
		{name: "dotdot after a dir", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("a/../../escape", "x")) }},
		{name: "dotdot inside stays inside",
			layer:  func(t *testing.T, _ string) []byte { return mkTar(t, file("a/../b", "x")) },
			checks: []check{content("b", "x")}},
		{name: "absolute path",
			layer:  func(t *testing.T, _ string) []byte { return mkTar(t, file("/abs/path", "x")) },
			checks: []check{content("abs/path", "x")}},
		{name: "absolute path of the sentinel",
			layer: func(t *testing.T, s string) []byte { return mkTar(t, file(s+"/keep", "pwned")) },
			checks: []check{func(t *testing.T, root, s string) {
				content(strings.TrimPrefix(s, "/")+"/keep", "pwned")(t, root, s)
			}}},
		{name: "write through an absolute symlink", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, s string) []byte { return mkTar(t, symlink("link", s), file("link/file", "pwned")) }},
		{name: "write through a relative symlink", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, symlink("link", "../../sentinel"), file("link/file", "pwned"))
			}},
		{name: "symlink to /etc then etc/passwd", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, symlink("etc", "/etc"), file("etc/passwd", "pwned"))
			}},
		{name: "symlink chain", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, dir("d/", 0o755), symlink("d/up", "../.."), symlink("b", "d/up"), file("b/sentinel/keep", "pwned"))
			}},
		{name: "symlink replaces a directory then write", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, s string) []byte {
				return mkTar(t, dir("d/", 0o755), symlink("d", s), file("d/keep", "pwned"))
			}},
		{name: "file replaces a symlink",
			layer: func(t *testing.T, s string) []byte {
				return mkTar(t, symlink("f", s+"/keep"), file("f", "new"))
			},
			checks: []check{content("f", "new")}},
		{name: "symlinks are stored, not followed",
			layer:  func(t *testing.T, s string) []byte { return mkTar(t, symlink("up", "../../.."), symlink("abs", s)) },
			checks: []check{exists("up"), exists("abs")}},
		{name: "hardlink to /etc/passwd", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, hardlink("h", "/etc/passwd")) }},
		{name: "hardlink to ../x", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, hardlink("h", "../sentinel/keep")) }},
		{name: "hardlink through a symlink", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, s string) []byte { return mkTar(t, symlink("l", s), hardlink("h", "l/keep")) }},
		{name: "hardlink to a directory", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, dir("d/", 0o755), hardlink("h", "d")) }},
		{name: "hardlink to a symlink links the symlink",
			layer: func(t *testing.T, s string) []byte { return mkTar(t, symlink("l", s+"/keep"), hardlink("h", "l")) },
			checks: []check{func(t *testing.T, root, s string) {
				if target, err := os.Readlink(filepath.Join(root, "h")); err != nil || target != s+"/keep" {
					t.Errorf("h: %q, %v", target, err)
				}
			}}},
		{name: "whiteout of ../x", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("../.wh.sentinel", "")) }},
		{name: "whiteout of ..", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("a/.wh...", "")) }},
		{name: "whiteout through a symlink", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, s string) []byte { return mkTar(t, symlink("l", s), file("l/.wh.keep", "")) }},
		{name: "opaque whiteout through a symlink", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, s string) []byte { return mkTar(t, symlink("l", s), file("l/.wh..wh..opq", "")) }},
		{name: "huge declared size", wantErr: ErrLayerTooLarge,
			layer: func(t *testing.T, _ string) []byte { return huge(t) }},
		{name: "content past MaxBytes", wantErr: ErrLayerTooLarge, lim: Limits{MaxBytes: 100},
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, file("a", strings.Repeat("x", 60)), file("b", strings.Repeat("x", 60)))
			}},
		{name: "entries past MaxEntries", wantErr: ErrLayerTooLarge, lim: Limits{MaxEntries: 3},
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, file("a", ""), file("b", ""), file("c", ""), file("d", ""))
			}},
		{name: "char device is skipped",
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, ent{Header: tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}})
			},
			checks: []check{absent("mem")}},
		{name: "duplicate entries: the last wins",
			layer:  func(t *testing.T, _ string) []byte { return mkTar(t, file("a", "first"), file("a", "second")) },
			checks: []check{content("a", "second")}},
		{name: "duplicate directories merge",
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, dir("d/", 0o700), file("d/x", "x"), dir("d/", 0o755))
			},
			checks: []check{content("d/x", "x")}},
		{name: "file where a non-empty dir exists", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, dir("d/", 0o755), file("d/x", "x"), file("d", "file"))
			}},
		{name: "file where an empty dir exists",
			layer:  func(t *testing.T, _ string) []byte { return mkTar(t, dir("d/", 0o755), file("d", "file")) },
			checks: []check{content("d", "file")}},
		{name: "dir where a file exists",
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, file("d", "file"), dir("d/", 0o755), file("d/x", "x"))
			},
			checks: []check{content("d/x", "x")}},
		{name: "file under a file", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("f", "file"), file("f/x", "x")) }},
		{name: "root replaced by a file", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file(".", "x")) }},
		{name: "truncated content", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return mkTar(t, file("a", strings.Repeat("x", 4096)))[:1024] }},
		{name: "not a tar", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte { return bytes.Repeat([]byte("garbage!"), 200) }},
		{name: "megabytes after the end of the archive", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return append(mkTar(t, file("a", "x")), make([]byte, 2<<20)...)
			}},
		{name: "bad owner", wantErr: ErrInvalidLayer,
			layer: func(t *testing.T, _ string) []byte {
				return mkTar(t, ent{Header: tar.Header{Name: "a", Typeflag: tar.TypeReg, Uid: -5}})
			}},
	}
	for _, mode := range []string{"openat2", "walk"} {
		useOpenat2 = mode == "openat2"
		defer func() { useOpenat2 = true }()
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				base := t.TempDir()
				sentinel := filepath.Join(base, "sentinel")
				mustMkdir(t, sentinel)
				if err := os.WriteFile(filepath.Join(sentinel, "keep"), []byte("original"), 0o644); err != nil {
					t.Fatal(err)
				}
				mustMkdir(t, filepath.Join(base, "work"))
				root := filepath.Join(base, "work", "root")
				before := snapshot(t, base, root)

				err := UnpackWithLimits(bytes.NewReader(tt.layer(t, sentinel)), root, tt.lim)
				t.Logf("err: %v", err)

				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					if _, serr := os.Lstat(root); !errors.Is(serr, fs.ErrNotExist) {
						t.Errorf("a failed unpack left %s visible", root)
					}
				} else if err != nil {
					t.Fatalf("err = %v, want the entry neutralized", err)
				}
				after := snapshot(t, base, root)
				for p, v := range after {
					if before[p] != v {
						t.Errorf("outside the target: %s appeared or changed", p)
					}
				}
				for p := range before {
					if _, ok := after[p]; !ok {
						t.Errorf("outside the target: %s disappeared", p)
					}
				}
				if b, _ := os.ReadFile(filepath.Join(sentinel, "keep")); string(b) != "original" {
					t.Errorf("sentinel changed: %q", b)
				}
				for _, c := range tt.checks {
					c(t, root, sentinel)
				}
			})
		}
	}
}

func TestUnpackTarget(t *testing.T) {
	requireRoot(t)
	layer := mkTar(t, file("a", "x"))
	t.Run("an empty directory is replaced", func(t *testing.T) {
		root := t.TempDir()
		if err := Unpack(bytes.NewReader(layer), root); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "a")); string(b) != "x" {
			t.Errorf("a: %q", b)
		}
	})
	t.Run("a non-empty directory is refused", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Unpack(bytes.NewReader(layer), root); err == nil {
			t.Fatal("unpacked into a non-empty directory")
		}
		if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
			t.Errorf("parent holds %d entries", len(entries))
		}
	})
	t.Run("pax global header is ignored", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}})
		tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644})
		tw.Close()
		root := filepath.Join(t.TempDir(), "root")
		if err := Unpack(&buf, root); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "f")); err != nil {
			t.Error(err)
		}
	})
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"a/b", "a/b", true},
		{"./a/b/", "a/b", true},
		{"/a//b/./c", "a/b/c", true},
		{"./", "", true},
		{"/", "", true},
		{"a/..", "", true},
		{"..", "", false},
		{"../a", "", false},
		{"a/../../b", "", false},
		{"/../a", "", false},
		{"a\x00b", "", false},
	}
	for _, tt := range tests {
		got, ok := cleanName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("cleanName(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
