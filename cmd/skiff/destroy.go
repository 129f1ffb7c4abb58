package main

// The removal of destroyed apps' state outside the store: build caches,
// git repositories, uploaded sources, build logs, registry repositories and
// log history. The store deletes the app's rows in the destroy's
// transaction; this removes the rest on the destroy event, and at start
// for apps destroyed while the server was down or half-removed by a crash.

import (
	"context"
	"log/slog"
	"sync"

	"github.com/skiffhq/skiff/internal/api"
	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/registry"
)

// remover removes what destroyed apps leave behind.
type remover struct {
	p      *platform.Platform
	builds *build.Service     // nil without builds
	reg    *registry.Registry // nil without the registry
	logs   *logplex.Logplex
	log    *slog.Logger
}

// startRemover removes leftovers of apps that no longer exist, then the
// state of each app as it is destroyed. The returned stop waits for a
// removal in progress.
func startRemover(ctx context.Context, p *platform.Platform, bus *platform.Bus, builds *build.Service,
	images api.Images, logs *logplex.Logplex, log *slog.Logger) func() {
	rm := &remover{p: p, builds: builds, logs: logs, log: log}
	if r, ok := images.(*releaser); ok {
		rm.reg = r.reg
	}
	sub := bus.Subscribe(256)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Two loops: the registry's part, by name, at once on each event; the
	// rest (which waits for a build of the app in progress) in the
	// background, so that a long build never delays the removal of
	// another app's images past the reuse of its name.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pending []string // app ids destroyed, for the background loop
		wake    = make(chan struct{}, 1)
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.C:
				if e.Kind == platform.EventApp { // perhaps a rename: the repositories follow
					rm.reconcileImages(ctx)
				}
				if e.Kind != platform.EventDestroy {
					continue
				}
				rm.reconcileImages(ctx)
				mu.Lock()
				pending = append(pending, e.AppID)
				mu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		rm.prune(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			mu.Lock()
			ids := pending
			pending = nil
			mu.Unlock()
			for _, id := range ids {
				rm.removeBuilds(ctx, id)
			}
			rm.prune(ctx) // also what a lost event left
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// reconcileImages removes the registry repositories of destroyed apps and
// moves renamed apps' to their new names, at once, so that a new app of
// an old name finds none. (Logplex removes the app's history on the event
// itself.) The registry also reconciles at start, and before serving a
// name whose recorded owner is another app, so a lost event loses nothing.
func (rm *remover) reconcileImages(ctx context.Context) {
	if rm.reg == nil {
		return
	}
	if err := rm.reg.Reconcile(ctx); err != nil && ctx.Err() == nil {
		rm.log.Warn("reconciling registry repositories with the apps", "err", err)
	}
}

// removeBuilds removes a destroyed app's build cache and git repository,
// after a build of the app in progress.
func (rm *remover) removeBuilds(ctx context.Context, appID string) {
	if rm.builds == nil {
		return
	}
	if err := rm.builds.RemoveApp(ctx, appID); err != nil {
		rm.log.Warn("removing a destroyed app's build cache and repository", "app_id", appID, "err", err)
	}
}

// prune removes what is kept for apps that no longer exist.
func (rm *remover) prune(ctx context.Context) {
	if rm.builds != nil {
		if n, err := rm.builds.Prune(ctx); err != nil {
			rm.log.Warn("removing destroyed apps' build state", "err", err)
		} else if n > 0 {
			rm.log.Info("removed destroyed apps' build state", "items", n)
		}
	}
	logApps := rm.logs.Apps() // listed before the platform is asked: state made after the answer is a live app's
	live, err := rm.p.LiveState(ctx)
	if err != nil {
		rm.log.Warn("removing destroyed apps' state", "err", err)
		return
	}
	for _, id := range logApps {
		if live.Apps[id] == "" {
			if err := rm.logs.Remove(id); err != nil {
				rm.log.Warn("removing a destroyed app's log history", "app_id", id, "err", err)
			}
		}
	}
}
