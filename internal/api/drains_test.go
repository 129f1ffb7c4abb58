package api

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"

	"github.com/skiffhq/skiff/internal/platform"
)

var drainToken = regexp.MustCompile(`^d\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDrains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "drained")
	e.drain()
	const https = "https://user:pa%3Ass@logs.example.org/ingest?x=1"
	created := decodeAs[logDrainJSON](t, e.must(http.StatusCreated, "POST", "/apps/drained/log-drains", e.admin.Token, map[string]any{"url": https}))
	if !drainToken.MatchString(created.Token) || created.URL != https || created.App.Name != "drained" || created.Addon != nil {
		t.Fatalf("created drain = %+v", created)
	}
	if evs := e.drain(); len(evs) != 1 || evs[0].Kind != platform.EventDrains {
		t.Errorf("events after adding a drain = %+v, want one drains event", evs)
	}
	for _, ident := range []string{created.ID, created.Token, url.PathEscape(https), url.QueryEscape(https)} {
		got := decodeAs[logDrainJSON](t, e.must(http.StatusOK, "GET", "/apps/drained/log-drains/"+ident, e.admin.Token, nil))
		if got.ID != created.ID {
			t.Errorf("GET by %q = %+v", ident, got)
		}
	}
	list := decodeAs[[]logDrainJSON](t, e.must(http.StatusOK, "GET", "/apps/drained/log-drains?extended=true", e.admin.Token, nil))
	if len(list) != 1 || list[0].Extended == nil || list[0].Extended.DrainID == "" {
		t.Errorf("extended list = %+v", list)
	}

	// Four more fit, the sixth does not.
	for i := range 4 {
		e.must(http.StatusCreated, "POST", "/apps/drained/log-drains", e.admin.Token, map[string]any{"url": "syslog://logs.example.com:" + strconv.Itoa(514+i)})
	}
	before := e.dump()
	for name, body := range map[string]any{
		"sixth":     map[string]any{"url": "syslog+tls://logs.example.com:6514"},
		"duplicate": map[string]any{"url": https},
	} {
		t.Run(name, func(t *testing.T) {
			checkError(t, e.do("POST", "/apps/drained/log-drains", e.admin.Token, body), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	e.unchanged(before)

	// Removal by the encoded URL (as the CLI sends it) and by token.
	gone := decodeAs[logDrainJSON](t, e.must(http.StatusOK, "DELETE", "/apps/drained/log-drains/"+url.PathEscape(https), e.admin.Token, nil))
	if gone.ID != created.ID {
		t.Errorf("deleted %+v, want %s", gone, created.ID)
	}
	checkError(t, e.do("GET", "/apps/drained/log-drains/"+created.Token, e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("DELETE", "/apps/drained/log-drains/"+created.Token, e.admin.Token, nil), http.StatusNotFound, "not_found")
	list = decodeAs[[]logDrainJSON](t, e.must(http.StatusOK, "GET", "/apps/drained/log-drains", e.admin.Token, nil))
	if len(list) != 4 || list[0].Extended != nil {
		t.Fatalf("after removal: %+v", list)
	}
	e.must(http.StatusOK, "DELETE", "/apps/drained/log-drains/"+list[0].Token, e.admin.Token, nil)
	e.must(http.StatusCreated, "POST", "/apps/drained/log-drains", e.admin.Token, map[string]any{"url": https})

	// What the delivery loop reads at start and on each change.
	all, err := e.p.AllDrains(context.Background())
	if err != nil || len(all) != 4 {
		t.Fatalf("AllDrains = %d drains, %v; want 4", len(all), err)
	}
	app, err := e.p.AppDrains(context.Background(), created.App.ID)
	if err != nil || len(app) != 4 || app[3].URL != https {
		t.Fatalf("AppDrains = %+v, %v", app, err)
	}
	e.must(http.StatusOK, "DELETE", "/apps/drained", e.admin.Token, nil)
	if all, err := e.p.AllDrains(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("after the app's destruction AllDrains = %d drains, %v", len(all), err)
	}
}

func TestDrainBadURLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "baddrains")
	before := e.dump()
	for _, u := range []string{
		"", "logs.example.com", "ftp://logs.example.com", "syslog://logs.example.com",
		"syslog://:514", "syslog://u:p@logs.example.com:514", "syslog://logs.example.com:514/path",
		"https://", "https:///path", "http://a b.example.com/", "mailto:a@b.c",
	} {
		t.Run(u, func(t *testing.T) {
			checkError(t, e.do("POST", "/apps/baddrains/log-drains", e.admin.Token, map[string]any{"url": u}), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	checkError(t, e.do("POST", "/apps/baddrains/log-drains", e.admin.Token, map[string]any{"url": 5}), http.StatusUnprocessableEntity, "invalid_params")
	checkError(t, e.do("POST", "/apps/baddrains/log-drains", e.admin.Token, `{"url":`), http.StatusBadRequest, "bad_request")
	e.unchanged(before)
}
