package image_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// TestRetain keeps one of two images that share a layer: the other's
// record, its own blobs and its own unpacked layer go; the shared layer
// and everything of the kept image stay, and it still runs.
func TestRetain(t *testing.T) {
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	entry := func(name, body string) []byte {
		return imagetest.Tar(t, imagetest.Entry{Header: tar.Header{Name: name, Mode: 0o644}, Body: []byte(body)})
	}
	shared := entry("shared", "both")
	a := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{shared, entry("a", "only a")}, imagetest.WithCmd("/a")))
	b := imagetest.Import(t, s, imagetest.Layout(t, [][]byte{shared, entry("b", "only b")}, imagetest.WithCmd("/b")))
	ia, err := s.Image(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.Image(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Retain(func(id string) bool { return id == a.ID })
	if err != nil {
		t.Fatal(err)
	}
	// b's manifest, config and own layer blob; its own unpacked layer.
	if st.Images != 1 || st.Blobs != 3 || st.Layers != 1 {
		t.Errorf("Retain = %+v", st)
	}
	if _, err := s.Resolve(b.ID); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("b after Retain: %v", err)
	}
	if _, err := os.Stat(ib.Layers[1]); !os.IsNotExist(err) {
		t.Errorf("b's own layer is still there: %v", err)
	}
	again, err := s.Image(a.ID)
	if err != nil || len(again.Layers) != 2 || again.Layers[0] != ia.Layers[0] {
		t.Fatalf("a after Retain: %+v, %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(ia.Layers[1], "a")); err != nil {
		t.Errorf("a's layer content: %v", err)
	}
	if image.Unpacks(s) != 3 {
		t.Errorf("%d unpacks: a kept layer was unpacked again", image.Unpacks(s))
	}
	// Nothing kept: the store is empty again.
	if _, err := s.Retain(func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"refs", "blobs/sha256", "layers"} {
		if es, _ := os.ReadDir(filepath.Join(s.Dir(), d)); len(es) != 0 {
			t.Errorf("%s after keeping nothing: %d entries", d, len(es))
		}
	}
}
