// Package routing keeps the router's table in step with the platform: the
// apps (name, maintenance, default and custom hostnames) and the dyno
// manager's web dynos (which are up and where). It is the router's feed
// inside `skiff server`; the router itself knows nothing of either.
package routing

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/router"
)

// Apps lists every app (platform.Platform does).
type Apps interface {
	Desired(ctx context.Context) ([]*platform.AppState, error)
}

// Dynos lists an app's dynos (dyno.Manager does).
type Dynos interface {
	Dynos(appID string) []dyno.Info
}

// Domains returns every app's custom hostnames, by app id.
type Domains func(ctx context.Context) (map[string][]string, error)

// Feed rebuilds the routing table whenever something it depends on
// changes. A rebuild reads everything afresh: it is cheap next to the
// changes that cause it, and never leaves the table half updated.
type Feed struct {
	Apps       Apps
	Dynos      Dynos // nil: no dynos on this server
	Domains    Domains
	BaseDomain string
	Events     *platform.Bus
	Set        func([]router.Route)
	Log        *slog.Logger
	// Settle groups bursts of changes into one rebuild (default 10 ms);
	// Resync rebuilds anyway this often (default 10 s).
	Settle, Resync time.Duration

	kick chan struct{}
}

// Notify asks for a rebuild soon; it never blocks.
func (f *Feed) Notify(string) {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Init prepares Notify; call it before handing Notify to anyone.
func (f *Feed) Init() {
	f.kick = make(chan struct{}, 1)
}

// Run builds the table now and after every change until ctx ends.
func (f *Feed) Run(ctx context.Context) {
	f.Settle = cmp.Or(f.Settle, 10*time.Millisecond)
	f.Resync = cmp.Or(f.Resync, 10*time.Second)
	if f.Log == nil {
		f.Log = slog.Default()
	}
	var events <-chan platform.Event
	if f.Events != nil {
		sub := f.Events.Subscribe(256)
		defer sub.Close()
		events = sub.C
	}
	tick := time.NewTicker(f.Resync)
	defer tick.Stop()
	f.rebuild(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
		case <-f.kick:
		case <-tick.C:
		}
		// Let a burst (a scale to ten dynos, a release) land first.
		t := time.NewTimer(f.Settle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	drain:
		for {
			select {
			case <-events:
			case <-f.kick:
			default:
				break drain
			}
		}
		f.rebuild(ctx)
	}
}

func (f *Feed) rebuild(ctx context.Context) {
	routes, err := f.Build(ctx)
	if err != nil {
		f.Log.Warn("routing table not rebuilt", "err", err)
		return
	}
	f.Set(routes)
}

// Build makes the routing table: one route per app with its default host
// <app>.<base domain> and its custom domains; its up web dynos as
// backends; how many web dynos are starting or crashed, for H20 and
// H10; and the custom error and maintenance pages of its current
// release's config (ERROR_PAGE_URL, MAINTENANCE_PAGE_URL).
func (f *Feed) Build(ctx context.Context) ([]router.Route, error) {
	apps, err := f.Apps.Desired(ctx)
	if err != nil {
		return nil, err
	}
	var custom map[string][]string
	if f.Domains != nil {
		if custom, err = f.Domains(ctx); err != nil {
			return nil, err
		}
	}
	routes := make([]router.Route, 0, len(apps))
	for _, s := range apps {
		a := s.App
		r := router.Route{AppID: a.ID, App: a.Name, Maintenance: a.Maintenance, Balance: router.BalanceRandom,
			Hosts: append([]string{a.Name + "." + f.BaseDomain}, custom[a.ID]...)}
		if s.RouterP2C {
			r.Balance = router.BalanceP2C
		}
		if s.Release != nil {
			r.ErrorPage = s.Release.Config["ERROR_PAGE_URL"]
			r.MaintenancePage = s.Release.Config["MAINTENANCE_PAGE_URL"]
		}
		if f.Dynos != nil {
			for _, d := range f.Dynos.Dynos(a.ID) {
				if d.Type != "web" {
					continue
				}
				switch {
				case d.State == dyno.StateUp && d.Addr != "":
					r.Backends = append(r.Backends, router.Backend{Name: d.Name, Addr: d.Addr})
				case d.State == dyno.StateStarting || d.State == dyno.StateUp:
					r.Starting++
				case d.State == dyno.StateCrashed:
					r.Crashed++
				}
			}
		}
		// Two dynos may briefly share a name (preboot): keep both.
		slices.SortStableFunc(r.Backends, func(x, y router.Backend) int { return strings.Compare(x.Name, y.Name) })
		routes = append(routes, r)
	}
	return routes, nil
}
