package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The scenario of the official-CLI end-to-end test, through the `skiff`
// client (the same binary as the server) against a real `skiff server`:
// Heroku's command names, flags and output shapes.

// skiffClient runs the skiff client as one user, with its own HOME (where
// its login file lives) and, unless token is empty, SKIFF_API_KEY.
type skiffClient struct {
	srv   *server
	token string
	home  string
	extra []string // more environment, e.g. HEROKU_APP=…
}

func (s *server) skiffUser(t *testing.T, token string) *skiffClient {
	t.Helper()
	return &skiffClient{srv: s, token: token, home: t.TempDir()}
}

// env is the whole environment: nothing is inherited but PATH, so the
// developer's SKIFF_* and HEROKU_* settings cannot leak in.
func (c *skiffClient) env() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"SKIFF_API_URL=" + c.srv.URL,
	}
	if c.token != "" {
		env = append(env, "SKIFF_API_KEY="+c.token)
	}
	return append(env, c.extra...)
}

func (c *skiffClient) run(t *testing.T, args ...string) result {
	t.Helper()
	return runProcess(t, skiffBinary(t), args, c.env(), nil)
}

func (c *skiffClient) ok(t *testing.T, args ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	return res
}

// fails runs the client, wants exit status 1 and an error in Heroku's
// shape (" ▸    message") on stderr, and returns the result.
func (c *skiffClient) fails(t *testing.T, args ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.Code != 1 {
		t.Fatalf("%s", res.describe("exit status 1"))
	}
	wantMatch(t, res, "stderr", `^ ▸    \S`)
	return res
}

// skiffDeployImages gives app the process types web and worker, as `heroku
// container:release` does, and returns the release description it creates.
func skiffDeployImages(t *testing.T, s *server, token, app string) string {
	t.Helper()
	web := "sha256:" + strings.Repeat("ab12", 16)
	worker := "sha256:" + strings.Repeat("cd34", 16)
	body := map[string]any{"updates": []map[string]string{
		{"type": "web", "docker_image": web},
		{"type": "worker", "docker_image": worker},
	}}
	s.apiJSON(t, token, "PATCH", "/apps/"+app+"/formation", body,
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	return "Deploy " + strings.TrimPrefix(web, "sha256:")[:8]
}

// skiffReleaseRow matches one row of the `releases` table: version,
// description, email and when.
func skiffReleaseRow(version int, description, email string) string {
	return fmt.Sprintf(`^  v%d +%s +%s +\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4} \(~ \d+[smh] ago\)$`,
		version, regexp.QuoteMeta(description), regexp.QuoteMeta(email))
}

func TestSkiffClient(t *testing.T) {
	s := startServer(t)
	const email = "dev@example.org"
	devToken := s.createAccount(t, email, "correct horse")
	dev := s.skiffUser(t, devToken)

	t.Run("auth", func(t *testing.T) {
		wantEqual(t, dev.ok(t, "auth:whoami"), "stdout", email+"\n")
		wantEqual(t, dev.ok(t, "auth:token"), "stdout", devToken+"\n")
		wantEqual(t, dev.ok(t, "apps"), "stdout", "You have no apps.\n")
	})

	t.Run("apps:create", func(t *testing.T) {
		res := dev.ok(t, "apps:create", "myapp")
		wantEqual(t, res, "stderr", "Creating ⬢ myapp... done\n")
		wantMatch(t, res, "stdout", `^http://myapp\.localhost/ \| https://\S+/myapp\.git\n$`)

		res = dev.ok(t, "apps:create")
		m := wantMatch(t, res, "stderr", `^Creating app\.\.\. done, ⬢ ([a-z][a-z0-9-]+)\n$`)
		if m == nil {
			t.FailNow()
		}
		generated := m[1]
		wantMatch(t, res, "stdout", `^http://`+generated+`\.localhost/ \| https://\S+/`+generated+`\.git\n$`)

		res = dev.fails(t, "apps:create", "myapp")
		wantContains(t, res, "stderr", "Creating ⬢ myapp... !\n")
		wantContains(t, res, "stderr", " ▸    Name myapp is already taken\n")

		res = dev.ok(t, "apps")
		names := []string{"myapp", generated}
		if generated < "myapp" {
			names = []string{generated, "myapp"}
		}
		wantEqual(t, res, "stdout", "=== "+email+" Apps\n\n"+strings.Join(names, "\n")+"\n")

		var apps []struct {
			Name  string `json:"name"`
			Owner struct {
				Email string `json:"email"`
			} `json:"owner"`
		}
		if err := json.Unmarshal([]byte(dev.ok(t, "apps", "--json").Stdout), &apps); err != nil {
			t.Fatalf("apps --json: %v", err)
		}
		if len(apps) != 2 || apps[0].Name != names[0] || apps[1].Owner.Email != email {
			t.Errorf("apps --json = %+v", apps)
		}
		dev.ok(t, "apps:destroy", generated, "--confirm", generated)
	})

	t.Run("apps:info", func(t *testing.T) {
		res := dev.ok(t, "apps:info", "-a", "myapp")
		wantMatch(t, res, "stdout", `^=== myapp\n\nAuto Cert Mgmt: false\nGit URL:        https://\S+/myapp\.git\nWeb URL:        http://myapp\.localhost/\n`)
		wantContains(t, res, "stdout", "\nOwner:          "+email+"\nRegion:         us\n")
		wantContains(t, res, "stdout", "\nStack:          container\n")

		// the app may also be the argument, as in Heroku's CLI
		res = dev.ok(t, "apps:info", "myapp", "--json")
		var info struct {
			App struct {
				Name   string `json:"name"`
				WebURL string `json:"web_url"`
			} `json:"app"`
			Addons []any `json:"addons"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &info); err != nil {
			t.Fatalf("apps:info --json: %v\n%s", err, res.Stdout)
		}
		if info.App.Name != "myapp" || info.App.WebURL != "http://myapp.localhost/" || info.Addons == nil {
			t.Errorf("apps:info --json = %+v", info)
		}
		res = dev.ok(t, "apps:info", "--shell", "-a", "myapp")
		wantContains(t, res, "stdout", "owner="+email+"\n")
		wantContains(t, res, "stdout", "dynos={}\n")
	})

	t.Run("config", func(t *testing.T) {
		// flags before, between and after the arguments
		res := dev.ok(t, "config:set", "A=1", "B=two words", "-a", "myapp")
		wantEqual(t, res, "stderr", "Setting A, B and restarting ⬢ myapp... done, v3\n")
		wantEqual(t, res, "stdout", "A: 1\nB: two words\n")

		wantEqual(t, dev.ok(t, "config", "-a", "myapp"), "stdout", "=== myapp Config Vars\n\nA: 1\nB: two words\n")
		wantEqual(t, dev.ok(t, "config", "--shell", "-a", "myapp"), "stdout", "A=1\nB='two words'\n")
		var cfg map[string]string
		if err := json.Unmarshal([]byte(dev.ok(t, "config", "-a", "myapp", "--json").Stdout), &cfg); err != nil || len(cfg) != 2 || cfg["B"] != "two words" {
			t.Errorf("config --json = %v, %v", cfg, err)
		}
		wantEqual(t, dev.ok(t, "config:get", "-a", "myapp", "B"), "stdout", "two words\n")
		wantEqual(t, dev.ok(t, "config:get", "NOPE", "-a", "myapp"), "stdout", "\n")

		res = dev.ok(t, "config:unset", "A", "-a", "myapp")
		wantEqual(t, res, "stderr", "Unsetting A and restarting ⬢ myapp... done, v4\n")
		wantEqual(t, dev.ok(t, "config", "-a", "myapp"), "stdout", "=== myapp Config Vars\n\nB: two words\n")

		res = dev.fails(t, "config:set", "NOEQUALS", "-a", "myapp")
		wantContains(t, res, "stderr", " ▸    NOEQUALS is invalid. Must be in the format FOO=bar.\n")
		res = dev.fails(t, "config:set", "bad-key=1", "-a", "myapp")
		wantContains(t, res, "stderr", "Setting bad-key and restarting ⬢ myapp... !\n")
	})

	var deployed string
	t.Run("releases", func(t *testing.T) {
		deployed = skiffDeployImages(t, s, devToken, "myapp") // v5
		res := dev.ok(t, "releases", "-a", "myapp")
		wantMatch(t, res, "stdout", `^=== myapp Releases - Current: v5\n\n  v +description +user +created_at\n ─+\n`)
		for v, desc := range map[int]string{5: deployed, 4: "Remove A config vars", 3: "Set A, B config vars", 2: "Enable Logplex", 1: "Initial release"} {
			wantMatch(t, res, "stdout", skiffReleaseRow(v, desc, email))
		}
		if got := regexp.MustCompile(`(?m)^  v(\d+) `).FindAllStringSubmatch(res.Stdout, -1); len(got) != 5 || got[0][1] != "5" || got[4][1] != "1" {
			t.Errorf("releases not listed newest first: %q", got)
		}

		res = dev.ok(t, "releases", "-n", "2", "-a", "myapp")
		if n := len(regexp.MustCompile(`(?m)^  v\d+ `).FindAllString(res.Stdout, -1)); n != 2 {
			t.Errorf("releases -n 2 listed %d releases:\n%s", n, res.Stdout)
		}
		var rels []struct {
			Version     int    `json:"version"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal([]byte(dev.ok(t, "releases", "--json", "-a", "myapp").Stdout), &rels); err != nil || len(rels) != 5 || rels[0].Version != 5 {
			t.Errorf("releases --json = %+v, %v", rels, err)
		}

		res = dev.ok(t, "releases:info", "v3", "-a", "myapp")
		wantMatch(t, res, "stdout", `^=== Release v3\n\nBy:                     `+regexp.QuoteMeta(email)+`\nChange:                 Set A, B config vars\nEligible for Rollback\?: Yes\nWhen:                   \S+\n\n=== v3 Config vars\n\nA: 1\nB: two words\n$`)
		res = dev.ok(t, "releases:info", "-a", "myapp")
		wantContains(t, res, "stdout", "=== Release v5\n")
		wantContains(t, res, "stdout", "Change:                 "+deployed+"\n")
		dev.fails(t, "releases:info", "v99", "-a", "myapp")
	})

	t.Run("rollback", func(t *testing.T) {
		// without an argument: the second eligible release of the latest, v4
		res := dev.ok(t, "rollback", "-a", "myapp")
		wantContains(t, res, "stderr", "Rolling back ⬢ myapp to v4... done, v6\n")
		res = dev.ok(t, "rollback", "v3", "-a", "myapp")
		wantContains(t, res, "stderr", "Rolling back ⬢ myapp to v3... done, v7\n")
		wantContains(t, res, "stderr", "skiff rollback v6")
		// v3's config vars are back
		wantEqual(t, dev.ok(t, "config:get", "A", "-a", "myapp"), "stdout", "1\n")
		res = dev.ok(t, "releases", "-a", "myapp")
		wantContains(t, res, "stdout", "=== myapp Releases - Current: v7\n")
		wantMatch(t, res, "stdout", skiffReleaseRow(7, "Rollback to v3", email))
		wantMatch(t, res, "stdout", skiffReleaseRow(6, "Rollback to v4", email))
	})

	t.Run("ps:scale", func(t *testing.T) {
		wantEqual(t, dev.ok(t, "ps:scale", "-a", "myapp"), "stdout", "web=1:Standard-1X worker=0:Standard-1X\n")
		res := dev.ok(t, "ps:scale", "web=2", "worker+1", "-a", "myapp")
		wantEqual(t, res, "stderr", "Scaling dynos... done, now running web at 2:Standard-1X, worker at 1:Standard-1X\n")
		res = dev.ok(t, "ps:scale", "-a", "myapp", "web=3:standard-2x", "worker-1")
		wantEqual(t, res, "stderr", "Scaling dynos... done, now running web at 3:Standard-2X, worker at 0:Standard-1X\n")
		wantEqual(t, dev.ok(t, "ps:scale", "-a", "myapp"), "stdout", "web=3:Standard-2X worker=0:Standard-1X\n")

		res = dev.fails(t, "ps:scale", "web=x", "-a", "myapp")
		wantContains(t, res, "stderr", `"web=x"`)
		res = dev.fails(t, "ps:scale", "web=1:Huge-9X", "-a", "myapp")
		wantContains(t, res, "stderr", "Scaling dynos... !\n")
		// scaling creates no release
		wantContains(t, dev.ok(t, "releases", "-a", "myapp"), "stdout", "Current: v7\n")
	})

	t.Run("ps:type", func(t *testing.T) {
		res := dev.ok(t, "ps:type", "-a", "myapp")
		wantMatch(t, res, "stdout", `^=== Process Types\n\n  type +size +qty\n ─+\n  web +Standard-2X +3\n  worker +Standard-1X +0\n\n\n=== Dyno Totals\n\n  type +total\n ─+\n  Standard-2X +3\n  Standard-1X +0\n\n$`)
		res = dev.ok(t, "ps:type", "standard-1x", "-a", "myapp")
		wantEqual(t, res, "stderr", "Scaling dynos on ⬢ myapp... done\n")
		wantMatch(t, res, "stdout", `\n  web +Standard-1X +3\n  worker +Standard-1X +0\n`)
		wantMatch(t, res, "stdout", `\n  Standard-1X +3\n\n$`)
		res = dev.ok(t, "ps:type", "worker=Standard-2X", "-a", "myapp")
		wantMatch(t, res, "stdout", `\n  worker +Standard-2X +0\n`)
		res = dev.fails(t, "ps:type", "clock=eco", "-a", "myapp")
		wantContains(t, res, "stderr", " ▸    Type clock not found in process formation.\n ▸    Types: web, worker\n")
	})

	t.Run("maintenance", func(t *testing.T) {
		wantEqual(t, dev.ok(t, "maintenance", "-a", "myapp"), "stdout", "off\n")
		wantEqual(t, dev.ok(t, "maintenance:on", "-a", "myapp"), "stderr", "Enabling maintenance mode for ⬢ myapp... done\n")
		wantEqual(t, dev.ok(t, "maintenance", "-a", "myapp"), "stdout", "on\n")
		wantEqual(t, dev.ok(t, "maintenance:off", "-a", "myapp"), "stderr", "Disabling maintenance mode for ⬢ myapp... done\n")
		wantEqual(t, dev.ok(t, "maintenance", "-a", "myapp"), "stdout", "off\n")
	})

	t.Run("features", func(t *testing.T) {
		res := dev.ok(t, "features", "-a", "myapp")
		wantContains(t, res, "stdout", "=== App Features myapp\n\n")
		wantMatch(t, res, "stdout", `^\[ \] preboot +\S`)
		wantEqual(t, dev.ok(t, "features:enable", "preboot", "-a", "myapp"), "stderr", "Enabling preboot for ⬢ myapp... done\n")
		wantMatch(t, dev.ok(t, "features", "-a", "myapp"), "stdout", `^\[\+\] preboot +\S`)
		res = dev.fails(t, "features:enable", "preboot", "-a", "myapp")
		wantContains(t, res, "stderr", " ▸    preboot is already enabled.\n")
		res = dev.ok(t, "features:info", "preboot", "-a", "myapp")
		wantMatch(t, res, "stdout", `^=== preboot\n\nDescription: \S.*\nDocs:        \S+\nEnabled:     true\n$`)
		wantEqual(t, dev.ok(t, "features:disable", "preboot", "-a", "myapp"), "stderr", "Disabling preboot for ⬢ myapp... done\n")
		wantContains(t, dev.ok(t, "features:info", "preboot", "-a", "myapp"), "stdout", "Enabled:     false\n")
	})

	t.Run("catalogue", func(t *testing.T) {
		wantMatch(t, dev.ok(t, "regions"), "stdout", `^  ID +Location +Runtime\n ─+\n  us +\S.* +Common Runtime\n`)
		wantContains(t, dev.ok(t, "stacks"), "stdout", "container")
		wantEqual(t, dev.ok(t, "stacks", "-a", "myapp"), "stdout", "=== myapp Available Stacks\n\n* container\n")
		res := dev.ok(t, "dyno-sizes")
		wantMatch(t, res, "stdout", `\n  Standard-1X +512 MB +1 +1x +256 +no\n`)
		wantMatch(t, res, "stdout", `\n  Performance-M +2\.5 GB +`)
		wantNotContains(t, res, "stdout", "Private-S")
	})

	t.Run("app from the environment", func(t *testing.T) {
		withEnv := *dev
		withEnv.extra = []string{"HEROKU_APP=myapp"}
		wantEqual(t, withEnv.ok(t, "maintenance"), "stdout", "off\n")
		withEnv.extra = []string{"HEROKU_APP=nosuchapp", "SKIFF_APP=myapp"}
		wantEqual(t, withEnv.ok(t, "maintenance"), "stdout", "off\n")
	})

	t.Run("errors", func(t *testing.T) {
		res := dev.fails(t, "config")
		wantContains(t, res, "stderr", " ▸    Missing required flag app\n")
		res = dev.fails(t, "config", "-a", "nosuchapp")
		wantEqual(t, res, "stderr", " ▸    Couldn't find that app.\n ▸\n ▸    Error ID: not_found\n")

		// another account's app
		admin := s.skiffUser(t, s.AdminToken)
		admin.ok(t, "apps:create", "adminapp")
		res = dev.fails(t, "config", "-a", "adminapp")
		wantContains(t, res, "stderr", " ▸    Error ID: forbidden\n")
		res = dev.fails(t, "config:set", "X=1", "-a", "adminapp")
		wantNotContains(t, admin.ok(t, "config", "-a", "adminapp"), "stdout", "X")
		wantNotContains(t, dev.ok(t, "apps"), "stdout", "adminapp")

		res = dev.fails(t, "config", "-a", "myapp", "--bogus")
		wantContains(t, res, "stderr", "Nonexistent flag: --bogus")
		res = dev.fails(t, "no-such-command")
		wantContains(t, res, "stderr", "no-such-command is not a skiff command")
		wrong := s.skiffUser(t, "skf_not-a-token")
		res = wrong.fails(t, "apps")
		wantContains(t, res, "stderr", " ▸    Invalid credentials provided.\n")
	})

	t.Run("apps:rename and apps:destroy", func(t *testing.T) {
		res := dev.ok(t, "apps:rename", "myapp2", "-a", "myapp")
		wantContains(t, res, "stderr", "Renaming ⬢ myapp to myapp2... done\n")
		wantMatch(t, res, "stdout", `^http://myapp2\.localhost/ \| https://\S+/myapp2\.git\n$`)
		dev.fails(t, "apps:info", "-a", "myapp")

		res = dev.fails(t, "apps:destroy", "-a", "myapp2")
		wantContains(t, res, "stderr", "--confirm myapp2")
		res = dev.fails(t, "apps:destroy", "-a", "myapp2", "--confirm", "myapp")
		wantContains(t, res, "stderr", " ▸    Confirmation myapp did not match myapp2. Aborted.\n")
		dev.ok(t, "apps:info", "-a", "myapp2") // still there

		res = dev.ok(t, "apps:destroy", "-a", "myapp2", "--confirm", "myapp2")
		wantEqual(t, res, "stderr", "Destroying ⬢ myapp2 (including all add-ons)... done\n")
		res = dev.fails(t, "apps:info", "-a", "myapp2")
		wantContains(t, res, "stderr", " ▸    Couldn't find that app.\n")
		wantEqual(t, dev.ok(t, "apps"), "stdout", "You have no apps.\n")
	})
}

// TestSkiffClientLogin logs in interactively (email and password on the
// terminal), uses the saved login with no token in the environment, and
// logs out, which revokes the token on the server.
func TestSkiffClientLogin(t *testing.T) {
	s := startServer(t)
	const email, password = "login@example.org", "s3cret pass"
	s.createAccount(t, email, password)
	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir(), "LANG=C.UTF-8"}
	skiff := func(answers []answer, args ...string) result {
		t.Helper()
		return runProcess(t, skiffBinary(t), args, env, answers)
	}

	// Without a login: a clear error.
	res := skiff(nil, "apps")
	if res.Code != 1 {
		t.Fatalf("%s", res.describe("exit status 1"))
	}
	wantContains(t, res, "stderr", "skiff login")

	// A wrong password changes nothing.
	res = skiff([]answer{{"Email: ", email}, {"Password: ", "wrong"}}, "login", "--api-url", s.URL)
	if res.Code != 1 {
		t.Fatalf("%s", res.describe("exit status 1"))
	}
	wantContains(t, res, "stderr", " ▸    Invalid credentials provided.\n")

	res = skiff([]answer{{"Email: ", email}, {"Password: ", password}}, "login", "--api-url", s.URL)
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	wantEqual(t, res, "stdout", "Logged in as "+email+"\n")
	wantNotContains(t, res, "stderr", password)

	// The login file holds the API URL and the token: no flags needed.
	wantEqual(t, skiff(nil, "auth:whoami"), "stdout", email+"\n")
	res = skiff(nil, "auth:token")
	token := strings.TrimSpace(res.Stdout)
	if !strings.HasPrefix(token, "skf_") {
		t.Fatalf("%s", res.describe("a token on stdout"))
	}
	var account struct {
		Email string `json:"email"`
	}
	s.apiJSON(t, token, "GET", "/account", nil, "", 200, &account)
	if account.Email != email {
		t.Errorf("GET /account with the login token: %q", account.Email)
	}
	res = skiff(nil, "apps:create", "loginapp")
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}

	res = skiff(nil, "logout")
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	wantEqual(t, res, "stderr", "Logging out... done\n")
	if status, body := s.api(t, token, "GET", "/account", nil, ""); status != 401 {
		t.Errorf("after logout, the token still works: %d %s", status, body)
	}
	res = skiff(nil, "auth:whoami")
	if res.Code == 0 {
		t.Errorf("%s", res.describe("a non-zero exit status after logout"))
	}
	// Logging in again needs no --api-url: the login file kept it.
	res = skiff([]answer{{"Email: ", email}, {"Password: ", password}}, "login")
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	wantContains(t, skiff(nil, "apps"), "stdout", "loginapp\n")
}
