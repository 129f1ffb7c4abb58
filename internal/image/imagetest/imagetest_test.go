package imagetest_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

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
	start := time.Now()
	if again := imagetest.GoBinary(t, src); again != bin {
		t.Errorf("second build at %s, want the cached %s", again, bin)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("cached build took %v", d)
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
