package imagetest_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

const src = `package main

import "os"

func main() { os.Stdout.WriteString("static\n") }
`

func TestGoBinaryIsStaticAndCached(t *testing.T) {
	bin := imagetest.GoBinary(t, src)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader")
		}
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "static\n" {
		t.Errorf("run: %q, %v", out, err)
	}
	if again := imagetest.GoBinary(t, src); again != bin {
		t.Errorf("second build at %s, want the cached %s", again, bin)
	}
}

func TestBuildGoLayout(t *testing.T) {
	dir := imagetest.BuildGo(t, src, imagetest.WithUser("app"), imagetest.WithEnv("A=b"), imagetest.WithCmd("x"))
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil {
		t.Fatalf("index %+v", im)
	}
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/app" || c.User != "app" || len(c.Cmd) != 1 || c.Cmd[0] != "x" {
		t.Errorf("config %+v", c)
	}
	if ls, _ := img.Layers(); len(ls) != 1 {
		t.Errorf("%d layers, want 1", len(ls))
	}
}

// TestBusybox imports the busybox image and finds a shell and its applets
// linked to the static busybox binary, and the non-root user's home.
func TestBusybox(t *testing.T) {
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := imagetest.Import(t, s, imagetest.Busybox(t, imagetest.WithUser("app")))
	img, err := s.Image(ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 || img.Config.User != "app" || len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "/bin/sh" {
		t.Fatalf("image %+v", img)
	}
	root := img.Layers[0]
	for _, applet := range []string{"bin/sh", "bin/cat", "bin/sleep", "usr/bin/env"} {
		if target, err := os.Readlink(filepath.Join(root, applet)); err != nil || target != "/bin/busybox" {
			t.Errorf("%s -> %q, %v; want a link to /bin/busybox", applet, target, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp: %v, %v; want sticky", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "home/app")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != imagetest.AppUID {
		t.Errorf("/home/app: %v; want owned by the app user", err)
	}
	if out, err := exec.Command(filepath.Join(root, "bin/busybox"), "sh", "-c", "echo $((6*7))").Output(); err != nil || string(out) != "42\n" {
		t.Errorf("busybox sh: %q, %v", out, err)
	}
}
