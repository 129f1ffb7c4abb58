package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

func TestConfigVars(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "cfg")
	e.drain()

	// Keys are described in request order, not sorted.
	cfg := e.setConfig(e.admin.Token, "cfg", `{"ZED": "z", "ALPHA": "a", "MID": "m"}`)
	if !maps.Equal(cfg, map[string]string{"ZED": "z", "ALPHA": "a", "MID": "m"}) {
		t.Errorf("PATCH answered %v", cfg)
	}
	if got := e.config(e.admin.Token, "cfg"); !maps.Equal(got, cfg) {
		t.Errorf("GET = %v", got)
	}
	rels := e.releases(e.admin.Token, "cfg")
	if last := rels[len(rels)-1]; last.Version != 3 || last.Description != "Set ZED, ALPHA, MID config vars" || !last.Current {
		t.Errorf("v3 = %+v", last)
	}
	audit := e.audit()
	for _, want := range []string{"Set ZED, ALPHA, MID config vars by user " + adminEmail, "Release v3 created by user " + adminEmail} {
		if !hasLine(audit, want) {
			t.Errorf("audit %q lacks %q", audit, want)
		}
	}

	// One key.
	e.setConfig(e.admin.Token, "cfg", `{"FOO": "bar"}`)
	if got := e.audit(); !hasLine(got, "Set FOO config vars by user "+adminEmail) || !hasLine(got, "Release v4 created by user "+adminEmail) {
		t.Errorf("audit = %q", got)
	}

	// Unset.
	cfg = e.setConfig(e.admin.Token, "cfg", `{"ALPHA": null}`)
	if _, ok := cfg["ALPHA"]; ok || cfg["ZED"] != "z" {
		t.Errorf("after unset: %v", cfg)
	}
	rels = e.releases(e.admin.Token, "cfg")
	if last := rels[len(rels)-1]; last.Version != 5 || last.Description != "Remove ALPHA config vars" {
		t.Errorf("v5 = %+v", last)
	}

	// No-op PATCHes create no release and publish nothing: same value,
	// removing an absent key, an empty object, an empty body.
	e.drain()
	before := e.dump()
	for _, body := range []string{`{"ZED": "z"}`, `{"NOPE": null}`, `{}`, ``, `{"ZED": "z", "GONE": null}`} {
		got := e.setConfig(e.admin.Token, "cfg", body)
		if !maps.Equal(got, cfg) {
			t.Errorf("no-op %q answered %v", body, got)
		}
	}
	e.unchanged(before)
	if got := e.audit(); len(got) != 0 {
		t.Errorf("no-op PATCHes published %q", got)
	}

	// Setting and removing in one PATCH is one release.
	e.setConfig(e.admin.Token, "cfg", `{"NEW": "1", "MID": null}`)
	rels = e.releases(e.admin.Token, "cfg")
	if last := rels[len(rels)-1]; last.Version != 6 || last.Description != "Set NEW config vars and Remove MID config vars" {
		t.Errorf("v6 = %+v", last)
	}

	// Values are kept exactly: empty strings, unicode, newlines, "=".
	odd := map[string]string{"EMPTY": "", "UNI": "héllo ✓", "MULTI": "a\nb", "EQ": "a=b=c", "Lower_1": "x"}
	e.must(http.StatusOK, "PATCH", "/apps/cfg/config-vars", e.admin.Token, odd)
	got := e.config(e.admin.Token, "cfg")
	for k, v := range odd {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["EMPTY"]; !ok {
		t.Errorf("an empty value removed the key")
	}
}

func TestConfigVarErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "cfgerr")
	e.setConfig(e.admin.Token, "cfgerr", `{"KEEP": "1"}`)
	e.drain()
	before := e.dump()
	for _, tc := range []struct {
		name, body string
		status     int
		id         string
	}{
		{"dash in key", `{"MY-KEY": "1"}`, 422, "invalid_params"},
		{"space in key", `{"MY KEY": "1"}`, 422, "invalid_params"},
		{"empty key", `{"": "1"}`, 422, "invalid_params"},
		{"dot in key", `{"a.b": "1"}`, 422, "invalid_params"},
		{"non-ascii key", `{"KÉY": "1"}`, 422, "invalid_params"},
		{"one bad key among good ones", `{"GOOD": "1", "BAD-ONE": "2"}`, 422, "invalid_params"},
		{"bad key removed", `{"BAD-ONE": null}`, 422, "invalid_params"},
		{"number value", `{"A": 1}`, 422, "invalid_params"},
		{"bool value", `{"A": false}`, 422, "invalid_params"},
		{"array value", `{"A": []}`, 422, "invalid_params"},
		{"object value", `{"A": {}}`, 422, "invalid_params"},
		{"malformed", `{"A": "1"`, 400, "bad_request"},
		{"array body", `[{"A": "1"}]`, 400, "bad_request"},
		{"string body", `"A=1"`, 400, "bad_request"},
		{"null body", `null`, 400, "bad_request"},
		{"trailing data", `{"A": "1"} x`, 400, "bad_request"},
		{"two objects", `{"A": "1"}{"B": "2"}`, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("PATCH", "/apps/cfgerr/config-vars", e.admin.Token, tc.body), tc.status, tc.id)
		})
	}
	e.unchanged(before)
	if got := e.audit(); len(got) != 0 {
		t.Errorf("failed PATCHes published %q", got)
	}
}

func TestConfigSizeLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "bigcfg")
	// Exactly 32 KB of keys and values is allowed.
	exact := strings.Repeat("v", platform.MaxConfigSize-len("BIG"))
	e.must(http.StatusOK, "PATCH", "/apps/bigcfg/config-vars", e.admin.Token, map[string]any{"BIG": exact})
	e.drain()
	before := e.dump()
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"one byte more in a new key", map[string]any{"X": ""}},
		{"one byte more in the value", map[string]any{"BIG": exact + "v"}},
		{"a huge new value", map[string]any{"HUGE": strings.Repeat("h", 40*1024)}},
		{"set and remove netting over", map[string]any{"BIG": nil, "HUGE": strings.Repeat("h", 40*1024)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("PATCH", "/apps/bigcfg/config-vars", e.admin.Token, tc.body), http.StatusUnprocessableEntity, "invalid_params")
		})
	}
	e.unchanged(before)
	if got := e.audit(); len(got) != 0 {
		t.Errorf("refused PATCHes published %q", got)
	}
	// Shrinking is always allowed.
	e.must(http.StatusOK, "PATCH", "/apps/bigcfg/config-vars", e.admin.Token, map[string]any{"BIG": "small", "OTHER": "x"})
}

func TestReleaseInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "relinfo")
	e.setConfig(e.admin.Token, "relinfo", `{"A": "1"}`)
	e.setConfig(e.admin.Token, "relinfo", `{"B": "2"}`)
	rels := e.releases(e.admin.Token, "relinfo")
	if len(rels) != 4 {
		t.Fatalf("%d releases", len(rels))
	}
	v3 := rels[2]
	for _, ident := range []string{"3", "v3", v3.ID} {
		r := decodeAs[releaseJSON](t, e.must(http.StatusOK, "GET", "/apps/relinfo/releases/"+ident, e.admin.Token, nil))
		if r.ID != v3.ID || r.Version != 3 || r.Current || !r.EligibleForRollback || r.Description != "Set A config vars" || r.App.Name != "relinfo" {
			t.Errorf("release %s = %+v", ident, r)
		}
	}
	if cur := decodeAs[releaseJSON](t, e.must(http.StatusOK, "GET", "/apps/relinfo/releases/4", e.admin.Token, nil)); !cur.Current {
		t.Errorf("v4 not current")
	}
	// Each release keeps its own config snapshot.
	for v, want := range map[string]map[string]string{
		"1": {}, "2": {}, "3": {"A": "1"}, "v4": {"A": "1", "B": "2"}, v3.ID: {"A": "1"},
	} {
		got := decodeAs[map[string]string](t, e.must(http.StatusOK, "GET", "/apps/relinfo/releases/"+v+"/config-vars", e.admin.Token, nil))
		if !maps.Equal(got, want) {
			t.Errorf("config of release %s = %v, want %v", v, got, want)
		}
	}
	// Only one release is current, and it is the newest.
	current := 0
	for _, r := range e.releases(e.admin.Token, "relinfo") {
		if r.Current {
			current++
			if r.Version != 4 {
				t.Errorf("current is v%d", r.Version)
			}
		}
	}
	if current != 1 {
		t.Errorf("%d current releases", current)
	}
	// The JSON carries the fields the CLI reads.
	m := decodeAs[map[string]any](t, e.must(http.StatusOK, "GET", "/apps/relinfo/releases/3", e.admin.Token, nil))
	for _, k := range []string{"addon_plan_names", "app", "created_at", "description", "id", "slug", "status", "user", "version", "current", "eligible_for_rollback", "output_stream_url", "updated_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("release JSON lacks %q", k)
		}
	}
	for _, ident := range []string{"99", "v99", "0", "-1", "latest", uuid.NewString()} {
		checkError(t, e.do("GET", "/apps/relinfo/releases/"+ident, e.admin.Token, nil), http.StatusNotFound, "not_found")
		checkError(t, e.do("GET", "/apps/relinfo/releases/"+ident+"/config-vars", e.admin.Token, nil), http.StatusNotFound, "not_found")
	}
	// Another app's release id is not found through this app.
	e.createApp(e.admin.Token, "relinfo2")
	checkError(t, e.do("GET", "/apps/relinfo2/releases/"+v3.ID, e.admin.Token, nil), http.StatusNotFound, "not_found")
}

func TestRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "rbapp")
	img1 := e.deploy(e.admin.Token, "rbapp", "web", "worker")     // v3
	e.setConfig(e.admin.Token, "rbapp", `{"A": "1"}`)             // v4
	img2 := e.deploy(e.admin.Token, "rbapp", "web")               // v5
	e.setConfig(e.admin.Token, "rbapp", `{"A": "2", "B": "new"}`) // v6
	if img1 == img2 {
		t.Fatal("setup: same image twice")
	}
	rels := e.releases(e.admin.Token, "rbapp")
	if len(rels) != 6 {
		t.Fatalf("%d releases", len(rels))
	}
	e.drain()

	// By id, as the CLI sends it: back to v4 (img1 everywhere, A=1).
	r := e.must(http.StatusCreated, "POST", "/apps/rbapp/releases", e.admin.Token, map[string]any{"release": rels[3].ID})
	rb := decodeAs[releaseJSON](t, r)
	if rb.Version != 7 || rb.Description != "Rollback to v4" || !rb.Current || rb.Status != "succeeded" || rb.User.Email != adminEmail {
		t.Errorf("rollback release = %+v", rb)
	}
	if got := e.config(e.admin.Token, "rbapp"); !maps.Equal(got, map[string]string{"A": "1"}) {
		t.Errorf("config after rollback to v4 = %v", got)
	}
	procs := map[string]string{}
	for _, p := range rb.ProcessTypes {
		procs[p.Type] = p.Image
	}
	if procs["web"] != img1 || procs["worker"] != img1 {
		t.Errorf("process types after rollback to v4 = %v, want web and worker on %s", procs, img1)
	}
	audit := e.audit()
	for _, want := range []string{"Rollback to v4 by user " + adminEmail, "Release v7 created by user " + adminEmail} {
		if !hasLine(audit, want) {
			t.Errorf("audit %q lacks %q", audit, want)
		}
	}

	// By version: back to v6.
	rb = decodeAs[releaseJSON](t, e.must(http.StatusCreated, "POST", "/apps/rbapp/releases", e.admin.Token, `{"release": "6"}`))
	if rb.Version != 8 || rb.Description != "Rollback to v6" {
		t.Errorf("rollback by version = %+v", rb)
	}
	if got := e.config(e.admin.Token, "rbapp"); !maps.Equal(got, map[string]string{"A": "2", "B": "new"}) {
		t.Errorf("config after rollback to v6 = %v", got)
	}
	if got := decodeAs[releaseJSON](t, e.must(http.StatusOK, "GET", "/apps/rbapp/releases/8", e.admin.Token, nil)); len(got.ProcessTypes) != 2 {
		t.Errorf("process types = %+v", got.ProcessTypes)
	} else {
		for _, p := range got.ProcessTypes {
			want := map[string]string{"web": img2, "worker": img1}[p.Type]
			if p.Image != want {
				t.Errorf("after rollback to v6: %s runs %s, want %s", p.Type, p.Image, want)
			}
		}
	}
	// Rolling back to a rollback and to v1 work too.
	e.must(http.StatusCreated, "POST", "/apps/rbapp/releases", e.admin.Token, `{"release": "v7"}`)
	e.must(http.StatusCreated, "POST", "/apps/rbapp/releases", e.admin.Token, `{"release": "1"}`)
	if got := e.config(e.admin.Token, "rbapp"); len(got) != 0 {
		t.Errorf("config after rollback to v1 = %v", got)
	}
	// Older releases are kept; only the newest is current.
	all := e.releases(e.admin.Token, "rbapp")
	for i, r := range all {
		if r.Version != i+1 {
			t.Errorf("release %d has version %d", i, r.Version)
		}
		if r.Current != (i == len(all)-1) {
			t.Errorf("v%d current=%v", r.Version, r.Current)
		}
	}

	before := e.dump()
	for _, tc := range []struct {
		name, body string
		status     int
		id         string
	}{
		{"unknown version", `{"release": "99"}`, 404, "not_found"},
		{"unknown id", `{"release": "` + uuid.NewString() + `"}`, 404, "not_found"},
		{"garbage", `{"release": "latest"}`, 404, "not_found"},
		{"missing", `{}`, 422, "invalid_params"},
		{"null", `{"release": null}`, 422, "invalid_params"},
		{"slug release", `{"slug": "` + uuid.NewString() + `"}`, 422, "invalid_params"},
		{"number", `{"release": 3}`, 422, "invalid_params"},
		{"malformed", `{"release": `, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("POST", "/apps/rbapp/releases", e.admin.Token, tc.body), tc.status, tc.id)
		})
	}
	// Another app's release cannot be rolled back to.
	e.createApp(e.admin.Token, "rb-other")
	other := e.releases(e.admin.Token, "rb-other")
	before = e.dump()
	checkError(t, e.do("POST", "/apps/rbapp/releases", e.admin.Token, map[string]any{"release": other[0].ID}), http.StatusNotFound, "not_found")
	e.unchanged(before)
}

// TestFailedReleaseIsNotCurrent inserts a failed release directly: it is not
// current, not eligible for rollback, and config reads skip it.
func TestFailedReleaseIsNotCurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.createApp(e.admin.Token, "failing")
	e.setConfig(e.admin.Token, "failing", `{"GOOD": "1"}`)
	if err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		v, err := tx.NextVersion(app.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		return tx.CreateRelease(&store.Release{ID: uuid.NewString(), AppID: app.ID, Version: v, Description: "Deploy deadbeef",
			Status: "failed", UserID: e.admin.ID, UserEmail: adminEmail, Config: map[string]string{"BAD": "1"}, CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	rels := e.releases(e.admin.Token, "failing")
	if len(rels) != 4 {
		t.Fatalf("%d releases", len(rels))
	}
	if f := rels[3]; f.Status != "failed" || f.Current || f.EligibleForRollback {
		t.Errorf("failed release = %+v", f)
	}
	if !rels[2].Current {
		t.Errorf("the last succeeded release is not current")
	}
	if got := e.config(e.admin.Token, "failing"); !maps.Equal(got, map[string]string{"GOOD": "1"}) {
		t.Errorf("config = %v", got)
	}
	before := e.dump()
	checkError(t, e.do("POST", "/apps/failing/releases", e.admin.Token, `{"release": "4"}`), http.StatusUnprocessableEntity, "invalid_params")
	e.unchanged(before)
	// The next release takes v5: the failed one keeps its number.
	e.setConfig(e.admin.Token, "failing", `{"NEXT": "1"}`)
	rels = e.releases(e.admin.Token, "failing")
	if last := rels[len(rels)-1]; last.Version != 5 || !last.Current {
		t.Errorf("next release = %+v", last)
	}
}

func TestReleaseUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.createApp(e.admin.Token, "shared")
	if err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		now := time.Now()
		return tx.AddCollaborator(&store.Collaborator{ID: uuid.NewString(), AppID: app.ID, AccountID: e.bob.ID, Role: "collaborator", CreatedAt: now, UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.setConfig(e.bob.Token, "shared", `{"BY_BOB": "1"}`)
	rels := e.releases(e.admin.Token, "shared")
	if last := rels[len(rels)-1]; last.User.Email != bobEmail || last.User.ID != e.bob.ID {
		t.Errorf("release user = %+v", last.User)
	}
	if got := e.audit(); !hasLine(got, "Set BY_BOB config vars by user "+bobEmail) || !hasLine(got, fmt.Sprintf("Release v%d created by user %s", len(rels), bobEmail)) {
		t.Errorf("audit = %q", got)
	}
}
