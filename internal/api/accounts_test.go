package api

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

type createdAccount struct {
	accountJSON
	AccessToken struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	} `json:"access_token"`
}

func TestGetAccountAndUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acct := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/account", e.admin.Token, nil))
	if acct.Email != adminEmail || acct.ID != e.admin.ID || !acct.Admin || !acct.Verified {
		t.Errorf("admin account = %+v", acct)
	}
	bob := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/account", e.bob.Token, nil))
	if bob.Email != bobEmail || bob.Admin {
		t.Errorf("bob's account = %+v", bob)
	}
	// The account JSON carries the fields the CLI reads, with null for
	// those Skiff has no value for.
	m := decodeAs[map[string]any](t, e.must(http.StatusOK, "GET", "/account", e.bob.Token, nil))
	for _, k := range []string{"email", "id", "created_at", "updated_at", "verified", "delinquent_at", "suspended_at", "two_factor_authentication"} {
		if _, ok := m[k]; !ok {
			t.Errorf("account JSON lacks %q: %v", k, m)
		}
	}
	for _, ident := range []string{"~", e.bob.ID, bobEmail} {
		u := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/users/"+ident, e.bob.Token, nil))
		if u.ID != e.bob.ID {
			t.Errorf("/users/%s = %+v", ident, u)
		}
	}
	// Another account is not visible, by id or by email.
	for _, ident := range []string{e.admin.ID, adminEmail, "nobody@example.com"} {
		checkError(t, e.do("GET", "/users/"+ident, e.bob.Token, nil), http.StatusNotFound, "not_found")
		checkError(t, e.do("GET", "/users/"+ident+"/apps", e.bob.Token, nil), http.StatusNotFound, "not_found")
	}
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// Only an admin may create accounts.
	before := e.dump()
	checkError(t, e.do("POST", "/accounts", e.bob.Token, map[string]any{"email": "carol@example.com"}), http.StatusForbidden, "forbidden")
	e.unchanged(before)

	for _, tc := range []struct {
		name, body string
		status     int
		id         string
	}{
		{"no email", `{}`, 422, "invalid_params"},
		{"empty email", `{"email": ""}`, 422, "invalid_params"},
		{"not an address", `{"email": "carol"}`, 422, "invalid_params"},
		{"display name form", `{"email": "Carol <carol@example.com>"}`, 422, "invalid_params"},
		{"existing email", `{"email": "bob@example.com"}`, 409, "conflict"},
		{"existing email, other case", `{"email": "BOB@example.com"}`, 409, "conflict"},
		{"password too long", `{"email": "carol@example.com", "password": "` + strings.Repeat("p", 73) + `"}`, 422, "invalid_params"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("POST", "/accounts", e.admin.Token, tc.body), tc.status, tc.id)
		})
	}
	e.unchanged(before)

	// A token-only account: its first token is returned once and works.
	r := e.must(http.StatusCreated, "POST", "/accounts", e.admin.Token, map[string]any{"email": "Carol@Example.com"})
	created := decodeAs[createdAccount](t, r)
	if created.Email != "carol@example.com" || created.Admin || created.AccessToken.Token == "" || created.AccessToken.ID == "" {
		t.Fatalf("created account = %+v", created)
	}
	me := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/account", created.AccessToken.Token, nil))
	if me.ID != created.ID || me.Email != "carol@example.com" {
		t.Errorf("the new token authenticates as %+v", me)
	}
	// The new account sees none of the other accounts' apps and may not
	// create accounts itself.
	e.createApp(e.admin.Token, "adminsapp")
	if apps := decodeAs[[]appJSON](t, e.must(http.StatusOK, "GET", "/apps", created.AccessToken.Token, nil)); len(apps) != 0 {
		t.Errorf("new account sees %d apps", len(apps))
	}
	checkError(t, e.do("POST", "/accounts", created.AccessToken.Token, map[string]any{"email": "dave@example.com"}), http.StatusForbidden, "forbidden")
}

// TestLoginWithPassword covers `heroku login -i`: Basic email:password
// gets a new token. It creates the only passworded account of the API
// tests; each bcrypt operation costs about a second under -race.
func TestLoginWithPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(http.StatusCreated, "POST", "/accounts", e.admin.Token, map[string]any{"email": "pat@example.com", "password": "correct horse"})

	body := map[string]any{"description": "Heroku CLI login from host", "expires_in": 2592000, "scope": []string{"global"}}
	// The email is matched without regard to case.
	r := e.must(http.StatusCreated, "POST", "/oauth/authorizations", "", body, "Authorization", basic("PAT@example.com", "correct horse"))
	auth := decodeAs[authorizationJSON](t, r)
	if auth.User.Email != "pat@example.com" || auth.AccessToken.Token == nil || *auth.AccessToken.Token == "" {
		t.Fatalf("login answer = %+v", auth)
	}
	if auth.AccessToken.ExpiresIn == nil || *auth.AccessToken.ExpiresIn < 2591990 || *auth.AccessToken.ExpiresIn > 2592000 {
		t.Errorf("expires_in = %v, want about 2592000", auth.AccessToken.ExpiresIn)
	}
	if auth.Description != "Heroku CLI login from host" {
		t.Errorf("description = %q", auth.Description)
	}
	me := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/account", *auth.AccessToken.Token, nil))
	if me.Email != "pat@example.com" {
		t.Errorf("login token is %s's", me.Email)
	}

	before := e.dump()
	for _, tc := range []struct{ name, auth string }{
		{"wrong password", basic("pat@example.com", "wrong horse")},
		{"unknown email", basic("nobody@example.com", "correct horse")},
		{"another account's token", basic("pat@example.com", e.bob.Token)},
		{"no credentials", ""},
		{"not base64", "Basic %%%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, e.do("POST", "/oauth/authorizations", "", body, "Authorization", tc.auth), http.StatusUnauthorized, "unauthorized")
		})
	}
	e.unchanged(before)
}

func TestLoginWithToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The admin has no password; its token serves as one.
	r := e.must(http.StatusCreated, "POST", "/oauth/authorizations", "", `{"description":"cli"}`, "Authorization", basic(adminEmail, e.admin.Token))
	auth := decodeAs[authorizationJSON](t, r)
	if auth.AccessToken.Token == nil || *auth.AccessToken.Token == e.admin.Token {
		t.Fatalf("login did not issue a new token: %+v", auth)
	}
	if auth.AccessToken.ExpiresIn != nil {
		t.Errorf("token without expires_in expires in %d", *auth.AccessToken.ExpiresIn)
	}
	e.must(http.StatusOK, "GET", "/account", *auth.AccessToken.Token, nil)
	// A passwordless account cannot log in with some other password.
	checkError(t, e.do("POST", "/oauth/authorizations", "", nil, "Authorization", basic(adminEmail, "")), http.StatusUnauthorized, "unauthorized")
	checkError(t, e.do("POST", "/oauth/authorizations", "", nil, "Authorization", basic(adminEmail, "skf_nope")), http.StatusUnauthorized, "unauthorized")

	// With a bearer token, POST mints another token for the same account.
	r = e.must(http.StatusCreated, "POST", "/oauth/authorizations", e.bob.Token, map[string]any{"description": "ci"})
	other := decodeAs[authorizationJSON](t, r)
	if other.User.ID != e.bob.ID || other.AccessToken.Token == nil {
		t.Fatalf("minted = %+v", other)
	}
	checkError(t, e.do("POST", "/oauth/authorizations", e.bob.Token, `{"expires_in": -1}`), http.StatusUnprocessableEntity, "invalid_params")
}

func TestAuthorizations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	minted := decodeAs[authorizationJSON](t, e.must(http.StatusCreated, "POST", "/oauth/authorizations", e.bob.Token, map[string]any{"description": "second"}))
	second := *minted.AccessToken.Token

	list := decodeAs[[]authorizationJSON](t, e.must(http.StatusOK, "GET", "/oauth/authorizations", e.bob.Token, nil))
	if len(list) != 2 {
		t.Fatalf("bob has %d authorizations, want 2", len(list))
	}
	// Only the presented token's secret is shown: the others are stored
	// hashed and cannot be.
	shown := 0
	for _, a := range list {
		if a.User.ID != e.bob.ID {
			t.Errorf("authorization of %s listed for bob", a.User.Email)
		}
		if a.AccessToken.Token != nil {
			shown++
			if *a.AccessToken.Token != e.bob.Token {
				t.Errorf("listed secret is not the presented one")
			}
		}
	}
	if shown != 1 {
		t.Errorf("%d secrets shown, want 1", shown)
	}

	// "~" is the current token.
	cur := decodeAs[authorizationJSON](t, e.must(http.StatusOK, "GET", "/oauth/authorizations/~", second, nil))
	if cur.ID != minted.ID || cur.AccessToken.Token == nil || *cur.AccessToken.Token != second {
		t.Errorf("~ = %+v, want %s", cur, minted.ID)
	}
	byID := decodeAs[authorizationJSON](t, e.must(http.StatusOK, "GET", "/oauth/authorizations/"+minted.ID, e.bob.Token, nil))
	if byID.Description != "second" {
		t.Errorf("by id = %+v", byID)
	}
	// Another account's authorization is not found, and cannot be revoked.
	before := e.dump()
	checkError(t, e.do("GET", "/oauth/authorizations/"+minted.ID, e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("DELETE", "/oauth/authorizations/"+minted.ID, e.admin.Token, nil), http.StatusNotFound, "not_found")
	checkError(t, e.do("GET", "/oauth/authorizations/nope", e.bob.Token, nil), http.StatusNotFound, "not_found")
	e.unchanged(before)

	// `heroku logout`: delete the session, then revoke the current token.
	e.must(http.StatusOK, "DELETE", "/oauth/sessions/~", second, nil)
	e.must(http.StatusOK, "DELETE", "/oauth/authorizations/"+minted.ID, second, nil)
	checkError(t, e.do("GET", "/account", second, nil), http.StatusUnauthorized, "unauthorized")
	e.must(http.StatusOK, "GET", "/account", e.bob.Token, nil)
	e.must(http.StatusOK, "DELETE", "/oauth/authorizations/~", e.bob.Token, nil)
	checkError(t, e.do("GET", "/account", e.bob.Token, nil), http.StatusUnauthorized, "unauthorized")
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	e := newEnv(t, withClock(clock))
	a := decodeAs[authorizationJSON](t, e.must(http.StatusCreated, "POST", "/oauth/authorizations", e.bob.Token, map[string]any{"expires_in": 60}))
	if a.AccessToken.ExpiresIn == nil || *a.AccessToken.ExpiresIn != 60 {
		t.Fatalf("expires_in = %v, want 60", a.AccessToken.ExpiresIn)
	}
	tok := *a.AccessToken.Token
	clock.Advance(59 * time.Second)
	got := decodeAs[authorizationJSON](t, e.must(http.StatusOK, "GET", "/oauth/authorizations/~", tok, nil))
	if got.AccessToken.ExpiresIn == nil || *got.AccessToken.ExpiresIn != 1 {
		t.Errorf("expires_in after 59s = %v, want 1", got.AccessToken.ExpiresIn)
	}
	clock.Advance(time.Second)
	checkError(t, e.do("GET", "/account", tok, nil), http.StatusUnauthorized, "unauthorized")
	// An expired token does not serve as a password either.
	checkError(t, e.do("POST", "/oauth/authorizations", "", nil, "Authorization", basic(bobEmail, tok)), http.StatusUnauthorized, "unauthorized")
	e.must(http.StatusOK, "GET", "/account", e.bob.Token, nil) // no expiry
}

func TestBasicAuthWithTokenAsPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// `heroku container:release` and git send the token as a Basic password.
	for _, u := range []string{"", "_", "heroku", bobEmail} {
		me := decodeAs[accountJSON](t, e.must(http.StatusOK, "GET", "/account", "", nil, "Authorization", basic(u, e.bob.Token)))
		if me.ID != e.bob.ID {
			t.Errorf("user %q: authenticated as %s", u, me.Email)
		}
	}
}

// TestTokensStoredHashed opens the SQLite file and checks no secret is in it.
func TestTokensStoredHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	minted := decodeAs[authorizationJSON](t, e.must(http.StatusCreated, "POST", "/oauth/authorizations", e.bob.Token, nil))
	secrets := []string{e.admin.Token, e.bob.Token, *minted.AccessToken.Token}
	for _, s := range secrets {
		if !strings.HasPrefix(s, "skf_") || len(s) < 40 {
			t.Errorf("token %q does not look like a Skiff token", s)
		}
		if n := e.count(`SELECT count(*) FROM tokens WHERE hash = ? OR id = ? OR description = ? OR instr(hash, ?) > 0`, s, s, s, s[4:]); n != 0 {
			t.Errorf("a secret is stored in clear in the tokens table")
		}
		if n := e.count(`SELECT count(*) FROM tokens WHERE hash = ?`, platform.HashToken(s)); n != 1 {
			t.Errorf("the token's hash is stored %d times, want 1", n)
		}
	}
	if n := e.count(`SELECT count(*) FROM tokens`); n != 3 {
		t.Errorf("tokens table has %d rows, want 3", n)
	}
	// Nowhere in the database files either (main file and write-ahead log).
	files, _ := filepath.Glob(e.path + "*")
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s[4:])) {
				t.Errorf("%s contains a token secret", filepath.Base(f))
			}
		}
	}
}
