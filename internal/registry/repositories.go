package registry

import (
	"path/filepath"
	"regexp"
)

// appName is what an app name looks like (the platform's rule), the first
// component of a repository name.
var appName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)

// repositoriesDir is where distribution's filesystem layout keeps each
// repository's tags and manifest links (<app>/<type>/...). Reconcile moves
// and removes whole apps' directories here.
func (r *Registry) repositoriesDir() string {
	return filepath.Join(r.cfg.Dir, "storage", "docker", "registry", "v2", "repositories")
}
