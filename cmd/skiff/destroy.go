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
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sub.Close()
		rm.prune(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.C:
				if e.Kind != platform.EventDestroy {
					continue
				}
				rm.destroyed(e)
				rm.prune(ctx) // also what a lost event left
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// destroyed removes the state of the app e destroyed. The registry's is
// by name, removed at once so that a new app of the same name finds none.
// (Logplex removes the app's history on the event itself.)
func (rm *remover) destroyed(e platform.Event) {
	if rm.reg != nil && e.AppName != "" {
		if err := rm.reg.RemoveApp(e.AppName); err != nil {
			rm.log.Warn("removing a destroyed app's images", "app", e.AppName, "err", err)
		}
	}
	if rm.builds != nil {
		if err := rm.builds.RemoveApp(e.AppID); err != nil {
			rm.log.Warn("removing a destroyed app's build cache and repository", "app", e.AppName, "err", err)
		}
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
	// Listed before the platform is asked: state made after the answer is
	// a live app's.
	var regApps []string
	if rm.reg != nil {
		var err error
		if regApps, err = rm.reg.Apps(); err != nil {
			rm.log.Warn("listing registry repositories", "err", err)
		}
	}
	logApps := rm.logs.Apps()
	live, err := rm.p.LiveState(ctx)
	if err != nil {
		rm.log.Warn("removing destroyed apps' state", "err", err)
		return
	}
	for _, name := range regApps {
		if !live.Names[name] {
			if err := rm.reg.RemoveApp(name); err != nil {
				rm.log.Warn("removing a destroyed app's images", "app", name, "err", err)
			} else {
				rm.log.Info("removed the images of a destroyed app", "app", name)
			}
		}
	}
	for _, id := range logApps {
		if !live.Apps[id] {
			if err := rm.logs.Remove(id); err != nil {
				rm.log.Warn("removing a destroyed app's log history", "app_id", id, "err", err)
			}
		}
	}
}
