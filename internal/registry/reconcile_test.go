package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// repoApps lists the app names that have repositories on disk.
func repoApps(t *testing.T, reg *Registry) []string {
	t.Helper()
	es, err := os.ReadDir(reg.repositoriesDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestReconcileRemovesDestroyedApps: once an app is destroyed, Reconcile
// makes its repositories NAME_UNKNOWN, leaves other apps' alone, lets GC
// collect the blobs, is idempotent, and a new app of the same name starts
// with no images.
func TestReconcileRemovesDestroyedApps(t *testing.T) {
	acc := testAccounts()
	reg, srv := newRegistryWith(t, "", acc)
	ctx := context.Background()
	old, other := testImage(t, "old"), testImage(t, "other")
	push(t, srv, aliceToken, "myapp/web:latest", old)
	push(t, srv, aliceToken, "myapp/worker:v1", old)
	push(t, srv, aliceToken, "other/web:latest", other)
	if apps := repoApps(t, reg); !slices.Equal(apps, []string{"myapp", "other"}) {
		t.Fatalf("apps with repositories: %v", apps)
	}
	tags := func(repo string) result {
		t.Helper()
		return do(t, "GET", srv.URL+"/v2/"+repo+"/tags/list", aliceToken, nil, nil)
	}
	acc.rename("alice", "myapp", "") // destroyed
	for range 2 {
		if err := reg.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	acc.create("alice", "myapp", "id-new-myapp") // a new app takes the name
	for _, repo := range []string{"myapp/web", "myapp/worker"} {
		if r := tags(repo); r.status != 404 || !strings.Contains(r.body, "NAME_UNKNOWN") {
			t.Errorf("tags of %s after removal: %d %s", repo, r.status, r.body)
		}
		d := digestOf(t, old)
		if r := do(t, "GET", srv.URL+"/v2/"+repo+"/manifests/"+d, aliceToken, nil, nil); r.status != 404 {
			t.Errorf("manifest of %s after removal: %d %s", repo, r.status, r.body)
		}
	}
	if r := tags("other/web"); r.status != 200 || !strings.Contains(r.body, "latest") {
		t.Errorf("other app's tags: %d %s", r.status, r.body)
	}
	if apps := repoApps(t, reg); !slices.Equal(apps, []string{"other"}) {
		t.Errorf("apps with repositories after removal: %v", apps)
	}
	// GC after the grace period collects the removed app's blobs only.
	defer func(orig func() time.Time) { timeNow = orig }(timeNow)
	timeNow = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if st, err := reg.GC(ctx, nil); err != nil || st.Blobs != 4 { // manifest, config, two layers
		t.Errorf("GC = %+v, %v; want the 4 blobs of the removed image", st, err)
	}
	timeNow = time.Now
	if r := tags("other/web"); r.status != 200 {
		t.Errorf("other app after GC: %d %s", r.status, r.body)
	}
	// A new app of the same name: a push starts a fresh repository.
	fresh := testImage(t, "fresh")
	push(t, srv, aliceToken, "myapp/web:latest", fresh)
	if r := tags("myapp/worker"); r.status != 404 {
		t.Errorf("the new app has the old worker: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", srv.URL+"/v2/myapp/web/manifests/"+digestOf(t, old), aliceToken, nil, nil); r.status != 404 {
		t.Errorf("the new app serves the old image: %d", r.status)
	}
}

// TestReconcileFollowsRenames: an app's repositories follow its renames,
// also when the registry missed the event (the first request under the
// reused name reconciles), when two apps swap names, and after a crash
// half-way through a move.
func TestReconcileFollowsRenames(t *testing.T) {
	acc := testAccounts()
	dir := t.TempDir()
	reg, srv := newRegistryWith(t, dir, acc)
	ctx := context.Background()
	img, otherImg := testImage(t, "img"), testImage(t, "other")
	push(t, srv, aliceToken, "myapp/web:v1", img)
	push(t, srv, aliceToken, "other/web:v1", otherImg)
	has := func(repo string, image v1.Image) {
		t.Helper()
		r := do(t, "GET", srv.URL+"/v2/"+repo+"/manifests/v1", aliceToken, nil,
			map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
		if r.status != 200 || !strings.Contains(r.header.Get("Docker-Content-Digest"), digestOf(t, image)) {
			t.Errorf("%s:v1: %d %s, want the image pushed before the rename", repo, r.status, r.body)
		}
	}
	unknown := func(repo string) {
		t.Helper()
		if r := do(t, "GET", srv.URL+"/v2/"+repo+"/tags/list", aliceToken, nil, nil); r.status != 404 || !strings.Contains(r.body, "NAME_UNKNOWN") {
			t.Errorf("%s: %d %s, want NAME_UNKNOWN", repo, r.status, r.body)
		}
	}

	// A rename with its event.
	acc.rename("alice", "myapp", "renamed")
	if err := reg.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	has("renamed/web", img)

	// A rename whose event was missed, and a new app under the old name:
	// the new app's first request finds no images of the old one.
	acc.rename("alice", "renamed", "again")
	acc.create("alice", "renamed", "id-newcomer")
	unknown("renamed/web")
	has("again/web", img)

	// Two apps swap names.
	acc.rename("alice", "again", "swap")
	acc.rename("alice", "other", "again")
	acc.rename("alice", "swap", "other")
	if err := reg.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	has("other/web", img)
	has("again/web", otherImg)

	// A crash half-way through a move: the repositories set aside under
	// the app's id reach its name at the next start.
	id := acc.idOf("other")
	if err := os.Rename(filepath.Join(reg.repositoriesDir(), "other"), filepath.Join(reg.repositoriesDir(), asidePrefix+id)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	reg.Close()
	_, srv = newRegistryWith(t, dir, acc)
	has("other/web", img)
	has("again/web", otherImg)
}

// TestPublishedRepositoriesFollowRenames: a build's Publish records the
// owner as a push does, so its repositories move with a rename instead of
// being taken for a destroyed app's.
func TestPublishedRepositoriesFollowRenames(t *testing.T) {
	acc := testAccounts()
	reg, srv := newRegistryWith(t, "", acc)
	ctx := context.Background()
	store, err := image.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	ref := imagetest.Import(t, store, imagetest.WriteLayout(t, testImage(t, "built")))
	if _, err := reg.Publish(ctx, store, "myapp", "web", ref.ID, "latest"); err != nil {
		t.Fatal(err)
	}
	acc.rename("alice", "myapp", "renamed")
	if err := reg.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", srv.URL+"/v2/renamed/web/tags/list", aliceToken, nil, nil); r.status != 200 || !strings.Contains(r.body, "latest") {
		t.Errorf("renamed/web after the rename: %d %s", r.status, r.body)
	}
}
