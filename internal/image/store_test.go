package image_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

const helloSource = `package main

import "fmt"

func main() { fmt.Println("hello from the image") }
`

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		image.Skip(t, "unpacking layers needs root")
	}
}

func openStore(t *testing.T, opts ...image.Option) *image.Store {
	t.Helper()
	s, err := image.Open(filepath.Join(t.TempDir(), "images"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileEntry(name, body string) imagetest.Entry {
	return imagetest.Entry{Header: tar.Header{Name: name, Mode: 0o644}, Body: []byte(body)}
}

func layerDirs(t *testing.T, s *image.Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "layers"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func tmpEntries(t *testing.T, s *image.Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestImportAndLookup(t *testing.T) {
	requireRoot(t)
	dir := imagetest.BuildGo(t, helloSource,
		imagetest.WithUser("app"), imagetest.WithEnv("GREETING=hi"), imagetest.WithCmd("--flag"),
		imagetest.WithExposedPorts("5000/tcp", "80/tcp"))
	s := openStore(t)
	ref := imagetest.Import(t, s, dir)

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	img, _ := p.Image(im.Manifests[0].Digest)
	configName, _ := img.ConfigName()
	manifestDigest, _ := img.Digest()
	if ref.ID != configName.String() || ref.Manifest != manifestDigest.String() || ref.Index != "" {
		t.Fatalf("ref %+v, want ID %s manifest %s", ref, configName, manifestDigest)
	}

	ids := map[string]string{
		"config digest":   ref.ID,
		"manifest digest": ref.Manifest,
		"bare config hex": strings.TrimPrefix(ref.ID, "sha256:"),
	}
	for name, id := range ids {
		t.Run(name, func(t *testing.T) {
			got, err := s.Image(id)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != ref.ID || got.Manifest != ref.Manifest {
				t.Errorf("image %+v, want %+v", got.ImageRef, ref)
			}
			c := got.Config
			if !slices.Equal(c.Entrypoint, []string{"/app"}) || !slices.Equal(c.Cmd, []string{"--flag"}) ||
				c.User != "app" || c.WorkingDir != "/" || !slices.Contains(c.Env, "GREETING=hi") ||
				!slices.Equal(c.ExposedPorts, []string{"5000/tcp", "80/tcp"}) {
				t.Errorf("config %+v", c)
			}
			if got.Platform != "linux/"+runtime.GOARCH {
				t.Errorf("platform %q", got.Platform)
			}
			if len(got.Layers) != 1 {
				t.Fatalf("layers %v", got.Layers)
			}
			root := got.Layers[0]
			var st unix.Stat_t
			for path, want := range map[string]uint32{"app": 0o755, "tmp": 0o1777, "etc/passwd": 0o644, ".": 0o755} {
				if err := unix.Lstat(filepath.Join(root, path), &st); err != nil || st.Mode&0o7777 != want {
					t.Errorf("%s: mode %o (%v), want %o", path, st.Mode&0o7777, err, want)
				}
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if !strings.Contains(string(passwd), "app:x:10000:10000:") {
				t.Errorf("passwd %q", passwd)
			}
			out, err := exec.Command(filepath.Join(root, "app")).Output()
			if err != nil || string(out) != "hello from the image\n" {
				t.Errorf("running /app: %q, %v", out, err)
			}
		})
	}
	if n := image.Unpacks(s); n != 1 {
		t.Errorf("unpacked %d times, want once", n)
	}

	for _, id := range []string{"sha256:" + strings.Repeat("0", 64), "nonsense", "", "sha512:abc", "sha256:../../etc"} {
		if _, err := s.Image(id); !errors.Is(err, image.ErrNotFound) {
			t.Errorf("Image(%q): %v, want ErrNotFound", id, err)
		}
	}
	// A layer digest is not an image.
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if _, err := s.Image(ld.String()); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Image(layer digest): %v, want ErrNotFound", err)
	}

	// A second import of the same layout changes nothing.
	again := imagetest.Import(t, s, dir)
	if again != ref {
		t.Errorf("second import %+v, want %+v", again, ref)
	}
	if len(tmpEntries(t, s)) != 0 {
		t.Errorf("tmp/ holds %v", tmpEntries(t, s))
	}
}

func TestLowerDirs(t *testing.T) {
	im := &image.Image{Layers: []string{"/l/bottom", "/l/mid:dle", "/l/top,x"}}
	if got := im.LowerDirs(); !slices.Equal(got, []string{"/l/top,x", "/l/mid:dle", "/l/bottom"}) {
		t.Errorf("LowerDirs %v", got)
	}
	if got, want := im.OverlayLowerdir(), `/l/top\,x:/l/mid\:dle:/l/bottom`; got != want {
		t.Errorf("OverlayLowerdir %q, want %q", got, want)
	}
}

// otherArches are architectures that are not the host's.
func otherArches() []string {
	var out []string
	for _, a := range []string{"arm64", "s390x", "ppc64le", "riscv64"} {
		if a != runtime.GOARCH {
			out = append(out, a)
		}
	}
	return out[:2]
}

func archImage(t *testing.T, arch string) v1.Image {
	return imagetest.Image(t, [][]byte{imagetest.Tar(t, fileEntry("arch", arch))},
		imagetest.WithPlatform("linux", arch, ""))
}

func index(t *testing.T, arches ...string) v1.ImageIndex {
	var adds []mutate.IndexAddendum
	for _, a := range arches {
		adds = append(adds, mutate.IndexAddendum{
			Add:        archImage(t, a),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}},
		})
	}
	// An attestation-style entry every real index may carry.
	adds = append(adds, mutate.IndexAddendum{
		Add:        archImage(t, runtime.GOARCH),
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}},
	})
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
}

func TestIndexPlatformSelection(t *testing.T) {
	requireRoot(t)
	others := otherArches()
	host := runtime.GOARCH
	// layoutOfIndex writes a layout whose index.json is the index itself
	// (its entries carry platforms), as `crane pull --format=oci` of a
	// multi-platform image or `skopeo copy --all` do.
	layoutOfIndex := func(t *testing.T, idx v1.ImageIndex) string {
		dir := filepath.Join(t.TempDir(), "layout")
		if _, err := layout.Write(dir, idx); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name     string
		layout   func(t *testing.T) string
		opts     []image.Option
		wantArch string // "" means an ErrNoPlatform error
		viaIndex bool
	}{
		{name: "nested index picks the host", layout: func(t *testing.T) string {
			return imagetest.WriteLayout(t, index(t, others[0], host, others[1]))
		}, wantArch: host, viaIndex: true},
		{name: "index.json with platforms picks the host", layout: func(t *testing.T) string {
			return layoutOfIndex(t, index(t, others[0], host))
		}, wantArch: host},
		{name: "WithPlatform picks another", layout: func(t *testing.T) string {
			return imagetest.WriteLayout(t, index(t, others[0], host))
		}, opts: []image.Option{image.WithPlatform("linux/" + others[0])}, wantArch: others[0], viaIndex: true},
		{name: "nested index without the host", layout: func(t *testing.T) string {
			return imagetest.WriteLayout(t, index(t, others...))
		}},
		{name: "index.json without the host", layout: func(t *testing.T) string {
			return layoutOfIndex(t, index(t, others...))
		}},
		{name: "single image for another arch", layout: func(t *testing.T) string {
			p, err := layout.Write(filepath.Join(t.TempDir(), "layout"), empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			// No platform on the descriptor: only the config says.
			if err := p.AppendImage(archImage(t, others[0])); err != nil {
				t.Fatal(err)
			}
			return string(p)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, tt.opts...)
			refs, err := s.ImportLayout(tt.layout(t))
			if tt.wantArch == "" {
				if !errors.Is(err, image.ErrNoPlatform) {
					t.Fatalf("err %v, want ErrNoPlatform", err)
				}
				if !strings.Contains(err.Error(), others[0]) {
					t.Errorf("error %q does not say what the image has", err)
				}
				t.Logf("error: %v", err)
				if got := layerDirs(t, s); len(got) != 0 {
					t.Errorf("layers %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) != 1 {
				t.Fatalf("refs %+v, want one", refs)
			}
			if (refs[0].Index != "") != tt.viaIndex {
				t.Errorf("ref %+v: index set %v, want %v", refs[0], refs[0].Index != "", tt.viaIndex)
			}
			ids := []string{refs[0].ID, refs[0].Manifest}
			if tt.viaIndex {
				ids = append(ids, refs[0].Index)
			}
			for _, id := range ids {
				im, err := s.Image(id)
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(im.Layers[0], "arch"))
				if err != nil || string(b) != tt.wantArch {
					t.Errorf("Image(%s) is for %q (%v), want %q", id, b, err, tt.wantArch)
				}
			}
		})
	}
}

func TestLayerDedup(t *testing.T) {
	requireRoot(t)
	base := imagetest.Tar(t, fileEntry("base", "shared"), imagetest.Entry{Header: tar.Header{Name: "tmp/", Mode: 0o1777}})
	appA := imagetest.Tar(t, fileEntry("app", "a"))
	appB := imagetest.Tar(t, fileEntry("app", "b"))
	s := openStore(t)
	a := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{base, appA}))
	b := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{base, appB}, imagetest.WithCmd("b")))
	// The same base layer, stored uncompressed: other blob, same diff-id.
	imgC, err := mutate.AppendLayers(imagetest.Image(t, nil, imagetest.WithCmd("c")), static.NewLayer(base, types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	c := imagetest.Import(t, s, imagetest.WriteLayout(t, imgC))

	imA, err := s.Image(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	imB, err := s.Image(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	imC, err := s.Image(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if imA.Layers[0] != imB.Layers[0] || imA.Layers[0] != imC.Layers[0] {
		t.Errorf("base layer not shared: %s, %s, %s", imA.Layers[0], imB.Layers[0], imC.Layers[0])
	}
	if imA.Layers[1] == imB.Layers[1] {
		t.Error("different app layers share a directory")
	}
	if got := layerDirs(t, s); len(got) != 3 {
		t.Errorf("layer cache holds %v, want 3 layers", got)
	}
	if n := image.Unpacks(s); n != 3 {
		t.Errorf("%d unpacks, want 3", n)
	}
	for im, want := range map[*image.Image]string{imA: "a", imB: "b"} {
		if got, _ := os.ReadFile(filepath.Join(im.Layers[1], "app")); string(got) != want {
			t.Errorf("app layer holds %q, want %q", got, want)
		}
	}
}

// TestOverlayMount mounts an image's layers with overlayfs and checks that
// whiteouts and opaque directories hide what lower layers hold.
func TestOverlayMount(t *testing.T) {
	requireRoot(t)
	bottom := imagetest.Tar(t,
		fileEntry("a/x", "x"), fileEntry("a/y", "y"), fileEntry("keep", "k"),
		fileEntry("d/old", "old"), fileEntry("gone", "g"))
	top := imagetest.Tar(t,
		fileEntry("a/.wh.x", ""), fileEntry("d/.wh..wh..opq", ""), fileEntry("d/new", "new"), fileEntry(".wh.gone", ""))
	s := openStore(t)
	ref := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{bottom, top}))
	im, err := s.Image(ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+im.OverlayLowerdir()); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	for p, want := range map[string]bool{"a/x": false, "a/y": true, "keep": true, "d/old": false, "d/new": true, "gone": false} {
		_, err := os.Lstat(filepath.Join(merged, p))
		if got := err == nil; got != want {
			t.Errorf("%s visible %v, want %v (%v)", p, got, want, err)
		}
	}
}

// layoutBlobs serves the blobs of an OCI layout, as the registry will serve
// its own, counting what the store asks for.
type layoutBlobs struct {
	dir    string
	mu     sync.Mutex
	opened []string
	// replace, if set, serves these bytes instead of a blob's own.
	replace map[string][]byte
}

func (l *layoutBlobs) Open(digest string) (io.ReadCloser, error) {
	l.mu.Lock()
	l.opened = append(l.opened, digest)
	l.mu.Unlock()
	if b, ok := l.replace[digest]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return os.Open(filepath.Join(l.dir, "blobs", strings.Replace(digest, ":", "/", 1)))
}

func TestPut(t *testing.T) {
	requireRoot(t)
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, fileEntry("app", "put"))}, imagetest.WithEntrypoint("/app"))
	docker := mutate.ConfigMediaType(mutate.MediaType(img, types.DockerManifestSchema2), types.DockerConfigJSON)
	for name, img := range map[string]v1.Image{"oci": img, "docker": docker} {
		t.Run(name, func(t *testing.T) {
			dir := imagetest.WriteLayout(t, img)
			raw, _ := img.RawManifest()
			mt, _ := img.MediaType()
			s := openStore(t)
			src := &layoutBlobs{dir: dir}
			ref, err := s.Put(raw, string(mt), src)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := img.ConfigName()
			if ref.ID != cfg.String() {
				t.Errorf("ID %s, want %s", ref.ID, cfg)
			}
			if len(src.opened) != 2 {
				t.Errorf("opened %v, want the config and one layer", src.opened)
			}
			// Everything is held now: a second Put needs no source.
			if _, err := s.Put(raw, "", nil); err != nil {
				t.Fatalf("second Put without a source: %v", err)
			}
			im, err := s.Image(ref.ID)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(im.Layers[0], "app")); string(b) != "put" {
				t.Errorf("app %q", b)
			}
		})
	}
}

func TestPutRefusesBadInput(t *testing.T) {
	requireRoot(t)
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, fileEntry("app", "put"))})
	raw, _ := img.RawManifest()
	cfgName, _ := img.ConfigName()
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var c map[string]any
		json.Unmarshal(raw, &c)
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	tests := []struct {
		name      string
		manifest  []byte
		mediaType string
		replace   map[string][]byte
		nilSource bool
		want      error
	}{
		{name: "layer with the wrong content", manifest: raw,
			replace: map[string][]byte{layerDigest.String(): []byte("not the layer")}, want: image.ErrDigestMismatch},
		{name: "config with the wrong content", manifest: raw,
			replace: map[string][]byte{cfgName.String(): []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`)}, want: image.ErrDigestMismatch},
		{name: "missing blobs", manifest: raw, nilSource: true, want: image.ErrNotFound},
		{name: "media type mismatch", manifest: raw, mediaType: string(types.DockerManifestSchema2), want: image.ErrInvalidImage},
		{name: "schema 1", manifest: []byte(`{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[],"history":[]}`),
			mediaType: string(types.DockerManifestSchema1), want: image.ErrInvalidImage},
		{name: "not JSON", manifest: []byte("<html>"), want: image.ErrInvalidImage},
		{name: "artifact, not an image", manifest: edit(func(m map[string]any) {
			m["config"].(map[string]any)["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
		}), want: image.ErrInvalidImage},
		{name: "unknown layer type", manifest: edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["mediaType"] = "application/octet-stream"
		}), want: image.ErrInvalidImage},
		{name: "bad layer digest", manifest: edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["digest"] = "sha256:../../../etc/passwd"
		}), want: image.ErrInvalidImage},
		{name: "layer size lies", manifest: edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["size"] = 3
		}), want: image.ErrDigestMismatch},
		{name: "oversized manifest", manifest: append(bytes.Repeat([]byte(" "), 5<<20), raw...), want: image.ErrInvalidImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			var src image.BlobSource = &layoutBlobs{dir: imagetest.WriteLayout(t, img), replace: tt.replace}
			if tt.nilSource {
				src = nil
			}
			_, err := s.Put(tt.manifest, tt.mediaType, src)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			t.Logf("error: %v", err)
			if _, err := s.Resolve(cfgName.String()); !errors.Is(err, image.ErrNotFound) {
				t.Errorf("the refused image is visible: %v", err)
			}
			if got := tmpEntries(t, s); len(got) != 0 {
				t.Errorf("tmp/ holds %v", got)
			}
		})
	}
}

func TestDiffIDMismatch(t *testing.T) {
	requireRoot(t)
	// A config that claims another diff-id for its layer must not plant
	// that layer in the cache under the claimed key.
	good := imagetest.Image(t, [][]byte{imagetest.Tar(t, fileEntry("app", "honest"))})
	cf, _ := good.ConfigFile()
	cf = cf.DeepCopy()
	victim, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	cf.RootFS.DiffIDs[0] = victim
	bad, err := mutate.ConfigFile(good, cf)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	ref := imagetest.Import(t, s, imagetest.WriteLayout(t, bad))
	if _, err := s.Image(ref.ID); !errors.Is(err, image.ErrDigestMismatch) {
		t.Fatalf("err %v, want ErrDigestMismatch", err)
	}
	if got := layerDirs(t, s); len(got) != 0 {
		t.Errorf("layer cache holds %v", got)
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Errorf("tmp/ holds %v", got)
	}
}

func TestHostileImage(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	layer := imagetest.Tar(t,
		imagetest.Entry{Header: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside}},
		fileEntry("link/pwned", "x"))
	s := openStore(t)
	ref := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{layer}))
	_, err := s.Image(ref.ID)
	if !errors.Is(err, image.ErrInvalidLayer) {
		t.Fatalf("err %v, want ErrInvalidLayer", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the layer: %v", entries)
	}
	if got := layerDirs(t, s); len(got) != 0 {
		t.Errorf("layer cache holds %v", got)
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Errorf("tmp/ holds %v", got)
	}
}

func TestLimits(t *testing.T) {
	requireRoot(t)
	layer := imagetest.Tar(t, fileEntry("big", strings.Repeat("x", 4096)))
	s := openStore(t, image.WithLimits(image.Limits{MaxBytes: 1024}))
	ref := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{layer}))
	if _, err := s.Image(ref.ID); !errors.Is(err, image.ErrLayerTooLarge) {
		t.Fatalf("err %v, want ErrLayerTooLarge", err)
	}
	if got := layerDirs(t, s); len(got) != 0 {
		t.Errorf("layer cache holds %v", got)
	}
}

func TestCrashLeftovers(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "images")
	s, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{imagetest.Tar(t, fileEntry("app", "whole"))}))
	cfg, err := s.Image(ref.Manifest) // learn the layer's cache name
	if err != nil {
		t.Fatal(err)
	}
	hex := filepath.Base(cfg.Layers[0])
	if err := os.RemoveAll(cfg.Layers[0]); err != nil { // as if never unpacked
		t.Fatal(err)
	}
	// What a crash mid-unpack and mid-write leaves behind.
	half := filepath.Join(dir, "tmp", "layer-"+hex[:12]+"-123456")
	if err := os.MkdirAll(filepath.Join(half, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "app"), []byte("half"), 0o000); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "blob-999"), []byte("partial blob"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("ignored by a running store", func(t *testing.T) {
		im, err := s.Image(ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(im.Layers[0], "app")); string(b) != "whole" {
			t.Errorf("app %q", b)
		}
		if _, err := os.Stat(half); err != nil {
			t.Errorf("the running store touched another unpack's temp dir: %v", err)
		}
	})
	t.Run("cleaned by Open", func(t *testing.T) {
		if err := os.RemoveAll(cfg.Layers[0]); err != nil {
			t.Fatal(err)
		}
		s2, err := image.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := tmpEntries(t, s2); len(got) != 0 {
			t.Errorf("tmp/ holds %v after Open", got)
		}
		im, err := s2.Image(ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(im.Layers[0], "app")); string(b) != "whole" {
			t.Errorf("app %q", b)
		}
	})
}

func TestConcurrentImage(t *testing.T) {
	requireRoot(t)
	var layers [][]byte
	for i := range 4 {
		layers = append(layers, imagetest.Tar(t, fileEntry(fmt.Sprintf("layer%d", i), strings.Repeat("y", 100_000))))
	}
	dir := filepath.Join(t.TempDir(), "images")
	s, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := imagetest.Import(t, s, imagetest.Layout(t, layers))
	// A second Store on the same directory stands for another process.
	other, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}

	const n = 16
	results := make([]*image.Image, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%4 == 3 {
				st = other
			}
			results[i], errs[i] = st.Image(ref.ID)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Image #%d: %v", i, errs[i])
		}
		if !slices.Equal(results[i].Layers, results[0].Layers) {
			t.Errorf("Image #%d layers %v, want %v", i, results[i].Layers, results[0].Layers)
		}
	}
	// Each layer is committed once, by one of the stores.
	if got := image.Unpacks(s) + image.Unpacks(other); got != 4 {
		t.Errorf("%d unpacks committed, want 4", got)
	}
	for i, l := range results[0].Layers {
		b, err := os.ReadFile(filepath.Join(l, fmt.Sprintf("layer%d", i)))
		if err != nil || len(b) != 100_000 {
			t.Errorf("layer %d: %d bytes, %v", i, len(b), err)
		}
	}
	if got := layerDirs(t, s); len(got) != 4 {
		t.Errorf("layer cache holds %v", got)
	}
	if got := tmpEntries(t, s); len(got) != 0 {
		t.Errorf("tmp/ holds %v", got)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := image.Open(t.TempDir(), image.WithPlatform("linux")); err == nil {
		t.Error("WithPlatform(\"linux\") accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := image.Open(f); err == nil {
		t.Error("Open of a file succeeded")
	}
	if _, err := openStore(t).ImportLayout(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("import of an empty dir: %v", err)
	}
}
