package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Repositories are named by app name (<app>/<type>), as clients push them,
// but an app's name can change and a destroyed app's name can be taken
// again. The owners file records which app (by id) the repositories under
// each name belong to, so that Reconcile can move them with a rename and
// remove them with a destroy, and so that a request never reaches another
// app's repositories under a reused name: a request whose app id differs
// from the recorded owner reconciles first.
type owners struct {
	path string
	mu   sync.Mutex
	m    map[string]string // app name -> app id
}

// ownersFile is the owners' file, beside the storage.
const ownersFile = "owners.json"

func loadOwners(dir string) (*owners, error) {
	o := &owners{path: filepath.Join(dir, ownersFile), m: map[string]string{}}
	b, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: owners: %w", err)
	}
	if err := json.Unmarshal(b, &o.m); err != nil {
		return nil, fmt.Errorf("registry: owners %s: %w", o.path, err)
	}
	return o, nil
}

// save writes the owners durably; with mu held.
func (o *owners) save() error {
	b, err := json.Marshal(o.m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(o.path, b); err != nil {
		return fmt.Errorf("registry: owners: %w", err)
	}
	return nil
}

// own makes sure that the repositories under app belong to the app with
// id before a request uses them: it records the owner of a name used for
// the first time, and reconciles when the recorded owner is another app
// (a rename or a destroy whose event this registry missed).
func (r *Registry) own(ctx context.Context, app, id string) error {
	r.owners.mu.Lock()
	have := r.owners.m[app]
	if have == id {
		r.owners.mu.Unlock()
		return nil
	}
	if have == "" {
		r.owners.m[app] = id
		err := r.owners.save()
		r.owners.mu.Unlock()
		return err
	}
	r.owners.mu.Unlock()
	if err := r.Reconcile(ctx); err != nil {
		return err
	}
	return r.own(ctx, app, id) // the name is now free or id's
}

// claim records the live app named app as the owner of its repositories,
// for writes that do not come through a request (Publish): without an
// owner, Reconcile would take them for a destroyed app's after a rename.
// A name no live app has is left unrecorded, as before.
func (r *Registry) claim(ctx context.Context, app string) error {
	apps, err := r.cfg.Accounts.Apps(ctx)
	if err != nil {
		return err
	}
	for id, name := range apps {
		if name == app {
			return r.own(ctx, app, id)
		}
	}
	return nil
}

// Reconcile brings the repositories in line with the apps that exist: an
// app's repositories follow its renames, and a destroyed app's are removed
// (NAME_UNKNOWN at once; the next GC collects their blobs). Repositories
// from before the owners file are kept for the live app of their name.
// Call it at start and after renames and destroys; it is idempotent and
// safe to repeat after a crash.
func (r *Registry) Reconcile(ctx context.Context) error {
	// Listed before the lock: what is pushed meanwhile belongs to a live
	// app, whose claim own records.
	apps, err := r.cfg.Accounts.Apps(ctx)
	if err != nil {
		return fmt.Errorf("registry: reconcile: %w", err)
	}
	byName := make(map[string]string, len(apps))
	for id, name := range apps {
		byName[name] = id
	}
	r.gc.Lock() // no push or GC is half-way through a repository
	defer r.gc.Unlock()
	r.owners.mu.Lock()
	defer r.owners.mu.Unlock()
	dir := r.repositoriesDir()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("registry: reconcile: %w", err)
	}
	// Names whose repositories move go aside first under their owner's
	// id, so that two apps swapping names never meet.
	moving := map[string]string{} // aside dir -> new name
	for _, e := range es {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		if id, ok := strings.CutPrefix(name, asidePrefix); ok { // a reconcile interrupted by a crash
			if to, live := apps[id]; live {
				moving[name] = to
			} else if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("registry: reconcile: %w", err)
			}
			continue
		}
		if !appName.MatchString(name) {
			continue
		}
		id, owned := r.owners.m[name]
		if !owned {
			if id, owned = byName[name]; owned { // from before the owners file
				r.owners.m[name] = id
				continue
			}
		}
		to, live := apps[id]
		switch {
		case !live:
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("registry: removing the images of destroyed app %s: %w", name, err)
			}
			r.log.Info("registry: removed the images of a destroyed app", "app", name)
			delete(r.owners.m, name)
		case to != name:
			aside := asidePrefix + id
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, aside)); err != nil {
				return fmt.Errorf("registry: moving %s's images: %w", name, err)
			}
			moving[aside] = to
			delete(r.owners.m, name)
		}
	}
	for aside, to := range moving {
		dst := filepath.Join(dir, to)
		if _, err := os.Stat(dst); err == nil {
			// Pushed under the new name before the move: the newer
			// pushes win; the older images go.
			r.log.Warn("registry: an app's images under its old name were dropped: it already has images under its new name", "app", to)
			if err := os.RemoveAll(filepath.Join(dir, aside)); err != nil {
				return fmt.Errorf("registry: reconcile: %w", err)
			}
		} else if err := os.Rename(filepath.Join(dir, aside), dst); err != nil {
			return fmt.Errorf("registry: moving images to %s: %w", to, err)
		} else {
			r.log.Info("registry: moved a renamed app's images", "app", to)
		}
		r.owners.m[to] = byName[to]
	}
	for name, id := range r.owners.m { // owners of names with no repositories left
		if apps[id] != name {
			delete(r.owners.m, name)
		}
	}
	return r.owners.save()
}

// asidePrefix names a renamed app's repositories while Reconcile moves
// them; it is not an app name, so no request reaches them.
const asidePrefix = ".moving-"
