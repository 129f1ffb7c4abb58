package platform

import (
	"context"
	"errors"

	"github.com/skiffhq/skiff/internal/store"
)

// AppState is what the dyno manager needs to know of one app to run it:
// its current release, formation and the features that change how it is
// run. It is read without an actor: only the platform's own loops use it.
type AppState struct {
	App       *App
	Release   *Release // the current release: what the dynos run
	Pending   *Release // the newest release, while its release phase has yet to run
	Formation []*store.Formation
	Preboot   bool
	// RuntimeMetrics is the log-runtime-metrics feature: dynos log their
	// load and memory every 20 s.
	RuntimeMetrics bool
	// RouterP2C is the router-p2c feature: the router balances the app's
	// web dynos by power of two choices rather than at random.
	RouterP2C bool
}

// Desired reads the state every app should be running in. An app that is
// absent has been destroyed.
func (p *Platform) Desired(ctx context.Context) ([]*AppState, error) {
	var out []*AppState
	err := p.read(ctx, func(tx *store.Tx) error {
		apps, err := tx.AllApps()
		if err != nil {
			return err
		}
		out = out[:0]
		for _, a := range apps {
			s, err := appState(tx, a)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// DesiredApp reads one app's state; a destroyed app gives (nil, nil).
func (p *Platform) DesiredApp(ctx context.Context, appID string) (*AppState, error) {
	var s *AppState
	err := p.read(ctx, func(tx *store.Tx) error {
		a, err := tx.AppByID(appID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		s, err = appState(tx, a)
		return err
	})
	return s, err
}

func appState(tx *store.Tx, a *App) (*AppState, error) {
	r, err := current(tx, a)
	if err != nil {
		return nil, err
	}
	fs, err := tx.Formations(a.ID)
	if err != nil {
		return nil, err
	}
	feats, err := tx.Features(a.ID)
	if err != nil {
		return nil, err
	}
	s := &AppState{App: a, Release: r, Formation: fs}
	latest, err := tx.LatestRelease(a.ID)
	if err != nil {
		return nil, err
	}
	if latest.Status == "pending" {
		s.Pending = latest
	}
	if f, ok := feats["preboot"]; ok {
		s.Preboot = f.Enabled
	}
	if f, ok := feats["log-runtime-metrics"]; ok {
		s.RuntimeMetrics = f.Enabled
	}
	if f, ok := feats["router-p2c"]; ok {
		s.RouterP2C = f.Enabled
	}
	return s, nil
}
