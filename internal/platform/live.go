package platform

import (
	"context"

	"github.com/skiffhq/skiff/internal/store"
)

// Live is what exists, for the components that keep per-app state outside
// the store (build caches, git repositories, registry repositories, log
// history): whatever they hold for an app or build not listed here belongs
// to a destroyed app and is removed. A component lists its own state
// before it asks, so that state made after the answer is never mistaken
// for a leftover.
type Live struct {
	Apps   map[string]string // app id -> name
	Builds map[string]bool   // build ids
}

// LiveState returns the apps and builds that exist.
func (p *Platform) LiveState(ctx context.Context) (*Live, error) {
	l := &Live{Apps: map[string]string{}}
	err := p.read(ctx, func(tx *store.Tx) error {
		apps, err := tx.AllApps()
		if err != nil {
			return err
		}
		for _, a := range apps {
			l.Apps[a.ID] = a.Name
		}
		l.Builds, err = tx.AllBuildIDs()
		return err
	})
	return l, err
}
