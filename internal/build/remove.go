package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RemoveApp deletes what the service keeps of a destroyed app: its layer
// cache and its git repository. It waits for a build of the app in
// progress (which then fails, the app being gone), or until ctx ends.
// Removing what is already gone is no error.
func (s *Service) RemoveApp(ctx context.Context, appID string) error {
	if appID == "" || strings.ContainsAny(appID, `/\`) || appID == "." || appID == ".." {
		return fmt.Errorf("builds: removing app %q: not an app id", appID)
	}
	l := s.appLock(appID)
	for !l.TryLock() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("builds: removing app %s: %w", appID, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer l.Unlock()
	var errs []error
	for _, p := range []string{s.cacheDir(appID), s.repoDir(appID), s.repoDir(appID) + ".tmp"} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	delete(s.appLocks, appID)
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("builds: removing app %s: %w", appID, err)
	}
	return nil
}

func (s *Service) repoDir(appID string) string { return filepath.Join(s.cfg.Dir, "git", appID+".git") }

// Prune removes everything the service holds for apps and builds that no
// longer exist: layer caches, git repositories, uploaded sources and build
// logs. The server calls it at start and after each destroy, so that a
// destroy during downtime, a lost event or a crash in the middle of a
// removal leaks nothing for long.
func (s *Service) Prune(ctx context.Context) (removed int, err error) {
	// List first, ask second: what is created after the listing is not
	// looked at, so a new app's or build's files are never taken for a
	// destroyed one's.
	ls := func(d string) []os.DirEntry {
		es, _ := os.ReadDir(filepath.Join(s.cfg.Dir, d))
		return es
	}
	caches, repos, sources, logs := ls("cache"), ls("git"), ls("sources"), ls("logs")
	live, err := s.cfg.Platform.LiveState(ctx)
	if err != nil {
		return 0, fmt.Errorf("builds: prune: %w", err)
	}
	var errs []error
	dead := map[string]bool{}
	for _, e := range caches {
		if live.Apps[e.Name()] == "" {
			dead[e.Name()] = true
		}
	}
	for _, e := range repos {
		id := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".tmp"), ".git")
		if live.Apps[id] == "" {
			dead[id] = true
		}
	}
	for id := range dead {
		if err := s.RemoveApp(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	// Sources: <key>.tar.app names the app an upload slot was made for.
	for _, e := range sources {
		key, ok := strings.CutSuffix(e.Name(), ".tar.app")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.cfg.Dir, "sources", e.Name()))
		if err != nil || live.Apps[strings.TrimSpace(string(b))] != "" {
			continue
		}
		for _, p := range []string{s.sourcePath(key), s.sourcePath(key) + ".slot", s.sourcePath(key) + ".app"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		removed++
	}
	for _, e := range logs {
		id, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || live.Builds[id] {
			continue
		}
		s.mu.Lock()
		_, running := s.running[id]
		s.mu.Unlock()
		if running {
			continue
		}
		if err := os.Remove(s.logPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("builds: prune: %w", err)
	}
	return removed, nil
}
