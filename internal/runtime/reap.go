package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Reap removes everything a previous run of this Runtime's configuration
// may have left behind after a crash: it kills and deletes every container
// in runc's Root, kills and removes every cgroup under CgroupParent (and
// CgroupParent itself when empty), unmounts whatever is mounted under Dir
// and removes every container directory there. Call it once at start-up,
// before Start; it must not run while this Runtime has live containers.
func (r *Runtime) Reap() error {
	var errs []error

	// 1. runc's containers: runc knows their processes and cgroups.
	ids := map[string]bool{}
	if out, err := r.runcOutput("list", "--quiet"); err == nil {
		for _, id := range strings.Fields(out) {
			ids[id] = true
		}
	}
	if entries, err := os.ReadDir(r.cfg.Root); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				ids[e.Name()] = true
			}
		}
	}
	for id := range ids {
		if !idPattern.MatchString(id) {
			continue
		}
		_, _ = r.runcOutput("kill", id, "KILL")
		if err := r.deleteContainer(id); err != nil {
			errs = append(errs, err)
		}
	}

	// 2. cgroups runc no longer knows about (state lost, or a container
	// that was being created).
	for i := range r.cg {
		parent := r.cg[i].dir(r.cfg.CgroupParent)
		if err := removeCgroupTree(parent); err != nil {
			errs = append(errs, err)
		}
	}

	// 3. overlay mounts, then the container directories.
	if err := unmountAll(r.cfg.Dir); err != nil {
		errs = append(errs, err)
	}
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("runtime: %w", err))
	}
	for _, e := range entries {
		if err := removeDir(filepath.Join(r.cfg.Dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
