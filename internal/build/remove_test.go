package build

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appFiles lists the paths the service holds for an app: its cache, its
// git repository, its uploaded sources and its builds' logs.
func (s *server) appFiles(appID string, buildIDs, sourceKeys []string) []string {
	s.t.Helper()
	var have []string
	paths := []string{s.svc.cacheDir(appID), s.svc.repoDir(appID)}
	for _, id := range buildIDs {
		paths = append(paths, s.svc.logPath(id))
	}
	for _, k := range sourceKeys {
		paths = append(paths, s.svc.sourcePath(k), s.svc.sourcePath(k)+".app")
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			have = append(have, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			s.t.Fatal(err)
		}
	}
	return have
}

// fill gives app a cached build, a git repository and an uploaded source,
// and returns its id, build ids and source keys.
func (s *server) fill(app string) (id string, builds, sources []string) {
	s.t.Helper()
	s.createApp(app)
	a, err := s.p.App(context.Background(), s.admin, app)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := s.buildTar(app, map[string]string{"Dockerfile": "FROM busybox\nRUN echo " + app + " > /name\n"}, "succeeded")
	if _, err := s.svc.repo(a.ID); err != nil {
		s.t.Fatal(err)
	}
	get := s.upload(app, map[string]string{"Dockerfile": "FROM busybox\n"})
	key := get[strings.LastIndex(get, "/")+1:]
	if got := s.appFiles(a.ID, []string{b.ID}, []string{key}); len(got) != 5 {
		s.t.Fatalf("%s holds %v, want its cache, repository, log, source and its app file", app, got)
	}
	return a.ID, []string{b.ID}, []string{key}
}

// TestRemoveApp: a destroyed app's cache, repository, sources and build
// logs go, whether removed on its destroy event (RemoveApp, then Prune)
// or only at the next start (Prune); another app's stay; removing twice
// is no error; a new app of the same name starts with nothing.
func TestRemoveApp(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	keepID, keepBuilds, keepSources := s.fill("keep")
	for _, onEvent := range []bool{true, false} {
		id, builds, sources := s.fill("gone")
		if _, err := s.p.DestroyApp(ctx, s.admin, "gone"); err != nil {
			t.Fatal(err)
		}
		if onEvent {
			for range 2 {
				if err := s.svc.RemoveApp(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.appFiles(id, nil, nil); len(got) != 0 {
				t.Errorf("after RemoveApp, left: %v", got)
			}
		}
		for range 2 {
			if _, err := s.svc.Prune(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.appFiles(id, builds, sources); len(got) != 0 {
			t.Errorf("onEvent=%v: the destroyed app left %v", onEvent, got)
		}
		if got := s.appFiles(keepID, keepBuilds, keepSources); len(got) != 5 {
			t.Errorf("onEvent=%v: the live app holds only %v", onEvent, got)
		}
	}
	// The same name again: a new app, nothing of the old one.
	s.createApp("gone")
	a, err := s.p.App(ctx, s.admin, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.appFiles(a.ID, nil, nil); len(got) != 0 {
		t.Errorf("a new app named gone holds %v", got)
	}
	if es, _ := os.ReadDir(filepath.Join(s.svc.cfg.Dir, "cache")); len(es) != 1 {
		t.Errorf("caches: %v, want only keep's", es)
	}

	// Bad input: a path is no app id.
	for _, bad := range []string{"", "..", "a/b", "."} {
		if err := s.svc.RemoveApp(ctx, bad); err == nil {
			t.Errorf("RemoveApp(%q) = nil, want an error", bad)
		}
	}
}

// TestRemoveAppWaitsForBuild: the removal waits for the app's build in
// progress (it holds the app's lock), and gives up when its context ends,
// leaving the files for the next try.
func TestRemoveAppWaitsForBuild(t *testing.T) {
	s := newServer(t)
	id, _, _ := s.fill("busy")
	unlock := s.svc.lockApp(id, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.svc.RemoveApp(ctx, id); err == nil {
		t.Fatal("RemoveApp during a build with an ended context = nil, want an error")
	}
	if got := s.appFiles(id, nil, nil); len(got) != 2 {
		t.Errorf("a removal that gave up removed %v", got)
	}
	done := make(chan error, 1)
	go func() { done <- s.svc.RemoveApp(context.Background(), id) }()
	unlock() // the build ends
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.appFiles(id, nil, nil); len(got) != 0 {
		t.Errorf("after the build, left: %v", got)
	}
}
