package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestHerokuCLI runs every command the foundation issue lists through the
// official heroku CLI against a real server, in one scenario, and checks the
// CLI's output. The expected wording comes from the CLI's own source
// (node_modules/heroku/dist/commands/...): progress messages ("Creating x...
// done") go to stderr, results to stdout.
func TestHerokuCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	h := srv.heroku(t, srv.AdminToken)
	admin := srv.AdminEmail
	if admin != "admin@skiff.local" {
		t.Errorf("banner Admin email = %q, want admin@skiff.local", admin)
	}
	port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")

	// must runs a step and stops the scenario if it fails: later steps
	// depend on its state.
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	must("auth:whoami", func(t *testing.T) {
		// commands/auth/whoami.js: this.log(account.email)
		res := h.ok(t, "auth:whoami")
		wantEqual(t, res, "stdout", admin+"\n")
		wantContains(t, res, "stderr", "HEROKU_API_KEY is set")
	})

	t.Run("auth:token", func(t *testing.T) {
		// commands/auth/token.js: GET /oauth/authorizations, then prints the token in use
		res := h.ok(t, "auth:token")
		wantEqual(t, res, "stdout", srv.AdminToken+"\n")
	})

	const first = "skiff-e2e"
	must("apps:create NAME", func(t *testing.T) {
		// commands/apps/create.js: action "Creating NAME... done", then "<web_url> | <git url>"
		res := h.ok(t, "apps:create", first)
		wantContains(t, res, "stderr", "Creating "+first+"... done")
		wantContains(t, res, "stdout", fmt.Sprintf("http://%s.localhost/ | https://127.0.0.1:%s/%s.git", first, port, first))
	})

	var generated string
	must("apps:create without a name", func(t *testing.T) {
		// commands/apps/create.js: "Creating app... done, <generated name>"
		res := h.ok(t, "apps:create")
		m := wantMatch(t, res, "stderr", `^Creating app\.\.\. done, ([a-z][a-z0-9-]{1,28}[a-z0-9])$`)
		if m == nil {
			t.FailNow()
		}
		generated = m[1]
		wantContains(t, res, "stdout", fmt.Sprintf("http://%s.localhost/ | https://127.0.0.1:%s/%s.git", generated, port, generated))
	})

	t.Run("apps", func(t *testing.T) {
		// commands/apps/index.js: header "=== <email> Apps", then one name per line, sorted
		res := h.ok(t, "apps")
		wantContains(t, res, "stdout", "=== "+admin+" Apps")
		names := []string{first, generated}
		if generated < first {
			names = []string{generated, first}
		}
		wantMatch(t, res, "stdout", "^"+regexp.QuoteMeta(names[0])+"\n"+regexp.QuoteMeta(names[1])+"$")
	})

	t.Run("apps:info", func(t *testing.T) {
		// commands/apps/info.js: styledHeader + styledObject
		res := h.ok(t, "apps:info", "-a", first)
		wantMatch(t, res, "stdout", `^=== `+first+`$`)
		wantMatch(t, res, "stdout", `^Web URL:\s+http://`+first+`\.localhost/$`)
		wantMatch(t, res, "stdout", `^Git URL:\s+\S+/`+first+`\.git$`)
		wantMatch(t, res, "stdout", `^Owner:\s+`+regexp.QuoteMeta(admin)+`$`)
		wantMatch(t, res, "stdout", `^Region:\s+us$`)
		wantMatch(t, res, "stdout", `^Stack:\s+\S+`)
	})

	const app = "skiff-e2e-renamed"
	must("apps:rename", func(t *testing.T) {
		// commands/apps/rename.js: "Renaming OLD to NEW... done", then "<web_url> | <git url>"
		res := h.ok(t, "apps:rename", "-a", first, app)
		wantContains(t, res, "stderr", "Renaming "+first+" to "+app+"... done")
		wantContains(t, res, "stdout", fmt.Sprintf("http://%s.localhost/ | https://127.0.0.1:%s/%s.git", app, port, app))
		// The old name is gone.
		res = h.fails(t, "apps:info", "-a", first)
		wantContains(t, res, "stderr", "Error ID: not_found")
	})

	t.Run("config:set", func(t *testing.T) {
		// commands/config/set.js: PATCH config-vars, then GET releases (Range
		// "version ..; order=desc,max=1") for "done, vN"; prints the set vars.
		res := h.ok(t, "config:set", "A=1", "B=two words", "-a", app)
		wantContains(t, res, "stderr", "Setting A, B and restarting "+app+"... done, v3")
		wantMatch(t, res, "stdout", `^A: 1$`)
		wantMatch(t, res, "stdout", `^B: two words$`)
	})

	t.Run("config", func(t *testing.T) {
		res := h.ok(t, "config", "-a", app)
		wantContains(t, res, "stdout", "=== "+app+" Config Vars")
		wantMatch(t, res, "stdout", `^A: 1$`)
		wantMatch(t, res, "stdout", `^B: two words$`)
	})

	t.Run("config:get", func(t *testing.T) {
		res := h.ok(t, "config:get", "B", "-a", app)
		wantEqual(t, res, "stdout", "two words\n")
	})

	t.Run("config:unset", func(t *testing.T) {
		res := h.ok(t, "config:unset", "A", "-a", app)
		wantContains(t, res, "stderr", "Unsetting A and restarting "+app+"... done, v4")
	})

	t.Run("releases", func(t *testing.T) {
		// commands/releases/index.js: GET releases (3.sdk, "version ..; max=15, order=desc"),
		// header with the current release, then a table: v, description, user, created_at.
		res := h.ok(t, "releases", "-a", app)
		wantContains(t, res, "stdout", "=== "+app+" Releases - Current: v4")
		u := regexp.QuoteMeta(admin)
		m := wantMatch(t, res, "stdout", `^\s*v4\s+Remove A config vars\s+`+u+`\s.*\n`+
			`\s*v3\s+Set A, B config vars\s+`+u+`\s.*\n`+
			`\s*v2\s+Enable Logplex\s+`+u+`\s.*\n`+
			`\s*v1\s+Initial release\s+`+u+`\s.*$`)
		if m != nil {
			wantMatch(t, res, "stdout", `^\s*v4 .* \d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4} \(~ \d+s ago\)`)
		}
	})

	t.Run("releases:info", func(t *testing.T) {
		// commands/releases/info.js: latest release, then its config vars
		res := h.ok(t, "releases:info", "-a", app)
		wantMatch(t, res, "stdout", `^=== Release v4$`)
		wantMatch(t, res, "stdout", `^By:\s+`+regexp.QuoteMeta(admin)+`$`)
		wantMatch(t, res, "stdout", `^Change:\s+Remove A config vars$`)
		wantMatch(t, res, "stdout", `^Eligible for Rollback\?:\s+Yes$`)
		wantMatch(t, res, "stdout", `^When:\s+\d{4}-\d\d-\d\dT`)
		wantMatch(t, res, "stdout", `^=== v4 Config vars$`)
		wantMatch(t, res, "stdout", `^B: two words$`)
		wantNotContains(t, res, "stdout", "A: 1")
	})

	t.Run("releases:info v3", func(t *testing.T) {
		// GET /apps/APP/releases/3 (3.sdk) and /apps/APP/releases/3/config-vars
		res := h.ok(t, "releases:info", "v3", "-a", app)
		wantMatch(t, res, "stdout", `^=== Release v3$`)
		wantMatch(t, res, "stdout", `^Change:\s+Set A, B config vars$`)
		wantMatch(t, res, "stdout", `^=== v3 Config vars$`)
		wantMatch(t, res, "stdout", `^A: 1$`)
		wantMatch(t, res, "stdout", `^B: two words$`)
	})

	t.Run("rollback", func(t *testing.T) {
		// commands/releases/rollback.js: the second eligible release of the
		// latest ten (v3), POST /apps/APP/releases {"release": <id>}.
		res := h.ok(t, "rollback", "-a", app)
		wantContains(t, res, "stderr", "Rolling back "+app+" to v3... done, v5")
		wantContains(t, res, "stderr", "To undo, run: heroku rollback v4")
		// The rollback restored v3's config vars.
		var cfg map[string]*string
		srv.apiJSON(t, srv.AdminToken, "GET", "/apps/"+app+"/config-vars", nil, "", http.StatusOK, &cfg)
		if cfg["A"] == nil || *cfg["A"] != "1" || cfg["B"] == nil || *cfg["B"] != "two words" {
			t.Errorf("config after rollback = %v, want A=1 and B=two words", show(cfg))
		}
	})

	t.Run("rollback v3", func(t *testing.T) {
		res := h.ok(t, "rollback", "v3", "-a", app)
		wantContains(t, res, "stderr", "Rolling back "+app+" to v3... done, v6")
		wantContains(t, res, "stderr", "To undo, run: heroku rollback v5")
		latest := latestRelease(t, srv, app)
		if latest.Version != 6 || latest.Description != "Rollback to v3" {
			t.Errorf("latest release = v%d %q, want v6 \"Rollback to v3\"", latest.Version, latest.Description)
		}
	})

	// Formation: process types come from a release, here one made as
	// `heroku container:release` would (heroku-cli.md §5 step 4).
	web, worker := digest("web"), digest("worker")
	must("formation from a docker release", func(t *testing.T) {
		var formation []struct {
			Type     string `json:"type"`
			Quantity int    `json:"quantity"`
			Size     string `json:"size"`
		}
		srv.apiJSON(t, srv.AdminToken, "PATCH", "/apps/"+app+"/formation",
			map[string]any{"updates": []map[string]string{
				{"type": "web", "docker_image": "sha256:" + web},
				{"type": "worker", "docker_image": "sha256:" + worker},
			}},
			"application/vnd.heroku+json; version=3.docker-releases", http.StatusOK, &formation)
		got := map[string]string{}
		for _, f := range formation {
			got[f.Type] = fmt.Sprintf("%d:%s", f.Quantity, f.Size)
		}
		if got["web"] != "1:Standard-1X" || got["worker"] != "0:Standard-1X" {
			t.Errorf("formation after the docker release = %v, want web 1:Standard-1X and worker 0:Standard-1X", got)
		}
		latest := latestRelease(t, srv, app)
		if want := "Deploy " + web[:8]; latest.Version != 7 || latest.Description != want {
			t.Errorf("latest release = v%d %q, want v7 %q", latest.Version, latest.Description, want)
		}
	})

	t.Run("ps:scale web=2", func(t *testing.T) {
		// commands/ps/scale.js: GET app, PATCH formation {"updates":[{"quantity":"2","type":"web"}]}
		res := h.ok(t, "ps:scale", "web=2", "-a", app)
		wantContains(t, res, "stderr", "Scaling dynos... done, now running web at 2:Standard-1X")
	})

	t.Run("ps:scale relative and with size", func(t *testing.T) {
		res := h.ok(t, "ps:scale", "web+2", "worker=1:Standard-2X", "-a", app)
		wantContains(t, res, "stderr", "Scaling dynos... done, now running web at 4:Standard-1X, worker at 1:Standard-2X")
	})

	t.Run("ps:scale without arguments", func(t *testing.T) {
		// commands/ps/scale.js: "type=quantity:size" sorted, space-separated
		res := h.ok(t, "ps:scale", "-a", app)
		wantEqual(t, res, "stdout", "web=4:Standard-1X worker=1:Standard-2X\n")
	})

	t.Run("ps:type", func(t *testing.T) {
		// commands/ps/type.js: PATCH every type's size, then the formation table
		res := h.ok(t, "ps:type", "standard-2x", "-a", app)
		wantContains(t, res, "stderr", "Scaling dynos on "+app+"... done")
		wantMatch(t, res, "stdout", `^=== Process Types$`)
		wantMatch(t, res, "stdout", `^\s*web\s+Standard-2X\s+4\s+~\$0\.278\s+\$200\s*$`)
		wantMatch(t, res, "stdout", `^\s*worker\s+Standard-2X\s+1\s+~\$0\.069\s+\$50\s*$`)
		wantMatch(t, res, "stdout", `^=== Dyno Totals$`)
		wantMatch(t, res, "stdout", `^\s*Standard-2X\s+5\s*$`)
		// Scaling and resizing create no release.
		if latest := latestRelease(t, srv, app); latest.Version != 7 {
			t.Errorf("latest release after scaling = v%d %q, want v7 (scaling makes no release)", latest.Version, latest.Description)
		}
	})

	t.Run("maintenance", func(t *testing.T) {
		// commands/maintenance/*.js: "off"/"on" from app.maintenance; PATCH {maintenance: bool}
		res := h.ok(t, "maintenance", "-a", app)
		wantEqual(t, res, "stdout", "off\n")
		res = h.ok(t, "maintenance:on", "-a", app)
		wantContains(t, res, "stderr", "Enabling maintenance mode for "+app+"... done")
		res = h.ok(t, "maintenance", "-a", app)
		wantEqual(t, res, "stdout", "on\n")
		res = h.ok(t, "maintenance:off", "-a", app)
		wantContains(t, res, "stderr", "Disabling maintenance mode for "+app+"... done")
		var a struct {
			Maintenance *bool `json:"maintenance"`
		}
		srv.apiJSON(t, srv.AdminToken, "GET", "/apps/"+app, nil, "", http.StatusOK, &a)
		if a.Maintenance == nil || *a.Maintenance {
			t.Errorf("maintenance after maintenance:off = %v, want false", show(a.Maintenance))
		}
	})

	t.Run("features", func(t *testing.T) {
		// commands/features/index.js: only state "general"; "[ ] name  description"
		res := h.ok(t, "features", "-a", app)
		wantContains(t, res, "stdout", "=== App Features "+app)
		wantMatch(t, res, "stdout", `^\[ \] preboot\s+\S`)
	})

	t.Run("features:enable preboot", func(t *testing.T) {
		// commands/features/enable.js: GET the feature (must be disabled), PATCH {enabled: true}
		res := h.ok(t, "features:enable", "preboot", "-a", app)
		wantContains(t, res, "stderr", "Enabling preboot for "+app+"... done")
		res = h.ok(t, "features", "-a", app)
		wantMatch(t, res, "stdout", `^\[\+\] preboot\s+\S`)
	})

	t.Run("features:disable preboot", func(t *testing.T) {
		res := h.ok(t, "features:disable", "preboot", "-a", app)
		wantContains(t, res, "stderr", "Disabling preboot for "+app+"... done")
		var f struct {
			Enabled *bool `json:"enabled"`
		}
		srv.apiJSON(t, srv.AdminToken, "GET", "/apps/"+app+"/features/preboot", nil, "", http.StatusOK, &f)
		if f.Enabled == nil || *f.Enabled {
			t.Errorf("preboot after features:disable: enabled = %v, want false", show(f.Enabled))
		}
	})

	t.Run("features:enable router-p2c", func(t *testing.T) {
		// Skiff's per-app router balance: power of two choices.
		res := h.ok(t, "features:enable", "router-p2c", "-a", app)
		wantContains(t, res, "stderr", "Enabling router-p2c for "+app+"... done")
		res = h.ok(t, "features", "-a", app)
		wantMatch(t, res, "stdout", `^\[\+\] router-p2c\s+\S`)
	})

	t.Run("apps:destroy", func(t *testing.T) {
		// commands/apps/destroy.js: GET app, then DELETE; "Destroying APP (including all add-ons)... done"
		res := h.ok(t, "apps:destroy", "-a", app, "--confirm", app)
		wantContains(t, res, "stderr", "Destroying "+app+" (including all add-ons)... done")
		res = h.ok(t, "apps")
		wantMatch(t, res, "stdout", "^"+regexp.QuoteMeta(generated)+"$")
		wantNotContains(t, res, "stdout", app)
		res = h.fails(t, "config", "-a", app)
		wantContains(t, res, "stderr", "Error ID: not_found")
	})
}

// release is the part of a release the tests read.
type release struct {
	ID          string `json:"id"`
	Version     int    `json:"version"`
	Description string `json:"description"`
}

// latestRelease reads the newest release the way the CLI does (config/set.js).
func latestRelease(t *testing.T, srv *server, app string) release {
	t.Helper()
	req := "/apps/" + app + "/releases"
	status, body := srv.apiWithRange(t, srv.AdminToken, req, "version ..; order=desc,max=1")
	if status != http.StatusOK && status != http.StatusPartialContent {
		t.Fatalf("GET %s: status %d: %s", req, status, body)
	}
	var rs []release
	decode(t, body, &rs)
	if len(rs) == 0 {
		t.Fatalf("GET %s: no releases", req)
	}
	return rs[0]
}

// digest is a made-up image digest (64 hex digits) for name.
func digest(name string) string {
	sum := sha256.Sum256([]byte("skiff e2e image " + name))
	return hex.EncodeToString(sum[:])
}
