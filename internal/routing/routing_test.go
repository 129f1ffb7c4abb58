package routing

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/router"
	"github.com/skiffhq/skiff/internal/store"
)

type apps []*platform.AppState

func (a apps) Desired(context.Context) ([]*platform.AppState, error) { return a, nil }

type dynos map[string][]dyno.Info

func (d dynos) Dynos(appID string) []dyno.Info { return d[appID] }

func TestBuild(t *testing.T) {
	f := &Feed{
		Apps: apps{
			{App: &store.App{ID: "a1", Name: "shop", Maintenance: true}, Release: &store.Release{Config: map[string]string{
				"ERROR_PAGE_URL": "https://pages.example/error.html", "MAINTENANCE_PAGE_URL": "https://pages.example/maint.html", "OTHER": "x"}}},
			{App: &store.App{ID: "a2", Name: "blog"}, RouterP2C: true},
		},
		Dynos: dynos{
			"a1": {
				{Name: "web.2", Type: "web", State: dyno.StateUp, Addr: "10.0.0.3:5000"},
				{Name: "web.1", Type: "web", State: dyno.StateUp, Addr: "10.0.0.2:5000"},
				{Name: "web.3", Type: "web", State: dyno.StateUp}, // stopping: no longer routed
				{Name: "web.4", Type: "web", State: dyno.StateStarting},
				{Name: "web.5", Type: "web", State: dyno.StateCrashed},
				{Name: "worker.1", Type: "worker", State: dyno.StateUp, Addr: "10.0.0.9:5000"},
			},
		},
		Domains: func(context.Context) (map[string][]string, error) {
			return map[string][]string{"a1": {"www.shop.example"}}, nil
		},
		BaseDomain: "skiff.test",
	}
	got, err := f.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []router.Route{
		{AppID: "a1", App: "shop", Maintenance: true, Balance: router.BalanceRandom,
			Hosts:    []string{"shop.skiff.test", "www.shop.example"},
			Backends: []router.Backend{{Name: "web.1", Addr: "10.0.0.2:5000"}, {Name: "web.2", Addr: "10.0.0.3:5000"}},
			Starting: 2, Crashed: 1,
			ErrorPage: "https://pages.example/error.html", MaintenancePage: "https://pages.example/maint.html"},
		{AppID: "a2", App: "blog", Balance: router.BalanceP2C, Hosts: []string{"blog.skiff.test"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("table\n got %+v\nwant %+v", got, want)
	}
}

// TestNotify: a dyno change reaches the table well within 100 ms.
func TestNotify(t *testing.T) {
	d := dynos{}
	tables := make(chan []router.Route, 10)
	f := &Feed{Apps: apps{{App: &store.App{ID: "a1", Name: "shop"}}}, Dynos: d, BaseDomain: "skiff.test",
		Set: func(r []router.Route) { tables <- r }, Resync: time.Hour}
	f.Init()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	<-tables
	d["a1"] = []dyno.Info{{Name: "web.1", Type: "web", State: dyno.StateUp, Addr: "10.0.0.2:5000"}}
	f.Notify("a1")
	select {
	case r := <-tables:
		if len(r[0].Backends) != 1 {
			t.Errorf("after the change: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no new table after Notify")
	}
}
