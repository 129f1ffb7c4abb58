package registry

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRemoveApp: removing an app's repositories makes them NAME_UNKNOWN,
// leaves other apps' alone, lets GC collect the blobs, is idempotent, and
// a new app of the same name starts with no images.
func TestRemoveApp(t *testing.T) {
	reg, srv := newRegistry(t, "")
	ctx := context.Background()
	old, other := testImage(t, "old"), testImage(t, "other")
	push(t, srv, aliceToken, "myapp/web:latest", old)
	push(t, srv, aliceToken, "myapp/worker:v1", old)
	push(t, srv, aliceToken, "other/web:latest", other)
	if apps, err := reg.Apps(); err != nil || !slices.Equal(apps, []string{"myapp", "other"}) {
		t.Fatalf("Apps = %v, %v", apps, err)
	}
	tags := func(repo string) result {
		t.Helper()
		return do(t, "GET", srv.URL+"/v2/"+repo+"/tags/list", aliceToken, nil, nil)
	}
	for range 2 {
		if err := reg.RemoveApp("myapp"); err != nil {
			t.Fatal(err)
		}
	}
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
	if apps, err := reg.Apps(); err != nil || !slices.Equal(apps, []string{"other"}) {
		t.Errorf("Apps after removal = %v, %v", apps, err)
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
	// Bad input: only app names.
	for _, bad := range []string{"", "..", "a/b", "UPPER", "../storage"} {
		if err := reg.RemoveApp(bad); err == nil {
			t.Errorf("RemoveApp(%q) = nil, want an error", bad)
		}
	}
}
