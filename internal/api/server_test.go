package api

import (
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// route is one endpoint, with {app} standing for the test app, and a body
// that would succeed if the caller had access.
type route struct {
	method, path string
	body         any
	appScoped    bool
	write        bool
}

// allRoutes lists every endpoint of routes.go. TestRoutesTableIsComplete
// keeps it in step with the source.
func allRoutes() []route {
	return []route{
		{"POST", "/oauth/authorizations", map[string]any{"description": "x"}, false, true},
		{"GET", "/oauth/authorizations", nil, false, false},
		{"GET", "/oauth/authorizations/~", nil, false, false},
		{"DELETE", "/oauth/authorizations/~", nil, false, true},
		{"DELETE", "/oauth/sessions/~", nil, false, false},
		{"GET", "/account", nil, false, false},
		{"GET", "/users/~", nil, false, false},
		{"GET", "/account/rate-limits", nil, false, false},
		{"POST", "/accounts", map[string]any{"email": "new@example.com"}, false, true},

		{"POST", "/apps", map[string]any{"name": "brand-new"}, false, true},
		{"GET", "/apps", nil, false, false},
		{"GET", "/users/~/apps", nil, false, false},
		{"GET", "/apps/{app}", nil, true, false},
		{"PATCH", "/apps/{app}", map[string]any{"maintenance": true}, true, true},
		{"DELETE", "/apps/{app}", nil, true, true},
		{"GET", "/apps/{app}/collaborators", nil, true, false},
		{"GET", "/apps/{app}/addons", nil, true, false},
		{"GET", "/apps/{app}/dynos", nil, true, false},
		{"GET", "/apps/{app}/dynos/web.1", nil, true, false},
		{"POST", "/apps/{app}/dynos", map[string]any{"command": "echo hi", "attach": false}, true, true},
		{"DELETE", "/apps/{app}/dynos", nil, true, false},
		{"DELETE", "/apps/{app}/dynos/web.1", nil, true, false},
		{"DELETE", "/apps/{app}/formations/web", nil, true, false},
		{"POST", "/apps/{app}/dynos/web.1/actions/stop", nil, true, false},
		{"POST", "/apps/{app}/formations/web/actions/stop", nil, true, false},

		{"GET", "/apps/{app}/config-vars", nil, true, false},
		{"PATCH", "/apps/{app}/config-vars", map[string]any{"FOO": "bar"}, true, true},
		{"GET", "/apps/{app}/releases", nil, true, false},
		{"POST", "/apps/{app}/releases", map[string]any{"release": "1"}, true, true},
		{"GET", "/apps/{app}/releases/1", nil, true, false},
		{"GET", "/apps/{app}/releases/1/config-vars", nil, true, false},

		{"GET", "/apps/{app}/formation", nil, true, false},
		{"PATCH", "/apps/{app}/formation", map[string]any{"updates": []any{map[string]any{"type": "web", "quantity": 2}}}, true, true},
		{"GET", "/apps/{app}/formation/web", nil, true, false},
		{"PATCH", "/apps/{app}/formation/web", map[string]any{"quantity": 2}, true, true},

		{"GET", "/apps/{app}/features", nil, true, false},
		{"GET", "/apps/{app}/features/preboot", nil, true, false},
		{"PATCH", "/apps/{app}/features/preboot", map[string]any{"enabled": true}, true, true},

		{"GET", "/regions", nil, false, false},
		{"GET", "/regions/us", nil, false, false},
		{"GET", "/stacks", nil, false, false},
		{"GET", "/stacks/container", nil, false, false},
		{"GET", "/dyno-sizes", nil, false, false},
		{"GET", "/dyno-sizes/Standard-1X", nil, false, false},
		{"GET", "/apps/{app}/available-dyno-sizes", nil, true, false},

		{"POST", "/apps/{app}/log-sessions", map[string]any{"lines": 10}, true, true},
		{"POST", "/apps/{app}/log-input", "", true, false},

		{"POST", "/apps/{app}/log-drains", map[string]any{"url": "syslog://logs.example.com:514"}, true, true},
		{"GET", "/apps/{app}/log-drains", nil, true, false},
		{"GET", "/apps/{app}/log-drains/~", nil, true, false},
		{"DELETE", "/apps/{app}/log-drains/~", nil, true, true},
		{"GET", "/apps/{app}/domains", nil, true, false},
		{"POST", "/apps/{app}/domains", map[string]any{"hostname": "www.example.com"}, true, true},
		{"GET", "/apps/{app}/domains/{app}.localhost", nil, true, false},
		{"PATCH", "/apps/{app}/domains/~", map[string]any{"sni_endpoint": nil}, true, true},
		{"DELETE", "/apps/{app}/domains/~", nil, true, true},
		{"GET", "/apps/{app}/sni-endpoints", nil, true, false},
		{"POST", "/apps/{app}/sni-endpoints", map[string]any{"certificate_chain": "x", "private_key": "y"}, true, true},
		{"GET", "/apps/{app}/sni-endpoints/~", nil, true, false},
		{"PATCH", "/apps/{app}/sni-endpoints/~", map[string]any{"certificate_chain": "x", "private_key": "y"}, true, true},
		{"DELETE", "/apps/{app}/sni-endpoints/~", nil, true, true},
		{"POST", "/apps/{app}/acm", nil, true, true},
		{"PATCH", "/apps/{app}/acm", map[string]any{"acm_refresh": true}, true, true},
		{"DELETE", "/apps/{app}/acm", nil, true, true},
		{"POST", "/apps/{app}/builds", map[string]any{"source_blob": map[string]any{"url": "http://127.0.0.1:1/src.tgz"}}, true, true},
		{"GET", "/apps/{app}/builds", nil, true, false},
		{"GET", "/apps/{app}/builds/~", nil, true, false},
		{"DELETE", "/apps/{app}/builds/~", nil, true, true},
		{"DELETE", "/apps/{app}/build-cache", nil, true, true},
		{"POST", "/apps/{app}/sources", nil, true, true},
		{"PUT", "/stacks/container/rootfs", "", false, true},
		{"GET", "/skiff/router/table", nil, false, false},
		{"GET", "/skiff/router/acme-challenges/~", nil, false, false},
		{"POST", "/skiff/router/logs", map[string]any{"apps": map[string]any{}}, false, true},
	}
}

// TestRoutesTableIsComplete fails when routes.go gains an endpoint that
// allRoutes (and so the auth, access and shape tests) does not cover.
func TestRoutesTableIsComplete(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?:handle|handlePublic|handleRouter|HandleFunc)\("([A-Z]+) ([^"]+)"`)
	norm := func(p string) string {
		p = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(p, "*")
		return strings.NewReplacer("/~", "/*", "/1", "/*", "/web.1", "/*", "/web", "/*", "/preboot", "/*", "/us", "/*",
			"/container", "/*", "/Standard-1X", "/*", ".localhost", "").Replace(p)
	}
	var inSource, inTable []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		if m[2] == "/logstream/{id}" || strings.HasPrefix(m[2], "/build-sources/") || m[2] == "/build-output/{key}" {
			continue // authenticated by its URL's own credential: logs_test.go, internal/build
		}
		inSource = append(inSource, m[1]+" "+norm(m[2]))
	}
	for _, r := range allRoutes() {
		inTable = append(inTable, r.method+" "+norm(r.path))
	}
	sort.Strings(inSource)
	sort.Strings(inTable)
	if strings.Join(inSource, "\n") != strings.Join(inTable, "\n") {
		t.Errorf("routes.go and allRoutes differ:\nsource:\n%s\n\ntable:\n%s", strings.Join(inSource, "\n"), strings.Join(inTable, "\n"))
	}
}

func TestAuthRequiredEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "authapp")
	before := e.dump()
	for _, rt := range allRoutes() {
		path := strings.ReplaceAll(rt.path, "{app}", "authapp")
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				hdr  []string
			}{
				{"missing", nil},
				{"malformed", []string{"Authorization", "Bearer"}},
				{"unknown skf token", []string{"Authorization", "Bearer skf_" + strings.Repeat("0", 64)}},
				{"garbage token", []string{"Authorization", "Bearer not-a-token"}},
				{"wrong scheme", []string{"Authorization", "Token " + e.admin.Token}},
				{"basic with a wrong token", []string{"Authorization", "Basic OmJhZA=="}}, // ":bad"
			} {
				r := e.do(rt.method, path, "", rt.body, tc.hdr...)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s: got %s, want 401", tc.name, r)
					continue
				}
				checkError(t, r, http.StatusUnauthorized, "unauthorized")
			}
		})
	}
	e.unchanged(before)
}

func TestOtherAccountsAppIsForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "adminapp")
	e.deploy(e.admin.Token, "adminapp", "web")
	e.drain()
	before := e.dump()
	for _, rt := range allRoutes() {
		if !rt.appScoped {
			continue
		}
		path := strings.ReplaceAll(rt.path, "{app}", "adminapp")
		r := e.do(rt.method, path, e.bob.Token, rt.body)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			checkError(t, r, http.StatusForbidden, "forbidden")
		})
	}
	e.unchanged(before)
	if got := e.audit(); len(got) != 0 {
		t.Errorf("refused requests published events: %q", got)
	}
}

func TestUnknownAppIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "realapp")
	before := e.dump()
	for _, ident := range []string{"no-such-app", "00000000-0000-4000-8000-000000000000"} {
		for _, rt := range allRoutes() {
			if !rt.appScoped {
				continue
			}
			path := strings.ReplaceAll(rt.path, "{app}", ident)
			t.Run(ident+" "+rt.method+" "+rt.path, func(t *testing.T) {
				checkError(t, e.do(rt.method, path, e.admin.Token, rt.body), http.StatusNotFound, "not_found")
			})
		}
	}
	e.unchanged(before)
}

func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "jsonapp")
	e.deploy(e.admin.Token, "jsonapp", "web")
	before := e.dump()
	writes := []struct{ method, path string }{
		{"POST", "/apps"},
		{"PATCH", "/apps/jsonapp"},
		{"PATCH", "/apps/jsonapp/config-vars"},
		{"POST", "/apps/jsonapp/releases"},
		{"PATCH", "/apps/jsonapp/formation"},
		{"PATCH", "/apps/jsonapp/formation/web"},
		{"PATCH", "/apps/jsonapp/features/preboot"},
		{"POST", "/accounts"},
		{"POST", "/oauth/authorizations"},
	}
	bodies := map[string]string{
		"truncated":      `{"name": `,
		"not json":       `name=foo`,
		"trailing comma": `{"a": "b",}`,
		"array":          `["a"]`,
		"string":         `"hello"`,
		"two objects":    `{} {}`,
	}
	for _, w := range writes {
		for name, body := range bodies {
			t.Run(w.method+" "+w.path+" "+name, func(t *testing.T) {
				checkError(t, e.do(w.method, w.path, e.admin.Token, body), http.StatusBadRequest, "bad_request")
			})
		}
	}
	e.unchanged(before)
}

func TestWrongTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "typeapp")
	e.deploy(e.admin.Token, "typeapp", "web")
	before := e.dump()
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/apps", `{"name": 5}`},
		{"POST", "/apps", `{"name": ["a"]}`},
		{"POST", "/apps", `{"region": true}`},
		{"PATCH", "/apps/typeapp", `{"maintenance": "yes"}`},
		{"PATCH", "/apps/typeapp", `{"name": 12}`},
		{"PATCH", "/apps/typeapp/config-vars", `{"FOO": 1}`},
		{"PATCH", "/apps/typeapp/config-vars", `{"FOO": true}`},
		{"PATCH", "/apps/typeapp/config-vars", `{"FOO": {"a": "b"}}`},
		{"PATCH", "/apps/typeapp/config-vars", `{"OK": "fine", "FOO": ["x"]}`},
		{"POST", "/apps/typeapp/releases", `{"release": 3}`},
		{"PATCH", "/apps/typeapp/formation", `{"updates": "web=2"}`},
		{"PATCH", "/apps/typeapp/formation", `{"updates": [{"type": 1, "quantity": 2}]}`},
		{"PATCH", "/apps/typeapp/formation", `{"updates": [{"type": "web", "quantity": true}]}`},
		{"PATCH", "/apps/typeapp/formation", `{"updates": [{"type": "web", "size": 2}]}`},
		{"PATCH", "/apps/typeapp/formation/web", `{"quantity": {"n": 2}}`},
		{"PATCH", "/apps/typeapp/formation/web", `{"dyno_size": 7}`},
		{"PATCH", "/apps/typeapp/features/preboot", `{"enabled": "yes"}`},
		{"POST", "/accounts", `{"email": 5}`},
		{"POST", "/oauth/authorizations", `{"expires_in": "soon"}`},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			checkError(t, e.do(tc.method, tc.path, e.admin.Token, tc.body), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	e.unchanged(before)
}

func TestRequestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "bigbody")
	before := e.dump()
	body := `{"A": "` + strings.Repeat("x", 1<<20) + `"}`
	checkError(t, e.do("PATCH", "/apps/bigbody/config-vars", e.admin.Token, body), http.StatusRequestEntityTooLarge, "request_entity_too_large")
	e.unchanged(before)
}

func TestAcceptHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		accept string
		ok     bool
	}{
		{acceptV3, true},
		{"application/vnd.heroku+json; version=3.sdk", true},
		{acceptDocker, true},
		{"application/vnd.heroku+json; version=3.variant-x", true},
		{"application/json", true},
		{"*/*", true},
		{"", true}, // curl and browsers are served version 3
		{"application/vnd.heroku+json; version=2", false},
		{"application/vnd.heroku+json; version=1", false},
		{"application/vnd.heroku+json; version=30", false},
		{"application/json, application/vnd.heroku+json; version=2", false},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			r := e.do("GET", "/account", e.admin.Token, nil, "Accept", tc.accept)
			if tc.ok {
				if r.Status != http.StatusOK {
					t.Errorf("got %s, want 200", r)
				}
				checkRequestID(t, r)
				return
			}
			checkError(t, r, http.StatusNotAcceptable, "not_acceptable")
		})
	}
	// Version checks come before authentication and routing, and a refused
	// write changes nothing.
	before := e.dump()
	checkError(t, e.do("POST", "/apps", "", map[string]any{"name": "v2app"}, "Accept", "application/vnd.heroku+json; version=2"),
		http.StatusNotAcceptable, "not_acceptable")
	e.unchanged(before)
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/"},
		{"PUT", "/apps"},
		{"DELETE", "/account"},
		{"POST", "/apps/x/y/z"},
		{"GET", "/apps/x/releases/1/slug"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			checkError(t, e.do(tc.method, tc.path, e.admin.Token, nil), http.StatusNotFound, "not_found")
			// Unauthenticated too: the answer is still Heroku's JSON.
			checkError(t, e.do(tc.method, tc.path, "", nil), http.StatusNotFound, "not_found")
		})
	}
}

func TestRequestIDIsUniquePerResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seen := map[string]bool{}
	for _, r := range []*response{
		e.do("GET", "/account", e.admin.Token, nil),
		e.do("GET", "/account", e.admin.Token, nil),
		e.do("GET", "/account", "", nil),
		e.do("GET", "/nowhere", "", nil),
		e.do("GET", "/account", e.admin.Token, nil, "Accept", "application/vnd.heroku+json; version=2"),
		e.do("POST", "/apps", e.admin.Token, "{"),
		e.do("GET", "/apps/missing", e.admin.Token, nil),
		e.do("GET", "/apps", e.admin.Token, nil, "Range", "bogus ..; max=1"),
	} {
		checkRequestID(t, r)
		id := r.Header.Get("Request-Id")
		if seen[id] {
			t.Errorf("Request-Id %s repeated", id)
		}
		seen[id] = true
	}
}

func TestMethodOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "override")

	// POST + X-Http-Method-Override: PATCH is a PATCH.
	r := e.must(http.StatusOK, "POST", "/apps/override/config-vars", e.admin.Token, `{"FOO": "bar"}`, "X-Http-Method-Override", "PATCH")
	if got := decodeAs[map[string]string](t, r); got["FOO"] != "bar" {
		t.Errorf("config after override = %v", got)
	}
	// Lower case works too.
	e.must(http.StatusOK, "POST", "/apps/override", e.admin.Token, `{"maintenance": true}`, "X-Http-Method-Override", "patch")
	if app := decodeAs[appJSON](t, e.must(http.StatusOK, "GET", "/apps/override", e.admin.Token, nil)); !app.Maintenance {
		t.Errorf("maintenance not enabled through the override")
	}
	// DELETE through POST.
	e.must(http.StatusOK, "POST", "/apps/override", e.admin.Token, nil, "X-Http-Method-Override", "DELETE")
	checkError(t, e.do("GET", "/apps/override", e.admin.Token, nil), http.StatusNotFound, "not_found")

	// Only POST may be overridden: a GET stays a GET.
	e.createApp(e.admin.Token, "override2")
	e.must(http.StatusOK, "GET", "/apps/override2", e.admin.Token, nil, "X-Http-Method-Override", "DELETE")
	e.must(http.StatusOK, "GET", "/apps/override2", e.admin.Token, nil)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.RateLimit = 5; c.RateRefill = 1e-9 }))
	remaining := func(t *testing.T, token string) int {
		t.Helper()
		r := e.must(http.StatusOK, "GET", "/account/rate-limits", token, nil)
		return decodeAs[map[string]int](t, r)["remaining"]
	}
	if got := remaining(t, e.admin.Token); got != 5 {
		t.Fatalf("remaining at start = %d, want 5", got)
	}
	for i := 4; i >= 2; i-- {
		r := e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil)
		if got := r.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(i) {
			t.Errorf("RateLimit-Remaining = %q, want %d", got, i)
		}
	}
	// Asking costs nothing.
	for range 3 {
		if got := remaining(t, e.admin.Token); got != 2 {
			t.Errorf("remaining = %d, want 2", got)
		}
	}
	e.must(http.StatusOK, "GET", "/apps", e.admin.Token, nil)
	e.must(http.StatusCreated, "POST", "/apps", e.admin.Token, map[string]any{"name": "lastone"})
	before := e.dump()
	for range 2 {
		r := e.do("POST", "/apps", e.admin.Token, map[string]any{"name": "toomany"})
		checkError(t, r, http.StatusTooManyRequests, "rate_limit")
		if got := r.Header.Get("RateLimit-Remaining"); got != "0" {
			t.Errorf("RateLimit-Remaining on 429 = %q, want 0", got)
		}
	}
	e.unchanged(before)
	if got := remaining(t, e.admin.Token); got != 0 {
		t.Errorf("remaining = %d, want 0", got)
	}
	// Buckets are per account.
	r := e.must(http.StatusOK, "GET", "/account", e.bob.Token, nil)
	if got := r.Header.Get("RateLimit-Remaining"); got != "4" {
		t.Errorf("bob's RateLimit-Remaining = %q, want 4", got)
	}
}

func TestRateLimitRefills(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	e := newEnv(t, withClock(clock), withConfig(func(c *Config) { c.RateLimit = 2; c.RateRefill = 60 })) // one a second
	e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil)
	e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil)
	checkError(t, e.do("GET", "/account", e.admin.Token, nil), http.StatusTooManyRequests, "rate_limit")
	clock.Advance(time.Second)
	e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil)
	checkError(t, e.do("GET", "/account", e.admin.Token, nil), http.StatusTooManyRequests, "rate_limit")
	clock.Advance(time.Hour) // never more than the bucket holds
	r := e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil)
	if got := r.Header.Get("RateLimit-Remaining"); got != "1" {
		t.Errorf("RateLimit-Remaining after a long pause = %q, want 1", got)
	}
}

func TestJSONResponses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *envOpts) { o.cfg.Dynos = &fakeDynos{} })
	e.createApp(e.admin.Token, "shapes")
	for _, rt := range allRoutes() {
		if rt.write {
			continue
		}
		path := strings.ReplaceAll(rt.path, "{app}", "shapes")
		if strings.Contains(path, "formation/web") || strings.Contains(path, "/builds/") {
			continue // the app has no process types or builds yet
		}
		if strings.HasSuffix(path, "/log-input") {
			continue // not JSON: see TestLogInput
		}
		if strings.Contains(path, "/log-drains/") {
			continue // the app has no drain yet: see TestDrains
		}
		if strings.HasSuffix(path, "/sni-endpoints/~") {
			continue // the app has no certificate yet: see domains_test.go
		}
		if strings.HasPrefix(path, "/skiff/router/") {
			continue // for routers, not the CLI: see TestRouterEndpoints
		}
		want := http.StatusOK
		if strings.Contains(path, "/dynos") && rt.method != "GET" || strings.Contains(path, "/formations/") {
			want = http.StatusAccepted // restarts and stops are asynchronous
		}
		t.Run(rt.method+" "+path, func(t *testing.T) {
			r := e.must(want, rt.method, path, e.admin.Token, nil)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if r.Header.Get("Next-Range") != "" {
				t.Errorf("unexpected Next-Range %q", r.Header.Get("Next-Range"))
			}
		})
	}
}
