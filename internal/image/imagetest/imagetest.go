// Package imagetest builds small OCI images for tests: a static Go program
// compiled from source in a scratch image, or an image from hand-made layer
// tars, written as an OCI image layout directory that image.Store imports.
package imagetest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffhq/skiff/internal/image"
)

// AppUID and AppGID are the ids of the non-root user "app" in the images
// BuildGo makes.
const (
	AppUID = 10000
	AppGID = 10000
)

// Option changes the config of an image being built.
type Option func(*v1.ConfigFile)

// WithUser sets the config's User ("app", "10000", "10000:10000", …).
func WithUser(user string) Option {
	return func(c *v1.ConfigFile) { c.Config.User = user }
}

// WithEnv appends "KEY=value" entries to the config's Env.
func WithEnv(env ...string) Option {
	return func(c *v1.ConfigFile) { c.Config.Env = append(c.Config.Env, env...) }
}

// WithCmd sets the config's Cmd.
func WithCmd(cmd ...string) Option {
	return func(c *v1.ConfigFile) { c.Config.Cmd = cmd }
}

// WithEntrypoint sets the config's Entrypoint.
func WithEntrypoint(args ...string) Option {
	return func(c *v1.ConfigFile) { c.Config.Entrypoint = args }
}

// WithWorkingDir sets the config's WorkingDir.
func WithWorkingDir(dir string) Option {
	return func(c *v1.ConfigFile) { c.Config.WorkingDir = dir }
}

// WithExposedPorts sets the config's ExposedPorts ("5000/tcp", …).
func WithExposedPorts(ports ...string) Option {
	return func(c *v1.ConfigFile) {
		c.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range ports {
			c.Config.ExposedPorts[p] = struct{}{}
		}
	}
}

// WithPlatform sets the config's OS, architecture and variant (the default is
// linux/<runtime.GOARCH>).
func WithPlatform(goos, arch, variant string) Option {
	return func(c *v1.ConfigFile) {
		c.OS, c.Architecture, c.Variant = goos, arch, variant
	}
}

// Entry is one member of a layer tar: a header and, for a regular file, its
// content. Tar fills in Size from Body and a fixed ModTime when they are
// zero, and Typeflag TypeReg (TypeDir for a name ending in "/").
type Entry struct {
	tar.Header
	Body []byte
}

// epoch is the modification time of entries that give none, so that layers
// are reproducible.
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Tar returns an uncompressed layer tar of entries, in order.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if strings.HasSuffix(h.Name, "/") {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.Body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("imagetest: tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			t.Fatalf("imagetest: tar content %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("imagetest: tar: %v", err)
	}
	return buf.Bytes()
}

// Image returns an OCI image (manifest and config in OCI media types) whose
// layers are the given uncompressed tars, bottom first, each gzipped. Its
// config says linux/<runtime.GOARCH>, PATH is set and WorkingDir is "/",
// unless opts say otherwise.
func Image(t testing.TB, layers [][]byte, opts ...Option) v1.Image {
	t.Helper()
	cfg := &v1.ConfigFile{
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Config: v1.Config{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	for _, o := range opts {
		o(cfg)
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		t.Fatalf("imagetest: config: %v", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var ls []v1.Layer
	for i, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatalf("imagetest: layer %d: %v", i, err)
		}
		ls = append(ls, l)
	}
	if img, err = mutate.AppendLayers(img, ls...); err != nil {
		t.Fatalf("imagetest: layers: %v", err)
	}
	return img
}

// WriteLayout writes an OCI image layout directory (in a new temporary
// directory) whose index.json lists img, and returns its path. img may be
// a v1.Image or a v1.ImageIndex.
func WriteLayout(t testing.TB, img mutate.Appendable) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("imagetest: layout: %v", err)
	}
	switch x := img.(type) {
	case v1.ImageIndex:
		err = p.AppendIndex(x)
	case v1.Image:
		var opts []layout.Option
		if cf, cerr := x.ConfigFile(); cerr == nil && cf.OS != "" {
			opts = append(opts, layout.WithPlatform(*cf.Platform()))
		}
		err = p.AppendImage(x, opts...)
	default:
		t.Fatalf("imagetest: WriteLayout of a %T", img)
	}
	if err != nil {
		t.Fatalf("imagetest: layout: %v", err)
	}
	return dir
}

// Layout writes an image made of layers (uncompressed tars, bottom first;
// see Image) as an OCI image layout directory and returns its path.
func Layout(t testing.TB, layers [][]byte, opts ...Option) string {
	t.Helper()
	return WriteLayout(t, Image(t, layers, opts...))
}

// BuildGo compiles mainGoSource (a main package that imports only the
// standard library) as a static linux binary and returns the path of an OCI
// image layout holding a one-layer image of it: /app (the binary), /tmp
// (mode 1777), /etc/passwd and /etc/group with root and the non-root user
// "app" (uid and gid 10000), empty /proc, /dev and /sys, and a config with
// Entrypoint ["/app"] and the given options applied. Compiling is cached per
// source within the test process.
func BuildGo(t testing.TB, mainGoSource string, opts ...Option) string {
	t.Helper()
	bin, err := os.ReadFile(GoBinary(t, mainGoSource))
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	dir := func(name string, mode int64) Entry {
		return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
	}
	file := func(name string, mode int64, body string) Entry {
		return Entry{Header: tar.Header{Name: name, Mode: mode}, Body: []byte(body)}
	}
	layer := Tar(t,
		dir("./", 0o755),
		Entry{Header: tar.Header{Name: "app", Mode: 0o755}, Body: bin},
		dir("dev/", 0o755),
		dir("etc/", 0o755),
		file("etc/group", 0o644, fmt.Sprintf("root:x:0:\napp:x:%d:\n", AppGID)),
		file("etc/passwd", 0o644, fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\napp:x:%d:%d:app:/tmp:/sbin/nologin\n", AppUID, AppGID)),
		dir("proc/", 0o755),
		dir("sys/", 0o755),
		dir("tmp/", 0o1777),
	)
	return Layout(t, [][]byte{layer}, append([]Option{WithEntrypoint("/app")}, opts...)...)
}

// Import imports the layout at dir into s and returns its one image.
func Import(t testing.TB, s *image.Store, dir string) image.ImageRef {
	t.Helper()
	refs, err := s.ImportLayout(dir)
	if err != nil {
		t.Fatalf("imagetest: import %s: %v", dir, err)
	}
	if len(refs) != 1 {
		t.Fatalf("imagetest: import %s: got %d images, want 1", dir, len(refs))
	}
	return refs[0]
}

type build struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
	binDir   string
	binDirMu sync.Mutex
)

// GoBinary compiles mainGoSource (standard library only) with CGO_ENABLED=0
// for linux/<runtime.GOARCH> and returns the binary's path. Each source is
// compiled once per test process; the binaries live in a directory of the
// process's own that a later test process removes.
func GoBinary(t testing.TB, mainGoSource string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(mainGoSource))
	key := hex.EncodeToString(sum[:8])
	buildsMu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.path, b.err = compile(key, mainGoSource) })
	if b.err != nil {
		t.Fatalf("imagetest: %v", b.err)
	}
	return b.path
}

const binDirPrefix = "skiff-imagetest-"

// processBinDir returns this process's directory for binaries, removing
// those of processes that are gone.
func processBinDir() (string, error) {
	binDirMu.Lock()
	defer binDirMu.Unlock()
	if binDir != "" {
		return binDir, nil
	}
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-", 2)[0])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
	d, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", binDirPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	binDir = d
	return d, nil
}

func compile(key, src string) (string, error) {
	root, err := processBinDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module imagetestapp\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "app")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOWORK=off", "GOFLAGS=-buildvcs=false", "GOPROXY=off", "GOTOOLCHAIN=local", "GO111MODULE=on")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of test program: %v\n%s", err, b)
	}
	return out, nil
}
