package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/rendezvous"
)

// fakeDynos stands in for the dyno manager: every app runs web.1, and
// restarts are recorded.
type fakeDynos struct {
	mu       sync.Mutex
	restarts []string
	oneOff   dyno.OneOff // the last one run
}

func (f *fakeDynos) Dynos(appID string) []dyno.Info {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return []dyno.Info{{ID: "0f1e2d3c-0000-4000-8000-000000000001", AppID: appID, Name: "web.1", Type: "web", Size: "Standard-1X",
		State: dyno.StateUp, Command: "/app", ReleaseID: "r1", Release: 3, CreatedAt: t, UpdatedAt: t}}
}

func (f *fakeDynos) Restart(appID, typ, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if (typ != "" && typ != "web") || (name != "" && name != "web.1") {
		return 0, fmt.Errorf("no such dyno")
	}
	f.restarts = append(f.restarts, typ+"/"+name)
	return 1, nil
}

func (f *fakeDynos) Stop(appID, typ, name string) (int, error) {
	n, err := f.Restart(appID, typ, name)
	if err == nil {
		f.mu.Lock()
		f.restarts[len(f.restarts)-1] = "stop:" + f.restarts[len(f.restarts)-1]
		f.mu.Unlock()
	}
	return n, err
}

func (f *fakeDynos) RunOneOff(ctx context.Context, appID string, o dyno.OneOff) (dyno.Info, error) {
	f.mu.Lock()
	f.oneOff = o
	f.mu.Unlock()
	if o.Size == "Huge" {
		return dyno.Info{}, fmt.Errorf("%w: unknown dyno size %q", dyno.ErrOneOff, o.Size)
	}
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return dyno.Info{ID: "0f1e2d3c-0000-4000-8000-000000000002", AppID: appID, Name: "run.4242", Type: "run", Size: "Standard-1X",
		State: dyno.StateStarting, Command: o.Command, ReleaseID: "r1", Release: 3, CreatedAt: t, UpdatedAt: t}, nil
}

func TestOneOffDynos(t *testing.T) {
	t.Parallel()
	fd := &fakeDynos{}
	e := newEnv(t, func(o *envOpts) { o.cfg.Dynos = fd })
	e.createApp(e.admin.Token, "oneoff")
	d := decodeAs[map[string]any](t, e.must(http.StatusCreated, "POST", "/apps/oneoff/dynos", e.admin.Token,
		map[string]any{"command": "rake db:migrate", "attach": false, "env": map[string]string{"TERM": "xterm"}}))
	if d["name"] != "run.4242" || d["type"] != "run" || d["command"] != "rake db:migrate" || d["state"] != "starting" {
		t.Errorf("one-off dyno = %v", d)
	}
	e.must(http.StatusCreated, "POST", "/apps/oneoff/dynos", e.admin.Token, map[string]any{"command": "x", "time_to_live": 90})
	fd.mu.Lock()
	if fd.oneOff.TTL != 90*time.Second {
		t.Errorf("time_to_live 90 reached the dyno manager as %s", fd.oneOff.TTL)
	}
	fd.mu.Unlock()
	for _, tc := range []struct {
		body   any
		status int
		id     string
	}{
		{map[string]any{"command": "bash", "attach": true}, 422, "invalid_params"},
		{map[string]any{"attach": false}, 422, "invalid_params"},
		{map[string]any{"command": "  "}, 422, "invalid_params"},
		{map[string]any{"command": "x", "size": "Huge"}, 422, "invalid_params"},
		{map[string]any{"command": "x", "time_to_live": 0}, 422, "invalid_params"},
		{map[string]any{"command": "x", "time_to_live": 86401}, 422, "invalid_params"},
		{map[string]any{"command": "x", "time_to_live": "soon"}, 422, "invalid_params"},
		{map[string]any{"command": 5}, 422, "invalid_params"},
		{`{"command":`, 400, "bad_request"},
	} {
		checkError(t, e.do("POST", "/apps/oneoff/dynos", e.admin.Token, tc.body), tc.status, tc.id)
	}
	checkError(t, e.do("POST", "/apps/oneoff/dynos", e.bob.Token, map[string]any{"command": "x"}), http.StatusForbidden, "forbidden")

	none := newEnv(t) // a server without dynos
	none.createApp(none.admin.Token, "nodynos")
	checkError(t, none.do("POST", "/apps/nodynos/dynos", none.admin.Token, map[string]any{"command": "x"}), 422, "invalid_params")
}

// TestAttachedOneOff: `heroku run` gets an attach_url of the rendezvous
// service whose session is the dyno's; the env may carry numbers.
func TestAttachedOneOff(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rdv, err := rendezvous.New(rendezvous.Config{Listener: ln,
		Certificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDynos{}
	e := newEnv(t, func(o *envOpts) { o.cfg.Dynos, o.cfg.Rendezvous = fd, rdv })
	e.createApp(e.admin.Token, "attached")
	d := decodeAs[map[string]any](t, e.must(http.StatusCreated, "POST", "/apps/attached/dynos", e.admin.Token,
		map[string]any{"command": "bash", "attach": true, "force_no_tty": true,
			"env": map[string]any{"TERM": "xterm", "COLUMNS": 132, "LINES": 43}}))
	url, _ := d["attach_url"].(string)
	if !regexp.MustCompile(`^rendezvous://127\.0\.0\.1:\d+/[0-9a-f]{32}$`).MatchString(url) || d["name"] != "run.4242" {
		t.Errorf("attached dyno = %v", d)
	}
	fd.mu.Lock()
	o := fd.oneOff
	fd.mu.Unlock()
	if o.Attach == nil || !o.NoTTY || o.Env["COLUMNS"] != "132" || o.Env["LINES"] != "43" || o.Env["TERM"] != "xterm" {
		t.Errorf("one-off = %+v", o)
	}
	// A one-off that cannot run gives up its session.
	checkError(t, e.do("POST", "/apps/attached/dynos", e.admin.Token, map[string]any{"command": "x", "attach": true, "size": "Huge"}), 422, "invalid_params")
	fd.mu.Lock()
	wait := fd.oneOff.Attach
	fd.mu.Unlock()
	if _, err := wait(context.Background()); !errors.Is(err, rendezvous.ErrClosed) {
		t.Errorf("session of a failed one-off: %v, want closed", err)
	}
	checkError(t, e.do("POST", "/apps/attached/dynos", e.admin.Token, map[string]any{"command": "x", "env": map[string]any{"A": true}}), 422, "invalid_params")
}

func TestDynoEndpoints(t *testing.T) {
	t.Parallel()
	fd := &fakeDynos{}
	e := newEnv(t, func(o *envOpts) { o.cfg.Dynos = fd })
	e.createApp(e.admin.Token, "dynoapp")

	list := decodeAs[[]map[string]any](t, e.must(http.StatusOK, "GET", "/apps/dynoapp/dynos", e.admin.Token, nil))
	if len(list) != 1 || list[0]["name"] != "web.1" || list[0]["state"] != "up" || list[0]["size"] != "Standard-1X" ||
		list[0]["release"].(map[string]any)["version"] != float64(3) || list[0]["app"].(map[string]any)["name"] != "dynoapp" {
		t.Errorf("dynos = %v", list)
	}
	one := decodeAs[map[string]any](t, e.must(http.StatusOK, "GET", "/apps/dynoapp/dynos/web.1", e.admin.Token, nil))
	if one["type"] != "web" || one["updated_at"] != "2026-01-02T03:04:05Z" {
		t.Errorf("dyno = %v", one)
	}
	checkError(t, e.do("GET", "/apps/dynoapp/dynos/worker.9", e.admin.Token, nil), http.StatusNotFound, "not_found")

	for _, tc := range []struct{ method, path, want string }{
		{"DELETE", "/apps/dynoapp/dynos", "/"},
		{"DELETE", "/apps/dynoapp/formations/web", "web/"},
		{"DELETE", "/apps/dynoapp/dynos/web.1", "/web.1"},
		{"POST", "/apps/dynoapp/formations/web/actions/stop", "stop:web/"},
		{"POST", "/apps/dynoapp/dynos/web.1/actions/stop", "stop:/web.1"},
	} {
		fd.mu.Lock()
		fd.restarts = nil
		fd.mu.Unlock()
		e.must(http.StatusAccepted, tc.method, tc.path, e.admin.Token, nil)
		fd.mu.Lock()
		if len(fd.restarts) != 1 || fd.restarts[0] != tc.want {
			t.Errorf("%s %s restarted %v, want [%s]", tc.method, tc.path, fd.restarts, tc.want)
		}
		fd.mu.Unlock()
	}
	checkError(t, e.do("DELETE", "/apps/dynoapp/formations/clock", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("POST", "/apps/dynoapp/dynos/web.7/actions/stop", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("DELETE", "/apps/dynoapp/dynos", e.bob.Token, nil), http.StatusForbidden, "forbidden")
}
