package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/skiffhq/skiff/internal/platform"
)

// images stands in for the registry bridge: it readies the images it has
// and refuses the others.
type images struct {
	mu    sync.Mutex
	have  map[string]bool
	calls []string
}

func (i *images) Prepare(_ context.Context, _ *platform.Account, app string, ups []platform.ImageUpdate) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, u := range ups {
		i.calls = append(i.calls, app+"/"+u.Type+"@"+u.Image)
		if !i.have[u.Image] {
			return errors.New("no such image in " + app + "/" + u.Type)
		}
	}
	return nil
}

// TestReleaseReadiesImages: a deploy or a rollback whose image cannot be
// readied is a 422 that releases nothing.
func TestReleaseReadiesImages(t *testing.T) {
	good := "sha256:" + strings.Repeat("1", 64)
	bad := "sha256:" + strings.Repeat("2", 64)
	im := &images{have: map[string]bool{good: true}}
	e := newEnv(t, withConfig(func(c *Config) { c.Images = im }))
	e.createApp(e.admin.Token, "imgapp")
	deploy := func(img string) *response {
		return e.do("PATCH", "/apps/imgapp/formation", e.admin.Token,
			map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": img}}}, "Accept", acceptDocker)
	}
	e.must(http.StatusOK, "PATCH", "/apps/imgapp/formation", e.admin.Token,
		map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": good}}}, "Accept", acceptDocker) // v3

	before := e.dump()
	r := deploy(bad)
	checkError(t, r, http.StatusUnprocessableEntity, "invalid_params")
	if !strings.Contains(string(r.Body), "no such image in imgapp/web") {
		t.Errorf("message: %s", r.Body)
	}
	if after := e.dump(); after != before {
		t.Errorf("a refused deploy changed the store")
	}

	// The image of v3 goes away: rolling back to it is refused.
	e.must(http.StatusOK, "PATCH", "/apps/imgapp/formation", e.admin.Token,
		map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": good}}}, "Accept", acceptDocker) // v4
	im.mu.Lock()
	im.have[good] = false
	im.mu.Unlock()
	r = e.do("POST", "/apps/imgapp/releases", e.admin.Token, map[string]any{"release": "3"})
	checkError(t, r, http.StatusUnprocessableEntity, "invalid_params")
	if !strings.Contains(string(r.Body), "Cannot roll back to v3") {
		t.Errorf("message: %s", r.Body)
	}
	// A release without images (v1) needs nothing readied.
	e.must(http.StatusCreated, "POST", "/apps/imgapp/releases", e.admin.Token, map[string]any{"release": "1"})
	if got := strings.Join(im.calls, " "); !strings.Contains(got, "imgapp/web@"+bad) {
		t.Errorf("Prepare calls: %s", got)
	}
}
