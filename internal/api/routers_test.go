package api

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeRouters stands in for the server's routing hub, certificate manager
// and log pipeline.
type fakeRouters struct {
	mu      sync.Mutex
	body    string
	etag    string
	changed chan struct{}
	lines   map[string][]string
}

func (f *fakeRouters) Table() ([]byte, string, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []byte(f.body), f.etag, f.changed
}

func (f *fakeRouters) set(body, etag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag = body, etag
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeRouters) Challenge(token string) (string, bool) {
	if token == "tok" {
		return "tok.thumbprint", true
	}
	return "", false
}

func (f *fakeRouters) Log(appID, line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines[appID] = append(f.lines[appID], line)
}

func TestRouterEndpoints(t *testing.T) {
	t.Parallel()
	fr := &fakeRouters{body: `{"routes":[]}`, etag: `"v1"`, changed: make(chan struct{}), lines: map[string][]string{}}
	e := newEnv(t, withConfig(func(c *Config) { c.Routers = fr }))

	// Admins only: the table holds every app's private keys.
	for _, rt := range []struct{ method, path string }{
		{"GET", "/skiff/router/table"}, {"GET", "/skiff/router/acme-challenges/tok"}, {"POST", "/skiff/router/logs"},
	} {
		checkError(t, e.do(rt.method, rt.path, e.bob.Token, `{"apps":{}}`), http.StatusForbidden, "forbidden")
	}

	r := e.do("GET", "/skiff/router/table", e.admin.Token, nil)
	if r.Status != 200 || string(r.Body) != `{"routes":[]}` || r.Header.Get("ETag") != `"v1"` {
		t.Fatalf("table: %d %s %q", r.Status, r.Body, r.Header.Get("ETag"))
	}
	// The table the router has: 304 at once without wait.
	if r := e.do("GET", "/skiff/router/table", e.admin.Token, nil, "If-None-Match", `"v1"`); r.Status != 304 {
		t.Fatalf("unchanged: %d", r.Status)
	}
	// With wait, the answer comes when the table changes.
	go func() {
		time.Sleep(50 * time.Millisecond)
		fr.set(`{"routes":[{"app":"shop"}]}`, `"v2"`)
	}()
	r = e.do("GET", "/skiff/router/table?wait=30", e.admin.Token, nil, "If-None-Match", `"v1"`)
	if r.Status != 200 || r.Header.Get("ETag") != `"v2"` || string(r.Body) != `{"routes":[{"app":"shop"}]}` {
		t.Fatalf("long poll: %d %s %q", r.Status, r.Body, r.Header.Get("ETag"))
	}
	checkError(t, e.do("GET", "/skiff/router/table?wait=soon", e.admin.Token, nil), http.StatusBadRequest, "bad_request")

	if r := e.do("GET", "/skiff/router/acme-challenges/tok", e.admin.Token, nil); r.Status != 200 || string(r.Body) != "tok.thumbprint" {
		t.Fatalf("challenge: %d %s", r.Status, r.Body)
	}
	checkError(t, e.do("GET", "/skiff/router/acme-challenges/other", e.admin.Token, nil), http.StatusNotFound, "not_found")

	if r := e.do("POST", "/skiff/router/logs", e.admin.Token, `{"apps":{"a1":["one","two"],"a2":["three"]}}`); r.Status != 204 {
		t.Fatalf("logs: %d %s", r.Status, r.Body)
	}
	checkError(t, e.do("POST", "/skiff/router/logs", e.admin.Token, `{"apps":`), http.StatusBadRequest, "bad_request")
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if !slices.Equal(fr.lines["a1"], []string{"one", "two"}) || !slices.Equal(fr.lines["a2"], []string{"three"}) {
		t.Errorf("lines: %q", fr.lines)
	}
}

func TestRouterEndpointsWithoutRouters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	checkError(t, e.do("GET", "/skiff/router/table", e.admin.Token, nil), http.StatusNotFound, "not_found")
}
