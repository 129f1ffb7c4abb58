package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeAPI answers canned JSON per "METHOD /path" and records requests.
type fakeAPI struct {
	mu       sync.Mutex
	answers  map[string]string
	requests []recorded
}

type recorded struct {
	Method, Path, Body, Range, Auth, Accept string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.Path, string(b), r.Header.Get("Range"), r.Header.Get("Authorization"), r.Header.Get("Accept")})
	answer, ok := f.answers[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"id":"not_found","message":"Couldn't find that app."}`)
		return
	}
	if strings.HasPrefix(answer, "!") { // "!403 {...}": an error status
		code, body, _ := strings.Cut(answer[1:], " ")
		switch code {
		case "401":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
		io.WriteString(w, body)
		return
	}
	io.WriteString(w, answer)
}

func (f *fakeAPI) find(method, path string) *recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.requests {
		if f.requests[i].Method == method && f.requests[i].Path == path {
			return &f.requests[i]
		}
	}
	return nil
}

// runCLI runs the client against api with a fresh login file.
func runCLI(t *testing.T, api *fakeAPI, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Setenv("SKIFF_LOGIN_FILE", filepath.Join(t.TempDir(), "login.json"))
	t.Setenv("SKIFF_API_URL", srv.URL)
	t.Setenv("SKIFF_API_KEY", "tok")
	t.Setenv("SKIFF_APP", "")
	t.Setenv("HEROKU_APP", "")
	var out, errw bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errw)
	return code, out.String(), errw.String()
}

func TestMissingApp(t *testing.T) {
	api := &fakeAPI{}
	code, _, stderr := runCLI(t, api, "", "config")
	if code != 1 || !strings.Contains(stderr, " ▸    Missing required flag app\n") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if len(api.requests) != 0 {
		t.Errorf("made requests: %+v", api.requests)
	}
}

func TestAppFromEnvironment(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{"GET /apps/envapp/config-vars": `{"B":"2","A":"1"}`}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("SKIFF_LOGIN_FILE", filepath.Join(t.TempDir(), "login.json"))
	t.Setenv("SKIFF_API_URL", srv.URL)
	t.Setenv("SKIFF_API_KEY", "tok")
	t.Setenv("SKIFF_APP", "")
	t.Setenv("HEROKU_APP", "envapp")
	var out, errw bytes.Buffer
	if code := Main([]string{"config"}, nil, &out, &errw); code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	if want := "=== envapp Config Vars\n\nB: 2\nA: 1\n"; out.String() != want {
		t.Errorf("stdout %q, want %q (the API's order)", out.String(), want)
	}
}

func TestConfigSet(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{
		"PATCH /apps/myapp/config-vars": `{"A":"1","B":"two words","E":"","OLD":"x"}`,
		"GET /apps/myapp/releases":      `[{"version":7}]`,
	}}
	code, stdout, stderr := runCLI(t, api, "", "config:set", "B=two words", "A=1", "E=", "--app", "myapp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := api.find("PATCH", "/apps/myapp/config-vars").Body; got != `{"B":"two words","A":"1","E":""}` {
		t.Errorf("PATCH body %s: keys must keep the order given", got)
	}
	if got := api.find("GET", "/apps/myapp/releases").Range; got != "version ..; order=desc,max=1" {
		t.Errorf("release lookup Range %q", got)
	}
	if want := "Setting B, A, E and restarting ⬢ myapp... done, v7\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if want := "A: 1\nB: two words\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestConfigUnset(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{
		"PATCH /apps/myapp/config-vars": `{}`,
		"GET /apps/myapp/releases":      `[{"version":8}]`,
	}}
	code, _, stderr := runCLI(t, api, "", "config:unset", "-a", "myapp", "Z", "A")
	if code != 0 || stderr != "Unsetting Z, A and restarting ⬢ myapp... done, v8\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if got := api.find("PATCH", "/apps/myapp/config-vars").Body; got != `{"Z":null,"A":null}` {
		t.Errorf("PATCH body %s", got)
	}
}

func TestPsScale(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{
		"PATCH /apps/myapp/formation": `[{"type":"web","quantity":3,"size":"Standard-2X"},{"type":"worker","quantity":1,"size":"Standard-1X"},{"type":"clock","quantity":1,"size":"Standard-1X"}]`,
	}}
	code, _, stderr := runCLI(t, api, "", "ps:scale", "web=3:Standard-2X", "worker+1", "-a", "myapp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var body struct {
		Updates []map[string]any `json:"updates"`
	}
	if err := json.Unmarshal([]byte(api.find("PATCH", "/apps/myapp/formation").Body), &body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"type": "web", "quantity": "3", "size": "Standard-2X"}, {"type": "worker", "quantity": "+1"}}
	if b1, b2 := mustJSON(body.Updates), mustJSON(want); b1 != b2 {
		t.Errorf("updates %s, want %s (quantities as strings)", b1, b2)
	}
	if want := "Scaling dynos... done, now running web at 3:Standard-2X, worker at 1:Standard-1X\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPsScaleWithoutArguments(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{"GET /apps/myapp/formation": `[{"type":"worker","quantity":0,"size":"Standard-1X"},{"type":"web","quantity":1,"size":"Standard-1X"}]`}}
	code, stdout, _ := runCLI(t, api, "", "ps:scale", "-a", "myapp")
	if code != 0 || stdout != "web=1:Standard-1X worker=0:Standard-1X\n" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	api = &fakeAPI{answers: map[string]string{"GET /apps/empty/formation": `[]`}}
	code, _, stderr := runCLI(t, api, "", "ps:scale", "-a", "empty")
	if code != 1 || !strings.Contains(stderr, " ▸    No process types on ⬢ empty.\n") {
		t.Errorf("empty formation: exit %d, stderr %q", code, stderr)
	}
}

func TestRollbackWithoutArgument(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{
		"GET /apps/myapp/releases": `[{"id":"r6","version":6,"eligible_for_rollback":true,"current":true},
			{"id":"r5","version":5,"eligible_for_rollback":false},
			{"id":"r4","version":4,"eligible_for_rollback":true}]`,
		"POST /apps/myapp/releases": `{"id":"r7","version":7}`,
	}}
	code, _, stderr := runCLI(t, api, "", "rollback", "-a", "myapp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := api.find("GET", "/apps/myapp/releases").Range; got != "version ..; max=10, order=desc" {
		t.Errorf("Range %q", got)
	}
	if got := api.find("POST", "/apps/myapp/releases").Body; got != `{"release":"r4"}` {
		t.Errorf("POST body %s", got)
	}
	if !strings.HasPrefix(stderr, "Rolling back ⬢ myapp to v4... done, v7\n") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestDestroyNeedsConfirm(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{"GET /apps/myapp": `{"name":"myapp"}`, "DELETE /apps/myapp": `{"name":"myapp"}`}}
	code, _, stderr := runCLI(t, api, "", "apps:destroy", "-a", "myapp")
	if code != 1 || !strings.Contains(stderr, "--confirm myapp") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if api.find("DELETE", "/apps/myapp") != nil {
		t.Error("deleted without confirmation")
	}
	code, _, stderr = runCLI(t, api, "", "apps:destroy", "myapp", "--confirm", "myapp")
	if code != 0 || stderr != "Destroying ⬢ myapp (including all add-ons)... done\n" || api.find("DELETE", "/apps/myapp") == nil {
		t.Errorf("confirmed: exit %d, stderr %q", code, stderr)
	}
}

func TestAPIErrorOutput(t *testing.T) {
	code, _, stderr := runCLI(t, &fakeAPI{}, "", "config:get", "X", "-a", "nope")
	want := " ▸    Couldn't find that app.\n ▸\n ▸    Error ID: not_found\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}

func TestLogin(t *testing.T) {
	api := &fakeAPI{answers: map[string]string{
		"POST /oauth/authorizations": `{"id":"auth1","access_token":{"token":"newtok","expires_in":null},"user":{"email":"Dev@Example.org"}}`,
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	loginFile := filepath.Join(t.TempDir(), "login.json")
	t.Setenv("SKIFF_LOGIN_FILE", loginFile)
	t.Setenv("SKIFF_API_URL", "")
	t.Setenv("SKIFF_API_KEY", "")
	var out, errw bytes.Buffer
	code := Main([]string{"login", "--api-url", srv.URL + "/"}, strings.NewReader("dev@example.org\nse:cret\n"), &out, &errw)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	req := api.find("POST", "/oauth/authorizations")
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("dev@example.org:se:cret")); req.Auth != want {
		t.Errorf("Authorization %q, want %q", req.Auth, want)
	}
	if !strings.Contains(req.Body, `"scope":["global"]`) {
		t.Errorf("body %s", req.Body)
	}
	l, err := ReadLogin()
	if err != nil || l.Token != "newtok" || l.APIURL != srv.URL || l.Email != "Dev@Example.org" {
		t.Errorf("login file: %+v, %v", l, err)
	}
	if fi, err := os.Stat(loginFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("login file mode: %v, %v", fi.Mode(), err)
	}
	if out.String() != "Logged in as Dev@Example.org\n" || !strings.Contains(errw.String(), "Email: ") || !strings.Contains(errw.String(), "Password: ") {
		t.Errorf("stdout %q, stderr %q", out.String(), errw.String())
	}

	// logout revokes that token and forgets it
	api.answers["GET /oauth/authorizations/~"] = `{"id":"auth1"}`
	api.answers["DELETE /oauth/authorizations/auth1"] = `{"id":"auth1"}`
	out.Reset()
	errw.Reset()
	if code := Main([]string{"logout"}, nil, &out, &errw); code != 0 || errw.String() != "Logging out... done\n" {
		t.Fatalf("logout: exit %d, stderr %q", code, errw.String())
	}
	if r := api.find("DELETE", "/oauth/authorizations/auth1"); r == nil || r.Auth != "Bearer newtok" {
		t.Errorf("revocation request %+v", r)
	}
	if l, _ := ReadLogin(); l.Token != "" || l.APIURL != srv.URL {
		t.Errorf("login file after logout: %+v", l)
	}
}

func TestLoginFileTokenOnlyForItsServer(t *testing.T) {
	t.Setenv("SKIFF_LOGIN_FILE", filepath.Join(t.TempDir(), "login.json"))
	t.Setenv("SKIFF_API_URL", "")
	t.Setenv("SKIFF_API_KEY", "")
	if _, err := WriteLogin(Login{APIURL: "https://a.example", Token: "secret"}); err != nil {
		t.Fatal(err)
	}
	e := &Env{APIURL: "https://b.example"}
	if err := e.resolve(); err == nil || e.Token != "" {
		t.Errorf("the token for a.example was used for b.example: %q, %v", e.Token, err)
	}
	e = &Env{}
	if err := e.resolve(); err != nil || e.Token != "secret" || e.APIURL != "https://a.example" {
		t.Errorf("resolve from the login file: %+v, %v", e, err)
	}
}

func TestUnknownFlagAndHelp(t *testing.T) {
	code, _, stderr := runCLI(t, &fakeAPI{}, "", "config", "-a", "x", "--bogus")
	if code != 1 || !strings.Contains(stderr, "Nonexistent flag: --bogus") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runCLI(t, &fakeAPI{}, "", "config:set", "--help")
	if code != 0 || !strings.Contains(stdout, "Usage: skiff config:set") || !strings.Contains(stdout, "-a, --app") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t, &fakeAPI{}, "", "help", "scale")
	if code != 0 || !strings.Contains(stdout, "Usage: skiff ps:scale") {
		t.Errorf("help via alias: exit %d, stdout %q", code, stdout)
	}
}
