package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// appName is what an app name looks like (the platform's rule), the first
// component of a repository name.
var appName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)

// repositoriesDir is where distribution's filesystem layout keeps each
// repository's tags and manifest links (<app>/<type>/...).
func (r *Registry) repositoriesDir() string {
	return filepath.Join(r.cfg.Dir, "storage", "docker", "registry", "v2", "repositories")
}

// RemoveApp deletes every repository of an app (<app>/<type>): its tags,
// manifest links and upload state. The registry then answers NAME_UNKNOWN
// for them, and the next GC collects the blobs nothing else refers to. A
// new app of the same name starts with no images. Removing an app that
// has no repositories is no error.
func (r *Registry) RemoveApp(app string) error {
	if !appName.MatchString(app) {
		return fmt.Errorf("registry: removing app %q: not an app name", app)
	}
	r.gc.Lock() // no push or GC is half-way through the app's repositories
	defer r.gc.Unlock()
	if err := os.RemoveAll(filepath.Join(r.repositoriesDir(), app)); err != nil {
		return fmt.Errorf("registry: removing app %s: %w", app, err)
	}
	return nil
}

// Apps lists the app names that have repositories, for the removal at
// start of the repositories of apps destroyed while the server was down.
func (r *Registry) Apps() ([]string, error) {
	es, err := os.ReadDir(r.repositoriesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var apps []string
	for _, e := range es {
		if e.IsDir() && appName.MatchString(e.Name()) {
			apps = append(apps, e.Name())
		}
	}
	return apps, nil
}
