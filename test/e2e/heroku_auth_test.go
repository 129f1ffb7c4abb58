package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHerokuLogin logs in with `heroku login -i` (no HEROKU_API_KEY), feeding
// email and password through a pipe, then uses the saved credentials.
//
// login -i (@heroku-cli/command/lib/login.js#interactive) asks two questions
// through inquirer (lib/prompter.js, prompts on stderr), then POSTs
// /oauth/authorizations with Basic email:password, reads user.email and
// access_token.token, writes ~/.netrc (HEROKU_NETRC_WRITE=true) for
// machine 127.0.0.1:PORT and calls GET /account
// (heroku/dist/commands/auth/login.js: "Logged in as <email>").
func TestHerokuLogin(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	const email, password = "dev@example.com", "correct horse battery"
	token := srv.createAccount(t, email, password)
	machine := strings.TrimPrefix(srv.URL, "http://")

	t.Run("with the password", func(t *testing.T) {
		h := srv.heroku(t, "") // no HEROKU_API_KEY: login refuses to run with it
		res := h.runDialogue(t, []answer{{"Email", email}, {"Password", password}}, "login", "-i")
		if res.Code != 0 {
			t.Fatalf("%s", res.describe("exit status 0"))
		}
		wantContains(t, res, "stdout", "Logged in as "+email)

		netrc, err := os.ReadFile(filepath.Join(h.home, ".netrc"))
		if err != nil {
			t.Fatalf("login -i wrote no ~/.netrc: %v", err)
		}
		m := regexp.MustCompile(`machine ` + regexp.QuoteMeta(machine) + `\s+login ` + regexp.QuoteMeta(email) + `\s+password (\S+)`).FindSubmatch(netrc)
		if m == nil {
			t.Fatalf("~/.netrc has no entry for machine %s login %s:\n%s", machine, email, netrc)
		}
		saved := string(m[1])

		// The saved credentials work.
		res = h.ok(t, "auth:whoami")
		wantEqual(t, res, "stdout", email+"\n")
		res = h.ok(t, "auth:token")
		wantEqual(t, res, "stdout", saved+"\n")
	})

	t.Run("with an API token as the password", func(t *testing.T) {
		h := srv.heroku(t, "")
		res := h.runDialogue(t, []answer{{"Email", email}, {"Password", token}}, "login", "-i")
		if res.Code != 0 {
			t.Fatalf("%s", res.describe("exit status 0"))
		}
		wantContains(t, res, "stdout", "Logged in as "+email)
		res = h.ok(t, "auth:whoami")
		wantEqual(t, res, "stdout", email+"\n")
	})

	t.Run("with a wrong password", func(t *testing.T) {
		h := srv.heroku(t, "")
		res := h.runDialogue(t, []answer{{"Email", email}, {"Password", "wrong password"}}, "login", "-i")
		if res.Code == 0 {
			t.Fatalf("%s", res.describe("a non-zero exit status"))
		}
		wantContains(t, res, "stderr", "Error ID: unauthorized")
		wantNotContains(t, res, "stdout", "Logged in")
		if _, err := os.Stat(filepath.Join(h.home, ".netrc")); err == nil {
			t.Errorf("a failed login wrote ~/.netrc")
		}
	})
}

// TestHerokuAccessErrors checks the error paths the CLI shows: another
// account's app, an app that does not exist, and an invalid token.
func TestHerokuAccessErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	admin := srv.heroku(t, srv.AdminToken)
	admin.ok(t, "apps:create", "admins-app")
	admin.ok(t, "config:set", "SECRET=kept", "-a", "admins-app")

	other := srv.heroku(t, srv.createAccount(t, "other@example.com", ""))

	t.Run("another account's app", func(t *testing.T) {
		// docs/api.md: an app that exists but is not yours is 403 forbidden,
		// as on Heroku ("You do not have access to the app NAME.").
		res := other.fails(t, "apps:info", "-a", "admins-app")
		wantContains(t, res, "stderr", "Error ID: forbidden")
		wantContains(t, res, "stderr", "admins-app")
		res = other.fails(t, "config:set", "SECRET=stolen", "-a", "admins-app")
		wantContains(t, res, "stderr", "Error ID: forbidden")
		var cfg map[string]string
		srv.apiJSON(t, srv.AdminToken, "GET", "/apps/admins-app/config-vars", nil, "", http.StatusOK, &cfg)
		if cfg["SECRET"] != "kept" {
			t.Errorf("SECRET after the other account's config:set = %q, want kept", cfg["SECRET"])
		}
		// Its list does not show the admin's app.
		res = other.ok(t, "apps")
		wantEqual(t, res, "stdout", "You have no apps.\n")
	})

	t.Run("an app that does not exist", func(t *testing.T) {
		res := admin.fails(t, "apps:info", "-a", "no-such-app")
		wantContains(t, res, "stderr", "Error ID: not_found")
	})

	t.Run("an invalid token", func(t *testing.T) {
		bad := srv.heroku(t, "skf_"+strings.Repeat("0", 64))
		// @heroku-cli/command/lib/api-client.js: a 401 with HEROKU_API_KEY set
		res := bad.fails(t, "apps")
		wantContains(t, res, "stderr", "The token provided to HEROKU_API_KEY is invalid")
		// auth:whoami asks with retryAuth:false and shows the API's error.
		res = bad.fails(t, "auth:whoami")
		wantContains(t, res, "stderr", "Error ID: unauthorized")
	})
}
