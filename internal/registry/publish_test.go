package registry

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// TestPublish puts images of the image store (as a build makes them) into
// a repository: clients pull them by tag and digest, the layer files are
// shared rather than copied, and GC treats them as pushed images.
func TestPublish(t *testing.T) {
	reg, srv := newRegistry(t, "")
	store, err := image.Open(filepath.Join(reg.cfg.Dir, "..", "images-"+filepath.Base(reg.cfg.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	one, two := testImage(t, "one"), testImage(t, "two")
	ref1 := imagetest.Import(t, store, imagetest.WriteLayout(t, one))
	ref2 := imagetest.Import(t, store, imagetest.WriteLayout(t, two))

	bad := []struct {
		name, id string
		tags     []string
	}{
		{"unknown image", "sha256:" + strings.Repeat("0", 64), []string{"latest"}},
		{"not a digest", "web", []string{"latest"}},
		{"bad tag", ref1.ID, []string{"no/slashes"}},
	}
	for _, c := range bad {
		if _, err := reg.Publish(ctx, store, "myapp", "web", c.id, c.tags...); err == nil {
			t.Errorf("%s: Publish succeeded", c.name)
		}
	}

	md, err := reg.Publish(ctx, store, "myapp", "web", ref1.ID, "latest", "build-1")
	if err != nil {
		t.Fatal(err)
	}
	if md != ref1.Manifest {
		t.Errorf("manifest digest %s, want the store's %s", md, ref1.Manifest)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken})
	pull := func(ref string) string {
		t.Helper()
		r, err := name.ParseReference(hostOf(srv)+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r, auth)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers { // read every byte: digests checked
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(rc); err != nil {
				t.Fatalf("pull %s: layer: %v", ref, err)
			}
			rc.Close()
		}
		id, _ := img.ConfigName()
		return id.String()
	}
	if id := pull("myapp/web:latest"); id != ref1.ID {
		t.Errorf("latest is %s, want %s", id, ref1.ID)
	}
	if id := pull("myapp/web:build-1"); id != ref1.ID {
		t.Errorf("build-1 is %s, want %s", id, ref1.ID)
	}
	// Shared, not copied: the registry's layer file is the store's.
	checkShared(t, reg, store, one, 1)
	// Publishing again (the same image, another type) is fine.
	for _, typ := range []string{"web", "worker"} {
		if _, err := reg.Publish(ctx, store, "myapp", typ, ref1.ID, "latest"); err != nil {
			t.Fatalf("publish %s again: %v", typ, err)
		}
	}
	if _, err := reg.Publish(ctx, store, "myapp", "web", ref2.ID, "latest"); err != nil {
		t.Fatal(err)
	}
	if id := pull("myapp/web:latest"); id != ref2.ID {
		t.Errorf("latest is %s after the second build, want %s", id, ref2.ID)
	}

	// GC: a release that names image one keeps it; without it, its
	// manifest goes once untagged (as a pushed image's would).
	defer func(orig func() time.Time) { timeNow = orig }(timeNow)
	timeNow = func() time.Time { return time.Now().Add(2 * time.Hour) }
	keep := func(id string) bool { return id == ref1.ID }
	if st, err := reg.GC(ctx, keep); err != nil || st.Manifests != 0 {
		t.Fatalf("GC keeping one = %+v, %v", st, err)
	}
	other, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Import(ctx, other, "myapp", "web", ref1.ID); err != nil {
		t.Fatalf("image one after a GC that keeps it: %v", err)
	}
	// Untag build-1 as a user would; then nothing keeps one in myapp/web
	// (myapp/worker:latest still names it).
	repo, _ := reg.repository(ctx, "myapp/web")
	if err := repo.Tags(ctx).Untag(ctx, "build-1"); err != nil {
		t.Fatal(err)
	}
	if st, err := reg.GC(ctx, nil); err != nil || st.Manifests != 1 {
		t.Fatalf("GC = %+v, %v", st, err)
	}
	if _, err := reg.Import(ctx, other, "myapp", "web", ref1.ID); err == nil {
		t.Error("image one still in myapp/web after GC")
	}
	if id := pull("myapp/worker:latest"); id != ref1.ID {
		t.Errorf("worker latest is %s, want %s", id, ref1.ID)
	}
	if id := pull("myapp/web:latest"); id != ref2.ID {
		t.Errorf("web latest is %s, want %s", id, ref2.ID)
	}
}

// TestPublishAcrossFileSystems publishes from an image store on another
// file system (tmpfs): the blobs cannot be linked and are copied through
// the upload path, and clients pull the same image.
func TestPublishAcrossFileSystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "skb2-publish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	store, err := image.Open(shm)
	if err != nil {
		t.Fatal(err)
	}
	reg, srv := newRegistry(t, "")
	img := testImage(t, "tmpfs")
	ref := imagetest.Import(t, store, imagetest.WriteLayout(t, img))
	if _, err := reg.Publish(context.Background(), store, "myapp", "web", ref.ID, "latest"); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(hostOf(srv)+"/myapp/web:latest", name.Insecure)
	got, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken}))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("pulled image: %v", err)
	}
	if id, _ := got.ConfigName(); id.String() != ref.ID {
		t.Errorf("pulled %s, want %s", id, ref.ID)
	}
}
