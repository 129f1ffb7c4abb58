package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/store"
)

func TestCreateApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) {
		c.WebURL = func(app string) string { return "https://" + app + ".apps.test/" }
		c.GitURL = func(app string) string { return "https://git.apps.test/" + app + ".git" }
	}))
	r := e.must(http.StatusCreated, "POST", "/apps", e.admin.Token, map[string]any{"name": "my-app", "region": "us", "stack": "container"})
	app := decodeAs[appJSON](t, r)
	if app.Name != "my-app" || uuid.Validate(app.ID) != nil || app.Owner.Email != adminEmail || app.Owner.ID != e.admin.ID {
		t.Errorf("created app = %+v", app)
	}
	if app.WebURL != "https://my-app.apps.test/" || app.GitURL != "https://git.apps.test/my-app.git" {
		t.Errorf("urls = %q %q", app.WebURL, app.GitURL)
	}
	if app.Stack.Name != "container" || app.BuildStack.Name != "container" || app.Region.Name != "us" || app.Generation.Name != "cedar" {
		t.Errorf("stack/region/generation = %+v %+v %+v %+v", app.Stack, app.BuildStack, app.Region, app.Generation)
	}
	if app.Maintenance || app.ReleasedAt == nil {
		t.Errorf("maintenance %v, released_at %v", app.Maintenance, app.ReleasedAt)
	}
	// The JSON carries every field the CLI's apps:info reads.
	m := decodeAs[map[string]any](t, r)
	for _, k := range []string{"acm", "archived_at", "build_stack", "created_at", "git_url", "id", "maintenance", "name",
		"owner", "organization", "team", "region", "released_at", "repo_size", "slug_size", "space", "stack", "updated_at", "web_url", "generation"} {
		if _, ok := m[k]; !ok {
			t.Errorf("app JSON lacks %q", k)
		}
	}
	if ts, _ := m["created_at"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(ts) {
		t.Errorf("created_at %q is not ISO 8601 UTC in seconds", ts)
	}

	// v1 and v2, as Heroku creates them.
	rels := e.releases(e.admin.Token, "my-app")
	if len(rels) != 2 || rels[0].Version != 1 || rels[0].Description != "Initial release" ||
		rels[1].Version != 2 || rels[1].Description != "Enable Logplex" {
		t.Fatalf("releases of a new app = %+v", rels)
	}
	if rels[0].Current || !rels[1].Current || rels[1].User.Email != adminEmail || rels[1].Status != "succeeded" {
		t.Errorf("release fields = %+v", rels)
	}
	if cfg := e.config(e.admin.Token, "my-app"); len(cfg) != 0 {
		t.Errorf("new app config = %v", cfg)
	}
	if fs := e.formation(e.admin.Token, "my-app"); len(fs) != 0 {
		t.Errorf("new app formation = %v", fs)
	}
	// Generated names follow Heroku's rules and never repeat.
	seen := map[string]bool{}
	for range 5 {
		a := decodeAs[appJSON](t, e.must(http.StatusCreated, "POST", "/apps", e.bob.Token, nil))
		if !regexp.MustCompile(`^[a-z]+-[a-z]+-\d{5}$`).MatchString(a.Name) || seen[a.Name] {
			t.Errorf("generated name %q", a.Name)
		}
		seen[a.Name] = true
	}
	// An empty JSON object and an explicit null name generate one too.
	e.must(http.StatusCreated, "POST", "/apps", e.bob.Token, `{}`)
	e.must(http.StatusCreated, "POST", "/apps", e.bob.Token, `{"name": null}`)
}

func TestCreateAppErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "taken")
	before := e.dump()
	for _, tc := range []struct {
		name, body string
		status     int
		id         string
	}{
		{"duplicate", `{"name": "taken"}`, 422, "invalid_params"},
		{"duplicate by another account", `{"name": "taken"}`, 422, "invalid_params"},
		{"too short", `{"name": "ab"}`, 422, "invalid_params"},
		{"too long", `{"name": "` + strings.Repeat("a", 31) + `"}`, 422, "invalid_params"},
		{"upper case", `{"name": "MyApp"}`, 422, "invalid_params"},
		{"starts with a digit", `{"name": "1app"}`, 422, "invalid_params"},
		{"starts with a dash", `{"name": "-app"}`, 422, "invalid_params"},
		{"ends with a dash", `{"name": "app-"}`, 422, "invalid_params"},
		{"underscore", `{"name": "my_app"}`, 422, "invalid_params"},
		{"space", `{"name": "my app"}`, 422, "invalid_params"},
		{"dot", `{"name": "my.app"}`, 422, "invalid_params"},
		{"unicode", `{"name": "appé"}`, 422, "invalid_params"},
		{"empty", `{"name": ""}`, 201, ""}, // empty means "generate one", like null
		{"unknown region", `{"name": "okname", "region": "mars"}`, 404, "not_found"},
		{"unknown stack", `{"name": "okname", "stack": "heroku-22"}`, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.admin.Token
			if strings.Contains(tc.name, "another") {
				tok = e.bob.Token
			}
			r := e.do("POST", "/apps", tok, tc.body)
			if tc.status == 201 {
				if r.Status != 201 {
					t.Errorf("got %s", r)
				}
				e.must(http.StatusOK, "DELETE", "/apps/"+decodeAs[appJSON](t, r).Name, tok, nil)
				return
			}
			checkError(t, r, tc.status, tc.id)
		})
	}
	e.unchanged(before)
	// Boundary lengths are fine.
	for _, name := range []string{"abc", "a" + strings.Repeat("b", 28) + "9", "a-1"} {
		e.createApp(e.admin.Token, name)
	}
}

func TestListApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mine := map[string]bool{}
	for _, n := range []string{"admin-one", "admin-two", "admin-three"} {
		e.createApp(e.admin.Token, n)
		mine[n] = true
	}
	e.createApp(e.bob.Token, "bobs-app")
	for _, path := range []string{"/apps", "/users/~/apps", "/users/" + adminEmail + "/apps", "/users/" + e.admin.ID + "/apps"} {
		r := e.must(http.StatusOK, "GET", path, e.admin.Token, nil)
		apps := decodeAs[[]appJSON](t, r)
		if len(apps) != len(mine) {
			t.Errorf("%s: %d apps, want %d", path, len(apps), len(mine))
		}
		for _, a := range apps {
			if !mine[a.Name] {
				t.Errorf("%s lists %s", path, a.Name)
			}
		}
		if r.Header.Get("Accept-Ranges") != "id, name, updated_at" {
			t.Errorf("Accept-Ranges = %q", r.Header.Get("Accept-Ranges"))
		}
	}
	bobs := decodeAs[[]appJSON](t, e.must(http.StatusOK, "GET", "/users/~/apps", e.bob.Token, nil))
	if len(bobs) != 1 || bobs[0].Name != "bobs-app" {
		t.Errorf("bob's apps = %+v", bobs)
	}
	// An account without apps gets an empty array, not null.
	r := e.must(http.StatusCreated, "POST", "/accounts", e.admin.Token, map[string]any{"email": "empty@example.com"})
	tok := decodeAs[createdAccount](t, r).AccessToken.Token
	if body := strings.TrimSpace(string(e.must(http.StatusOK, "GET", "/apps", tok, nil).Body)); body != "[]" {
		t.Errorf("empty list = %s", body)
	}
}

func TestGetApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createApp(e.admin.Token, "getme")
	for _, ident := range []string{"getme", created.ID} {
		got := decodeAs[appJSON](t, e.must(http.StatusOK, "GET", "/apps/"+ident, e.admin.Token, nil))
		if got.ID != created.ID || got.Name != "getme" {
			t.Errorf("GET /apps/%s = %+v", ident, got)
		}
	}
	checkError(t, e.do("GET", "/apps/GETME", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("GET", "/apps/"+created.ID, e.bob.Token, nil), http.StatusForbidden, "forbidden")
	checkError(t, e.do("GET", "/apps/"+uuid.NewString(), e.admin.Token, nil), http.StatusNotFound, "not_found")
}

func TestRenameApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createApp(e.admin.Token, "old-name")
	e.setConfig(e.admin.Token, "old-name", `{"KEEP": "me"}`)
	e.createApp(e.admin.Token, "other-app")
	e.createApp(e.bob.Token, "bobs-app")
	e.drain()

	before := e.dump()
	for _, tc := range []struct{ name, body string }{
		{"taken by own app", `{"name": "other-app"}`},
		{"taken by another account", `{"name": "bobs-app"}`},
		{"invalid", `{"name": "Bad_Name"}`},
		{"too short", `{"name": "ab"}`},
		{"empty", `{"name": ""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("PATCH", "/apps/old-name", e.admin.Token, tc.body), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	checkError(t, e.do("PATCH", "/apps/old-name", e.bob.Token, `{"name": "stolen"}`), http.StatusForbidden, "forbidden")
	e.unchanged(before)

	// Renaming to the same name is a no-op.
	e.must(http.StatusOK, "PATCH", "/apps/old-name", e.admin.Token, `{"name": "old-name"}`)
	e.unchanged(before)

	renamed := decodeAs[appJSON](t, e.must(http.StatusOK, "PATCH", "/apps/old-name", e.admin.Token, `{"name": "new-name"}`))
	if renamed.Name != "new-name" || renamed.ID != created.ID || !strings.Contains(renamed.WebURL, "new-name") {
		t.Errorf("renamed = %+v", renamed)
	}
	checkError(t, e.do("GET", "/apps/old-name", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("GET", "/apps/old-name/config-vars", e.admin.Token, nil), http.StatusNotFound, "not_found")
	if cfg := e.config(e.admin.Token, "new-name"); cfg["KEEP"] != "me" {
		t.Errorf("config after rename = %v", cfg)
	}
	if n := len(e.releases(e.admin.Token, "new-name")); n != 3 {
		t.Errorf("rename changed releases: %d", n)
	}
	if got := e.audit(); !hasLine(got, "Rename app from old-name to new-name by user "+adminEmail) {
		t.Errorf("audit = %q", got)
	}
	// The old name is free again.
	e.createApp(e.bob.Token, "old-name")
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "maint")
	e.drain()
	rels := len(e.releases(e.admin.Token, "maint"))
	for _, on := range []bool{true, true, false} {
		app := decodeAs[appJSON](t, e.must(http.StatusOK, "PATCH", "/apps/maint", e.admin.Token, map[string]any{"maintenance": on}))
		if app.Maintenance != on {
			t.Errorf("maintenance = %v, want %v", app.Maintenance, on)
		}
		if got := decodeAs[appJSON](t, e.must(http.StatusOK, "GET", "/apps/maint", e.admin.Token, nil)); got.Maintenance != on {
			t.Errorf("GET maintenance = %v, want %v", got.Maintenance, on)
		}
	}
	got := e.audit()
	want := []string{"Enable maintenance mode by user " + adminEmail, "Disable maintenance mode by user " + adminEmail}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit = %q, want %q", got, want)
	}
	if n := len(e.releases(e.admin.Token, "maint")); n != rels {
		t.Errorf("maintenance created releases")
	}
	// An empty PATCH changes nothing.
	before := e.dump()
	e.must(http.StatusOK, "PATCH", "/apps/maint", e.admin.Token, `{}`)
	e.must(http.StatusOK, "PATCH", "/apps/maint", e.admin.Token, `{"build_stack": "container"}`)
	e.unchanged(before)
	checkError(t, e.do("PATCH", "/apps/maint", e.admin.Token, `{"build_stack": "heroku-24"}`), http.StatusNotFound, "not_found")
	e.unchanged(before)
}

func TestDestroyApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.createApp(e.admin.Token, "doomed")
	e.deploy(e.admin.Token, "doomed", "web", "worker")
	e.setConfig(e.admin.Token, "doomed", `{"A": "1"}`)
	e.must(http.StatusOK, "PATCH", "/apps/doomed/features/preboot", e.admin.Token, `{"enabled": true}`)
	e.createApp(e.admin.Token, "survivor")

	// bob collaborates on the app: he may use it but not destroy it.
	ctx := context.Background()
	if err := e.db.Write(ctx, func(tx *store.Tx) error {
		now := time.Now()
		return tx.AddCollaborator(&store.Collaborator{ID: uuid.NewString(), AppID: app.ID, AccountID: e.bob.ID, Role: "collaborator", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusOK, "GET", "/apps/doomed", e.bob.Token, nil)
	if apps := decodeAs[[]appJSON](t, e.must(http.StatusOK, "GET", "/apps", e.bob.Token, nil)); len(apps) != 1 || apps[0].Name != "doomed" {
		t.Errorf("bob's apps = %+v", apps)
	}
	collabs := decodeAs[[]collaboratorJSON](t, e.must(http.StatusOK, "GET", "/apps/doomed/collaborators", e.bob.Token, nil))
	if len(collabs) != 2 || collabs[0].Role != "owner" || collabs[0].User.Email != adminEmail || collabs[1].User.Email != bobEmail {
		t.Errorf("collaborators = %+v", collabs)
	}
	before := e.dump()
	checkError(t, e.do("DELETE", "/apps/doomed", e.bob.Token, nil), http.StatusForbidden, "forbidden")
	e.unchanged(before)

	for _, tbl := range []string{"releases", "formations", "collaborators", "app_features"} {
		if n := e.count("SELECT count(*) FROM "+tbl+" WHERE app_id = ?", app.ID); n == 0 {
			t.Fatalf("setup: no %s rows", tbl)
		}
	}
	e.drain()
	gone := decodeAs[appJSON](t, e.must(http.StatusOK, "DELETE", "/apps/doomed", e.admin.Token, nil))
	if gone.Name != "doomed" || gone.ID != app.ID {
		t.Errorf("destroy answered %+v", gone)
	}
	for _, tbl := range []string{"releases", "formations", "collaborators", "app_features"} {
		if n := e.count("SELECT count(*) FROM "+tbl+" WHERE app_id = ?", app.ID); n != 0 {
			t.Errorf("%d %s rows left after destroy", n, tbl)
		}
	}
	if n := e.count("SELECT count(*) FROM apps WHERE id = ?", app.ID); n != 0 {
		t.Errorf("app row left")
	}
	destroyed := false
	for _, ev := range e.drain() {
		destroyed = destroyed || (ev.Kind == "destroy" && ev.AppID == app.ID)
	}
	if !destroyed {
		t.Errorf("no destroy event")
	}
	checkError(t, e.do("GET", "/apps/doomed", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("GET", "/apps/doomed", e.bob.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("DELETE", "/apps/doomed", e.admin.Token, nil), http.StatusNotFound, "not_found")
	e.must(http.StatusOK, "GET", "/apps/survivor", e.admin.Token, nil)

	// The name can be reused; the new app starts again at v1.
	e.createApp(e.bob.Token, "doomed")
	if rels := e.releases(e.bob.Token, "doomed"); len(rels) != 2 || rels[0].Version != 1 {
		t.Errorf("releases of the reborn app = %+v", rels)
	}
}

func TestAddonsDynosCollaborators(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "extras")
	for _, p := range []string{"/apps/extras/addons", "/apps/extras/dynos"} {
		if body := strings.TrimSpace(string(e.must(http.StatusOK, "GET", p, e.admin.Token, nil).Body)); body != "[]" {
			t.Errorf("%s = %s, want []", p, body)
		}
	}
	cs := decodeAs[[]collaboratorJSON](t, e.must(http.StatusOK, "GET", "/apps/extras/collaborators", e.admin.Token, nil))
	if len(cs) != 1 || cs[0].User.ID != e.admin.ID || cs[0].Role != "owner" || cs[0].App.Name != "extras" || cs[0].Permissions == nil {
		t.Errorf("collaborators = %+v", cs)
	}
}

func TestFeatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "feat")
	rels := len(e.releases(e.admin.Token, "feat"))
	e.drain()

	list := decodeAs[[]featureJSON](t, e.must(http.StatusOK, "GET", "/apps/feat/features", e.admin.Token, nil))
	names := map[string]featureJSON{}
	for _, f := range list {
		names[f.Name] = f
		if f.Enabled || uuid.Validate(f.ID) != nil || f.Description == "" || f.State == "" {
			t.Errorf("feature %+v", f)
		}
	}
	if _, ok := names["preboot"]; !ok {
		t.Fatalf("features = %+v, want preboot", list)
	}

	for _, ident := range []string{"preboot", names["preboot"].ID} {
		f := decodeAs[featureJSON](t, e.must(http.StatusOK, "GET", "/apps/feat/features/"+ident, e.admin.Token, nil))
		if f.Name != "preboot" || f.Enabled {
			t.Errorf("GET feature %s = %+v", ident, f)
		}
	}
	f := decodeAs[featureJSON](t, e.must(http.StatusOK, "PATCH", "/apps/feat/features/preboot", e.admin.Token, `{"enabled": true}`))
	if !f.Enabled {
		t.Errorf("enable answered %+v", f)
	}
	e.must(http.StatusOK, "PATCH", "/apps/feat/features/preboot", e.admin.Token, `{"enabled": true}`) // idempotent
	for _, f := range decodeAs[[]featureJSON](t, e.must(http.StatusOK, "GET", "/apps/feat/features", e.admin.Token, nil)) {
		if f.Enabled != (f.Name == "preboot") {
			t.Errorf("after enable: %s enabled=%v", f.Name, f.Enabled)
		}
	}
	f = decodeAs[featureJSON](t, e.must(http.StatusOK, "PATCH", "/apps/feat/features/preboot", e.admin.Token, `{"enabled": false}`))
	if f.Enabled {
		t.Errorf("disable answered %+v", f)
	}
	if got := decodeAs[featureJSON](t, e.must(http.StatusOK, "GET", "/apps/feat/features/preboot", e.admin.Token, nil)); got.Enabled {
		t.Errorf("still enabled after disable")
	}
	want := []string{"Enable preboot by user " + adminEmail, "Disable preboot by user " + adminEmail}
	if got := e.audit(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit = %q, want %q", got, want)
	}
	if n := len(e.releases(e.admin.Token, "feat")); n != rels {
		t.Errorf("feature toggles created releases")
	}

	before := e.dump()
	checkError(t, e.do("GET", "/apps/feat/features/warp-drive", e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("PATCH", "/apps/feat/features/warp-drive", e.admin.Token, `{"enabled": true}`), http.StatusNotFound, "not_found")
	checkError(t, e.do("PATCH", "/apps/feat/features/preboot", e.admin.Token, `{}`), http.StatusUnprocessableEntity, "invalid_params")
	checkError(t, e.do("PATCH", "/apps/feat/features/preboot", e.admin.Token, `{"enabled": null}`), http.StatusUnprocessableEntity, "invalid_params")
	e.unchanged(before)
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "sizes")

	regions := decodeAs[[]regionJSON](t, e.must(http.StatusOK, "GET", "/regions", e.admin.Token, nil))
	if len(regions) == 0 || regions[0].Name != "us" {
		t.Fatalf("regions = %+v", regions)
	}
	for _, ident := range []string{"us", regions[0].ID} {
		if r := decodeAs[regionJSON](t, e.must(http.StatusOK, "GET", "/regions/"+ident, e.admin.Token, nil)); r.ID != regions[0].ID {
			t.Errorf("region %s = %+v", ident, r)
		}
	}
	checkError(t, e.do("GET", "/regions/eu", e.admin.Token, nil), http.StatusNotFound, "not_found")

	stacks := decodeAs[[]stackJSON](t, e.must(http.StatusOK, "GET", "/stacks", e.admin.Token, nil))
	if len(stacks) != 1 || stacks[0].Name != "container" || !stacks[0].Default {
		t.Errorf("stacks = %+v", stacks)
	}
	e.must(http.StatusOK, "GET", "/stacks/container", e.admin.Token, nil)
	e.must(http.StatusOK, "GET", "/stacks/"+stacks[0].ID, e.admin.Token, nil)
	checkError(t, e.do("GET", "/stacks/heroku-24", e.admin.Token, nil), http.StatusNotFound, "not_found")

	all := decodeAs[[]sizeJSON](t, e.must(http.StatusOK, "GET", "/dyno-sizes", e.admin.Token, nil))
	byName := map[string]sizeJSON{}
	for _, s := range all {
		byName[s.Name] = s
	}
	// Heroku's table: memory (GB), compute.
	for _, want := range []struct {
		name    string
		memory  float64
		compute int
		private bool
	}{
		{"Eco", 0.5, 1, false},
		{"Basic", 0.5, 1, false},
		{"Standard-1X", 0.5, 1, false},
		{"Standard-2X", 1, 2, false},
		{"Performance-M", 2.5, 12, false},
		{"Performance-L", 14, 50, false},
		{"Private-S", 1, 12, true},
	} {
		s, ok := byName[want.name]
		if !ok {
			t.Errorf("size %s missing", want.name)
			continue
		}
		if s.Memory != want.memory || s.Compute != want.compute || s.PrivateSpaceOnly != want.private || s.ProcessLimit == 0 || s.CPUShare == 0 {
			t.Errorf("size %s = %+v", want.name, s)
		}
	}
	for _, ident := range []string{"Standard-2X", "standard-2x", byName["Standard-2X"].ID} {
		if s := decodeAs[sizeJSON](t, e.must(http.StatusOK, "GET", "/dyno-sizes/"+ident, e.admin.Token, nil)); s.Name != "Standard-2X" {
			t.Errorf("size %s = %+v", ident, s)
		}
	}
	checkError(t, e.do("GET", "/dyno-sizes/Huge-9X", e.admin.Token, nil), http.StatusNotFound, "not_found")

	avail := decodeAs[[]sizeJSON](t, e.must(http.StatusOK, "GET", "/apps/sizes/available-dyno-sizes", e.admin.Token, nil))
	if len(avail) == 0 || len(avail) >= len(all) {
		t.Errorf("available sizes: %d of %d", len(avail), len(all))
	}
	for _, s := range avail {
		if s.PrivateSpaceOnly {
			t.Errorf("available sizes include %s", s.Name)
		}
	}
}
