package platform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/clocktest"
	"github.com/skiffhq/skiff/internal/store"
)

// ---- helpers ----

type fixture struct {
	t     *testing.T
	p     *Platform
	db    *store.DB
	bus   *Bus
	sub   *Subscription
	admin *Account
	token string
	clock *clocktest.Clock
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	bus := NewBus()
	sub := bus.Subscribe(1024)
	p := New(db, bus, append([]Option{WithClock(c.Now)}, opts...)...)
	admin, auth, err := p.EnsureAdmin(context.Background(), "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, p: p, db: db, bus: bus, sub: sub, admin: admin, token: auth.Secret, clock: c}
}

func (f *fixture) account(email string) *Account {
	f.t.Helper()
	a, _, err := f.p.CreateAccount(context.Background(), email, "", false)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) app(name string) *App {
	f.t.Helper()
	app, err := f.p.CreateApp(context.Background(), f.admin, AppSpec{Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	return app
}

func (f *fixture) releases(app string) []*Release {
	f.t.Helper()
	l, err := f.p.Releases(context.Background(), f.admin, app, store.Page{Field: "version", Max: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return l.Releases
}

func (f *fixture) messages() []string {
	var out []string
	for {
		select {
		case e := <-f.sub.C:
			if e.Message != "" {
				out = append(out, e.Message)
			}
		default:
			return out
		}
	}
}

func wantKind(t *testing.T, err error, k Kind) {
	t.Helper()
	pe, ok := AsError(err)
	if !ok {
		t.Fatalf("error %v is not a platform error (want kind %d)", err, k)
	}
	if pe.Kind != k {
		t.Errorf("error %q has kind %d, want %d", pe.Message, pe.Kind, k)
	}
	if pe.Message == "" {
		t.Errorf("error without a message")
	}
}

func str(s string) *string { return &s }

// ---- pure functions ----

func TestParseQuantity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Quantity
		ok   bool
	}{
		{"0", Quantity{0, false}, true},
		{"3", Quantity{3, false}, true},
		{" 3 ", Quantity{3, false}, true},
		{"100", Quantity{100, false}, true},
		{"+2", Quantity{2, true}, true},
		{"-1", Quantity{-1, true}, true},
		{"+0", Quantity{0, true}, true},
		{"-0", Quantity{0, true}, true},
		{"", Quantity{}, false},
		{"abc", Quantity{}, false},
		{"1.5", Quantity{}, false},
		{"++1", Quantity{}, false},
		{"+-1", Quantity{}, false},
		{"1e2", Quantity{}, false},
		{"0x10", Quantity{}, false},
		{"3 dynos", Quantity{}, false},
		{"99999999999999999999", Quantity{}, false},
		{"+", Quantity{}, false},
	} {
		got, err := ParseQuantity(tc.in)
		if tc.ok {
			if err != nil || got != tc.want {
				t.Errorf("ParseQuantity(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseQuantity(%q) = %+v, want an error", tc.in, got)
			continue
		}
		wantKind(t, err, KindInvalid)
	}
}

func TestConfigDescription(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set, removed []string
		want         string
	}{
		{[]string{"A"}, nil, "Set A config vars"},
		{[]string{"A", "B"}, nil, "Set A, B config vars"},
		{[]string{"ZED", "ALPHA", "MID"}, nil, "Set ZED, ALPHA, MID config vars"},
		{nil, []string{"A"}, "Remove A config vars"},
		{nil, []string{"B", "A"}, "Remove B, A config vars"},
		{[]string{"A"}, []string{"B"}, "Set A config vars and Remove B config vars"},
		{nil, nil, ""},
	} {
		if got := configDescription(tc.set, tc.removed); got != tc.want {
			t.Errorf("configDescription(%q, %q) = %q, want %q", tc.set, tc.removed, got, tc.want)
		}
	}
}

func TestValidAppName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"my-app", true},
		{"a1b", true},
		{"app-2", true},
		{"a--b", true},
		{"a" + strings.Repeat("b", 29), true},
		{"ab", false},
		{"a", false},
		{"", false},
		{"a" + strings.Repeat("b", 30), false},
		{"My-app", false},
		{"1app", false},
		{"-app", false},
		{"app-", false},
		{"my_app", false},
		{"my app", false},
		{"my.app", false},
		{"café", false},
		{"app\n", false},
	} {
		err := validAppName(tc.name)
		if tc.ok && err != nil {
			t.Errorf("validAppName(%q) = %v, want ok", tc.name, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("validAppName(%q) = nil, want an error", tc.name)
				continue
			}
			wantKind(t, err, KindInvalid)
		}
	}
}

func TestGenerateName(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 2000 {
		n := generateName()
		if err := validAppName(n); err != nil {
			t.Fatalf("generated name %q is invalid: %v", n, err)
		}
		seen[n] = true
	}
	if len(seen) < 1900 {
		t.Errorf("only %d distinct names in 2000", len(seen))
	}
	// Every word list entry, longest combination included, fits the rule.
	longest := func(ws []string) string {
		l := ""
		for _, w := range ws {
			if len(w) > len(l) {
				l = w
			}
		}
		return l
	}
	if n := longest(adjectives) + "-" + longest(nouns) + "-00000"; validAppName(n) != nil {
		t.Errorf("the longest possible generated name %q is invalid", n)
	}
}

func TestNormalEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a@b.c": "a@b.c", "Bob@Example.COM": "bob@example.com", "x.y+z@d.io": "x.y+z@d.io"} {
		if got, err := normalEmail(in); err != nil || got != want {
			t.Errorf("normalEmail(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "bob", "Bob <bob@example.com>", "bob@", "@example.com", " bob@example.com", "a@b@c"} {
		if got, err := normalEmail(in); err == nil {
			t.Errorf("normalEmail(%q) = %q, want an error", in, got)
		}
	}
}

func TestSizeByName(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"Standard-1X", "standard-1x", "STANDARD-1X", Sizes[2].ID} {
		if s, ok := SizeByName(in); !ok || s.Name != "Standard-1X" {
			t.Errorf("SizeByName(%q) = %+v, %v", in, s, ok)
		}
	}
	for _, in := range []string{"", "standard", "Standard-3X", "Shield-M"} {
		if s, ok := SizeByName(in); ok {
			t.Errorf("SizeByName(%q) = %+v", in, s)
		}
	}
	ids := map[string]bool{}
	for _, s := range Sizes {
		if uuid.Validate(s.ID) != nil || ids[s.ID] {
			t.Errorf("size %s has id %q", s.Name, s.ID)
		}
		ids[s.ID] = true
		if strings.HasPrefix(s.Name, "Private-") != s.PrivateOnly {
			t.Errorf("size %s PrivateOnly=%v", s.Name, s.PrivateOnly)
		}
	}
	if s, _ := SizeByName(DefaultSize); s.Name != DefaultSize {
		t.Errorf("DefaultSize %q is not in the table", DefaultSize)
	}
}

func TestCheckLimits(t *testing.T) {
	t.Parallel()
	p := &Platform{limits: Limits{MaxDynos: 100}}
	type f = store.Formation
	for _, tc := range []struct {
		name string
		all  []*f
		ok   bool
	}{
		{"empty", nil, true},
		{"standard", []*f{{Type: "web", Quantity: 50, Size: "Standard-1X"}, {Type: "worker", Quantity: 50, Size: "Standard-2X"}}, true},
		{"over the app limit", []*f{{Type: "web", Quantity: 50, Size: "Standard-1X"}, {Type: "worker", Quantity: 51, Size: "Standard-2X"}}, false},
		{"one type over the app limit", []*f{{Type: "web", Quantity: 101, Size: "Standard-1X"}}, false},
		{"basic one per type", []*f{{Type: "web", Quantity: 1, Size: "Basic"}, {Type: "worker", Quantity: 1, Size: "Basic"}}, true},
		{"basic two", []*f{{Type: "web", Quantity: 2, Size: "Basic"}}, false},
		{"eco two types", []*f{{Type: "web", Quantity: 1, Size: "Eco"}, {Type: "worker", Quantity: 1, Size: "Eco"}}, true},
		{"eco three types", []*f{{Type: "web", Quantity: 1, Size: "Eco"}, {Type: "worker", Quantity: 1, Size: "Eco"}, {Type: "clock", Quantity: 1, Size: "Eco"}}, false},
		{"eco two in one type", []*f{{Type: "web", Quantity: 2, Size: "Eco"}}, false},
		{"eco third type at zero", []*f{{Type: "web", Quantity: 1, Size: "Eco"}, {Type: "worker", Quantity: 1, Size: "Eco"}, {Type: "clock", Quantity: 0, Size: "Eco"}}, true},
		{"basic and standard", []*f{{Type: "web", Quantity: 1, Size: "Basic"}, {Type: "worker", Quantity: 1, Size: "Standard-1X"}}, false},
		{"eco and performance", []*f{{Type: "web", Quantity: 1, Size: "Eco"}, {Type: "worker", Quantity: 1, Size: "Performance-M"}}, false},
		{"eco and basic", []*f{{Type: "web", Quantity: 1, Size: "Eco"}, {Type: "worker", Quantity: 1, Size: "Basic"}}, false},
		{"standard and performance", []*f{{Type: "web", Quantity: 1, Size: "Standard-2X"}, {Type: "worker", Quantity: 1, Size: "Performance-L"}}, true},
		{"performance ten", []*f{{Type: "web", Quantity: 10, Size: "Performance-M"}}, true},
		{"performance eleven", []*f{{Type: "web", Quantity: 11, Size: "Performance-2XL"}}, false},
	} {
		err := p.checkLimits(tc.all)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
				continue
			}
			wantKind(t, err, KindInvalid)
		}
	}
	small := &Platform{limits: Limits{MaxDynos: 2}}
	if err := small.checkLimits([]*store.Formation{{Type: "web", Quantity: 3, Size: "Standard-1X"}}); err == nil {
		t.Errorf("MaxDynos 2 allowed 3 dynos")
	}
}

func TestBus(t *testing.T) {
	t.Parallel()
	b := NewBus()
	a := b.Subscribe(2)
	c := b.Subscribe(10)
	for i := range 3 {
		b.Publish(Event{Kind: EventAudit, Message: fmt.Sprint(i)})
	}
	if got := len(a.C); got != 2 {
		t.Errorf("small subscriber holds %d events", got)
	}
	if got := len(c.C); got != 3 {
		t.Errorf("large subscriber holds %d events", got)
	}
	if b.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", b.Dropped())
	}
	if e := <-a.C; e.Message != "0" {
		t.Errorf("first event %q", e.Message)
	}
	c.Close()
	b.Publish(Event{Message: "after close"})
	if got := len(c.C); got != 3 {
		t.Errorf("closed subscriber received an event")
	}
}

// ---- accounts and tokens ----

func TestAccountsAndTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	if a, auth, err := f.p.EnsureAdmin(ctx, "other@example.com"); a != nil || auth != nil || err != nil {
		t.Errorf("second EnsureAdmin = %v, %v, %v; want nothing", a, auth, err)
	}
	a, tok, err := f.p.Authenticate(ctx, f.token)
	if err != nil || a.ID != f.admin.ID || !a.Admin || tok.Hash != HashToken(f.token) {
		t.Fatalf("Authenticate = %+v, %+v, %v", a, tok, err)
	}
	if !strings.HasPrefix(f.token, tokenPrefix) {
		t.Errorf("token %q lacks the prefix", f.token)
	}
	if h := HashToken(f.token); len(h) != 64 || h == f.token || HashToken(f.token) != h {
		t.Errorf("HashToken = %q", h)
	}
	for _, bad := range []string{"", "skf_", "skf_" + strings.Repeat("0", 64), f.token + "x", strings.TrimPrefix(f.token, tokenPrefix), strings.ToUpper(f.token)} {
		_, _, err := f.p.Authenticate(ctx, bad)
		wantKind(t, err, KindUnauthorized)
	}

	// Duplicate emails conflict whatever their case.
	_, _, err = f.p.CreateAccount(ctx, "ADMIN@example.com", "", false)
	wantKind(t, err, KindConflict)
	_, _, err = f.p.CreateAccount(ctx, "not-an-email", "", false)
	wantKind(t, err, KindInvalid)
	_, _, err = f.p.CreateAccount(ctx, "long@example.com", strings.Repeat("x", 73), false)
	wantKind(t, err, KindInvalid)

	bob := f.account("bob@example.com")
	_, _, err = f.p.CreateAccountAs(ctx, bob, "carol@example.com", "")
	wantKind(t, err, KindForbidden)

	// Expiring tokens.
	auth, err := f.p.CreateToken(ctx, bob, "short", time.Minute)
	if err != nil || auth.ExpiresAt == nil {
		t.Fatalf("CreateToken = %+v, %v", auth, err)
	}
	if _, _, err := f.p.Authenticate(ctx, auth.Secret); err != nil {
		t.Errorf("fresh token refused: %v", err)
	}
	f.clock.Advance(time.Minute)
	_, _, err = f.p.Authenticate(ctx, auth.Secret)
	wantKind(t, err, KindUnauthorized)

	// Login with a token as the password; not with another account's.
	if _, err := f.p.Login(ctx, "Admin@Example.com", f.token, "cli", 0); err != nil {
		t.Errorf("login with own token: %v", err)
	}
	_, err = f.p.Login(ctx, "bob@example.com", f.token, "cli", 0)
	wantKind(t, err, KindUnauthorized)
	_, err = f.p.Login(ctx, "nobody@example.com", f.token, "cli", 0)
	wantKind(t, err, KindUnauthorized)

	// Listing shows the secret of the presented token only; revoking works
	// for own tokens only.
	list, err := f.p.Authorizations(ctx, bob, auth.Secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if (a.Secret != "") != (a.ID == auth.ID) {
			t.Errorf("authorization %s secret shown=%v", a.ID, a.Secret != "")
		}
	}
	wantKind(t, f.p.RevokeAuthorization(ctx, f.admin, auth.ID), KindNotFound)
	if err := f.p.RevokeAuthorization(ctx, bob, auth.ID); err != nil {
		t.Errorf("revoke: %v", err)
	}
	wantKind(t, f.p.RevokeAuthorization(ctx, bob, auth.ID), KindNotFound)
}

func TestLoginWithPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := f.p.CreateAccountAs(ctx, f.admin, "pat@example.com", "s3cret"); err != nil {
		t.Fatal(err)
	}
	auth, err := f.p.Login(ctx, "pat@example.com", "s3cret", "cli", time.Hour)
	if err != nil || auth.Secret == "" || auth.ExpiresAt == nil || !auth.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("Login = %+v, %v", auth, err)
	}
	for _, pw := range []string{"", "S3cret"} { // bcrypt is slow: few cases
		_, err := f.p.Login(ctx, "pat@example.com", pw, "cli", 0)
		wantKind(t, err, KindUnauthorized)
	}
}

// ---- apps ----

func TestCreateAppRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	app := f.app("first-app")
	if app.Stack != "container" || app.BuildStack != "container" || app.LastVersion != 2 || app.OwnerEmail != "admin@example.com" {
		t.Errorf("app = %+v", app)
	}
	rels := f.releases("first-app")
	if len(rels) != 2 || rels[0].Description != "Initial release" || rels[1].Description != "Enable Logplex" {
		t.Errorf("releases = %+v", rels)
	}
	_, err := f.p.CreateApp(ctx, f.admin, AppSpec{Name: "first-app"})
	wantKind(t, err, KindInvalid)
	_, err = f.p.CreateApp(ctx, f.admin, AppSpec{Name: "Bad"})
	wantKind(t, err, KindInvalid)
	_, err = f.p.CreateApp(ctx, f.admin, AppSpec{Name: "okay", Region: "eu"})
	wantKind(t, err, KindNotFound)
	_, err = f.p.CreateApp(ctx, f.admin, AppSpec{Name: "okay", Stack: "cedar-14"})
	wantKind(t, err, KindNotFound)
	gen, err := f.p.CreateApp(ctx, f.admin, AppSpec{Region: "US", Stack: "CONTAINER"})
	if err != nil || validAppName(gen.Name) != nil {
		t.Errorf("generated app = %+v, %v", gen, err)
	}

	bob := f.account("bob@example.com")
	_, err = f.p.App(ctx, bob, "first-app")
	wantKind(t, err, KindForbidden)
	_, err = f.p.App(ctx, bob, app.ID)
	wantKind(t, err, KindForbidden)
	_, err = f.p.App(ctx, bob, "missing")
	wantKind(t, err, KindNotFound)
	apps, more, err := f.p.Apps(ctx, bob, store.Page{Field: "name", Max: 10})
	if err != nil || len(apps) != 0 || more {
		t.Errorf("bob's apps = %v, %v, %v", apps, more, err)
	}
	_, err = f.p.DestroyApp(ctx, bob, "first-app")
	wantKind(t, err, KindForbidden)
	_, err = f.p.UpdateApp(ctx, bob, "first-app", AppUpdate{Maintenance: new(bool)})
	wantKind(t, err, KindForbidden)
}

func TestUpdateAppAudit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app("audited")
	f.messages()
	on := true
	app, err := f.p.UpdateApp(ctx, f.admin, "audited", AppUpdate{Name: str("renamed"), Maintenance: &on})
	if err != nil || app.Name != "renamed" || !app.Maintenance {
		t.Fatalf("UpdateApp = %+v, %v", app, err)
	}
	want := []string{"Rename app from audited to renamed by user admin@example.com", "Enable maintenance mode by user admin@example.com"}
	if got := f.messages(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages = %q", got)
	}
	// Nothing to change: no event.
	if _, err := f.p.UpdateApp(ctx, f.admin, "renamed", AppUpdate{Name: str("renamed"), Maintenance: &on, BuildStack: str("container")}); err != nil {
		t.Fatal(err)
	}
	if got := f.messages(); len(got) != 0 {
		t.Errorf("no-op update published %q", got)
	}
	// A refused rename publishes nothing and keeps the old name.
	f.app("other")
	f.messages()
	_, err = f.p.UpdateApp(ctx, f.admin, "renamed", AppUpdate{Name: str("other"), Maintenance: new(bool)})
	wantKind(t, err, KindInvalid)
	if got := f.messages(); len(got) != 0 {
		t.Errorf("refused update published %q", got)
	}
	if a, err := f.p.App(ctx, f.admin, "renamed"); err != nil || !a.Maintenance {
		t.Errorf("after a refused update: %+v, %v", a, err)
	}
}

// ---- config and releases ----

func TestUpdateConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app("conf")
	f.messages()
	set := func(changes ...ConfigChange) (map[string]string, *Release) {
		t.Helper()
		cfg, rel, err := f.p.UpdateConfig(ctx, f.admin, "conf", changes)
		if err != nil {
			t.Fatalf("UpdateConfig(%v): %v", changes, err)
		}
		return cfg, rel
	}
	val := func(k, v string) ConfigChange { return ConfigChange{Key: k, Value: &v} }
	del := func(k string) ConfigChange { return ConfigChange{Key: k} }

	cfg, rel := set(val("B", "2"), val("A", "1"))
	if rel == nil || rel.Version != 3 || rel.Description != "Set B, A config vars" || !maps.Equal(cfg, map[string]string{"A": "1", "B": "2"}) {
		t.Errorf("set = %v, %+v", cfg, rel)
	}
	if got := f.messages(); strings.Join(got, "|") != "Set B, A config vars by user admin@example.com|Release v3 created by user admin@example.com" {
		t.Errorf("messages = %q", got)
	}
	for _, tc := range []struct {
		name    string
		changes []ConfigChange
		desc    string // "" for no release
		want    map[string]string
	}{
		{"same value", []ConfigChange{val("A", "1")}, "", map[string]string{"A": "1", "B": "2"}},
		{"remove absent", []ConfigChange{del("Z")}, "", map[string]string{"A": "1", "B": "2"}},
		{"nothing", nil, "", map[string]string{"A": "1", "B": "2"}},
		{"key twice", []ConfigChange{val("C", "1"), val("C", "2")}, "Set C config vars", map[string]string{"A": "1", "B": "2", "C": "2"}},
		{"set then remove a new key", []ConfigChange{val("D", "1"), del("D")}, "", map[string]string{"A": "1", "B": "2", "C": "2"}},
		{"change then change back", []ConfigChange{val("A", "x"), val("A", "1")}, "", map[string]string{"A": "1", "B": "2", "C": "2"}},
		{"remove then set back", []ConfigChange{del("A"), val("A", "1")}, "", map[string]string{"A": "1", "B": "2", "C": "2"}},
		{"remove then set anew", []ConfigChange{del("A"), val("A", "9")}, "Set A config vars", map[string]string{"A": "9", "B": "2", "C": "2"}},
		{"set then remove an existing key", []ConfigChange{val("B", "3"), del("B")}, "Remove B config vars", map[string]string{"A": "9", "C": "2"}},
		{"set and remove", []ConfigChange{val("E", "5"), del("C")}, "Set E config vars and Remove C config vars", map[string]string{"A": "9", "E": "5"}},
	} {
		before := len(f.releases("conf"))
		cfg, rel := set(tc.changes...)
		if !maps.Equal(cfg, tc.want) {
			t.Errorf("%s: config = %v, want %v", tc.name, cfg, tc.want)
		}
		after := len(f.releases("conf"))
		if tc.desc == "" {
			if rel != nil || after != before {
				t.Errorf("%s: created a release (%+v)", tc.name, rel)
			}
			if got := f.messages(); len(got) != 0 {
				t.Errorf("%s: published %q", tc.name, got)
			}
			continue
		}
		if rel == nil || rel.Description != tc.desc || rel.Version != before+1 || after != before+1 {
			t.Errorf("%s: release %+v, want %q as v%d", tc.name, rel, tc.desc, before+1)
		}
		f.messages()
	}

	// Invalid keys and sizes are refused before anything is written.
	before := len(f.releases("conf"))
	for _, changes := range [][]ConfigChange{
		{val("BAD-KEY", "1")},
		{val("OK", "1"), val("", "1")},
		{del("no spaces")},
		{val("BIG", strings.Repeat("x", MaxConfigSize))},
	} {
		_, _, err := f.p.UpdateConfig(ctx, f.admin, "conf", changes)
		wantKind(t, err, KindInvalid)
	}
	if after := len(f.releases("conf")); after != before {
		t.Errorf("refused changes created releases")
	}
	if got := f.messages(); len(got) != 0 {
		t.Errorf("refused changes published %q", got)
	}
	// The next release still takes the next number: refused writes leave
	// no gap.
	_, rel = set(val("NEXT", "1"))
	if rel.Version != before+1 {
		t.Errorf("next release is v%d, want v%d", rel.Version, before+1)
	}
}

func TestConfigSize(t *testing.T) {
	t.Parallel()
	if n := configSize(map[string]string{"AB": "cde", "F": ""}); n != 6 {
		t.Errorf("configSize = %d, want 6", n)
	}
	f := newFixture(t)
	ctx := context.Background()
	f.app("sized")
	v := strings.Repeat("x", MaxConfigSize-1)
	if _, _, err := f.p.UpdateConfig(ctx, f.admin, "sized", []ConfigChange{{Key: "A", Value: &v}}); err != nil {
		t.Errorf("exactly the limit: %v", err)
	}
	one := "y"
	_, _, err := f.p.UpdateConfig(ctx, f.admin, "sized", []ConfigChange{{Key: "B", Value: &one}})
	wantKind(t, err, KindInvalid)
}

func TestRollbackAndDeploy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app("deployed")
	img1 := "sha256:" + strings.Repeat("a1", 32)
	img2 := "sha256:" + strings.Repeat("b2", 32)

	rel, err := f.p.DeployImages(ctx, f.admin, "deployed", []ImageUpdate{{Type: "web", Image: img1}, {Type: "worker", Image: img1}})
	if err != nil || rel.Version != 3 || rel.Description != "Deploy a1a1a1a1" {
		t.Fatalf("DeployImages = %+v, %v", rel, err)
	}
	_, fs, _ := f.p.Formation(ctx, f.admin, "deployed")
	if len(fs) != 2 || fs[0].Type != "web" || fs[0].Quantity != 1 || fs[1].Type != "worker" || fs[1].Quantity != 0 || fs[0].Size != DefaultSize {
		t.Errorf("formation after the first deploy = %+v %+v", fs[0], fs[1])
	}
	v := "1"
	if _, _, err := f.p.UpdateConfig(ctx, f.admin, "deployed", []ConfigChange{{Key: "A", Value: &v}}); err != nil { // v4
		t.Fatal(err)
	}
	if _, err := f.p.DeployImages(ctx, f.admin, "deployed", []ImageUpdate{{Type: "web", Image: img2}}); err != nil { // v5
		t.Fatal(err)
	}
	rb, err := f.p.Rollback(ctx, f.admin, "deployed", "3")
	if err != nil || rb.Version != 6 || rb.Description != "Rollback to v3" || len(rb.Config) != 0 ||
		rb.Processes["web"].Image != img1 || rb.Processes["worker"].Image != img1 {
		t.Errorf("Rollback = %+v, %v", rb, err)
	}
	_, r, current, err := f.p.Release(ctx, f.admin, "deployed", "v6")
	if err != nil || !current || r.ID != rb.ID {
		t.Errorf("Release(v6) = %+v, current=%v, %v", r, current, err)
	}
	_, err = f.p.Rollback(ctx, f.admin, "deployed", "42")
	wantKind(t, err, KindNotFound)
	_, err = f.p.Rollback(ctx, f.admin, "deployed", "nope")
	wantKind(t, err, KindNotFound)

	for _, bad := range [][]ImageUpdate{
		nil,
		{{Type: "web", Image: "sha256:short"}},
		{{Type: "web", Image: strings.Repeat("a", 64)}},
		{{Type: "", Image: img1}},
		{{Type: "web worker", Image: img1}},
		{{Type: strings.Repeat("w", 129), Image: img1}},
	} {
		_, err := f.p.DeployImages(ctx, f.admin, "deployed", bad)
		wantKind(t, err, KindInvalid)
	}
	if n := len(f.releases("deployed")); n != 6 {
		t.Errorf("%d releases after refused deploys, want 6", n)
	}
}

func TestScaleFormationRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithLimits(Limits{MaxDynos: 10}))
	ctx := context.Background()
	f.app("scaled")
	img := "sha256:" + strings.Repeat("c3", 32)
	if _, err := f.p.DeployImages(ctx, f.admin, "scaled", []ImageUpdate{{Type: "web", Image: img}, {Type: "worker", Image: img}}); err != nil {
		t.Fatal(err)
	}
	f.messages()
	q := func(s string) *Quantity {
		t.Helper()
		q, err := ParseQuantity(s)
		if err != nil {
			t.Fatal(err)
		}
		return &q
	}
	fs, err := f.p.ScaleFormation(ctx, f.admin, "scaled", []Scale{{Type: "web", Quantity: q("3"), Size: str("standard-2x")}, {Type: "worker", Quantity: q("+2")}})
	if err != nil || len(fs) != 2 || fs[0].Quantity != 3 || fs[0].Size != "Standard-2X" || fs[1].Quantity != 2 {
		t.Fatalf("ScaleFormation = %+v, %v", fs, err)
	}
	if got := f.messages(); len(got) != 1 || got[0] != "Scaled to web@3:Standard-2X worker@2:Standard-1X by user admin@example.com" {
		t.Errorf("messages = %q", got)
	}
	// The same type twice applies both, in order, and is reported once.
	fs, err = f.p.ScaleFormation(ctx, f.admin, "scaled", []Scale{{Type: "web", Quantity: q("+1")}, {Type: "web", Quantity: q("+1")}})
	if err != nil || len(fs) != 1 || fs[0].Quantity != 5 {
		t.Errorf("twice = %+v, %v", fs, err)
	}
	f.messages()
	for _, tc := range []struct {
		name    string
		updates []Scale
		kind    Kind
	}{
		{"none", nil, KindInvalid},
		{"unknown type", []Scale{{Type: "clock", Quantity: q("1")}}, KindNotFound},
		{"unknown size", []Scale{{Type: "web", Size: str("Mega")}}, KindInvalid},
		{"private size", []Scale{{Type: "web", Size: str("Private-M")}}, KindInvalid},
		{"over the limit", []Scale{{Type: "web", Quantity: q("9")}}, KindInvalid},
		{"over the limit relative", []Scale{{Type: "worker", Quantity: q("+4")}}, KindInvalid},
		{"valid then invalid", []Scale{{Type: "web", Quantity: q("1")}, {Type: "worker", Size: str("Basic")}}, KindInvalid},
	} {
		_, err := f.p.ScaleFormation(ctx, f.admin, "scaled", tc.updates)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		wantKind(t, err, tc.kind)
	}
	_, fs, _ = f.p.Formation(ctx, f.admin, "scaled")
	if fs[0].Quantity != 5 || fs[0].Size != "Standard-2X" || fs[1].Quantity != 2 || fs[1].Size != "Standard-1X" {
		t.Errorf("refused scaling changed the formation: %+v %+v", fs[0], fs[1])
	}
	if got := f.messages(); len(got) != 0 {
		t.Errorf("refused scaling published %q", got)
	}
	if n := len(f.releases("scaled")); n != 3 {
		t.Errorf("scaling created releases: %d", n)
	}
}

func TestFeatures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app("flags")
	fs, err := f.p.AppFeatures(ctx, f.admin, "flags")
	if err != nil || len(fs) != len(Features) {
		t.Fatalf("AppFeatures = %v, %v", fs, err)
	}
	af, err := f.p.SetAppFeature(ctx, f.admin, "flags", "preboot", true)
	if err != nil || !af.Enabled {
		t.Fatalf("enable = %+v, %v", af, err)
	}
	created := af.CreatedAt
	f.clock.Advance(time.Hour)
	af, err = f.p.SetAppFeature(ctx, f.admin, "flags", Features[0].ID, false)
	if err != nil || af.Enabled || !af.CreatedAt.Equal(created) || !af.UpdatedAt.After(created) {
		t.Errorf("disable by id = %+v, %v", af, err)
	}
	_, err = f.p.SetAppFeature(ctx, f.admin, "flags", "nope", true)
	wantKind(t, err, KindNotFound)
	_, err = f.p.AppFeature(ctx, f.admin, "flags", "nope")
	wantKind(t, err, KindNotFound)
}

// TestEventsOnlyAfterCommit: a write whose transaction fails publishes
// nothing, even if it collected events before failing.
func TestEventsOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.messages()
	boom := errors.New("boom")
	err := f.p.write(context.Background(), func(tx *store.Tx, ev *[]Event) error {
		*ev = append(*ev, Event{Kind: EventAudit, Message: "should not be seen"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("write = %v", err)
	}
	if got := f.messages(); len(got) != 0 {
		t.Errorf("published %q", got)
	}
}

func TestDestroyAppRemovesEverything(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	app := f.app("gone")
	img := "sha256:" + strings.Repeat("d4", 32)
	if _, err := f.p.DeployImages(ctx, f.admin, "gone", []ImageUpdate{{Type: "web", Image: img}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.SetAppFeature(ctx, f.admin, "gone", "preboot", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.DestroyApp(ctx, f.admin, "gone"); err != nil {
		t.Fatal(err)
	}
	err := f.db.Read(ctx, func(tx *store.Tx) error {
		if _, err := tx.AppByID(app.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("app still there: %v", err)
		}
		if rs, _, err := tx.Releases(app.ID, store.Page{Field: "version", Max: 100}); err != nil || len(rs) != 0 {
			t.Errorf("releases left: %d, %v", len(rs), err)
		}
		if fs, err := tx.Formations(app.ID); err != nil || len(fs) != 0 {
			t.Errorf("formation left: %d, %v", len(fs), err)
		}
		if fs, err := tx.Features(app.ID); err != nil || len(fs) != 0 {
			t.Errorf("features left: %d, %v", len(fs), err)
		}
		if cs, err := tx.Collaborators(app.ID); err != nil || len(cs) != 0 {
			t.Errorf("collaborators left: %d, %v", len(cs), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
