package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/clocktest"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

const (
	acceptV3     = "application/vnd.heroku+json; version=3"
	acceptDocker = "application/vnd.heroku+json; version=3.docker-releases"
	adminEmail   = "admin@example.com"
	bobEmail     = "bob@example.com"
	// emptyHeader sends a header with an empty value (do removes a header
	// given as "").
	emptyHeader = "\x00empty"
)

// newTestClock returns a settable clock shared by the platform and the API.
func newTestClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// envOpts customises newEnv.
type envOpts struct {
	cfg   Config
	popts []platform.Option
}

func withConfig(f func(*Config)) func(*envOpts) { return func(o *envOpts) { f(&o.cfg) } }

func withPlatform(opts ...platform.Option) func(*envOpts) {
	return func(o *envOpts) { o.popts = append(o.popts, opts...) }
}

// withClock makes the platform and the API (expiry, rate limiter) read c.
func withClock(c *clocktest.Clock) func(*envOpts) {
	return func(o *envOpts) {
		o.cfg.Now = c.Now
		o.popts = append(o.popts, platform.WithClock(c.Now))
	}
}

type user struct {
	ID, Email, Token string
}

// env is one API server over its own SQLite database, with an admin account
// and a second, ordinary account (bob), both without passwords (no bcrypt).
type env struct {
	t     *testing.T
	srv   *httptest.Server
	db    *store.DB
	p     *platform.Platform
	sub   *platform.Subscription
	raw   *sql.DB // a separate read-only connection to the same file
	path  string
	admin user
	bob   user
}

// syncBuffer collects the server's warnings so a failing test can show them.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T, opts ...func(*envOpts)) *env {
	t.Helper()
	var o envOpts
	for _, f := range opts {
		f(&o)
	}
	path := filepath.Join(t.TempDir(), "skiff.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	bus := platform.NewBus()
	sub := bus.Subscribe(8192)
	p := platform.New(db, bus, o.popts...)
	ctx := context.Background()
	admin, adminAuth, err := p.EnsureAdmin(ctx, adminEmail)
	if err != nil || admin == nil {
		t.Fatalf("EnsureAdmin: %v, %v", admin, err)
	}
	bob, bobAuth, err := p.CreateAccount(ctx, bobEmail, "", false)
	if err != nil {
		t.Fatalf("CreateAccount bob: %v", err)
	}
	logs := &syncBuffer{}
	if o.cfg.Logger == nil {
		o.cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv := httptest.NewServer(New(p, o.cfg))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() && logs.String() != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open raw: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	return &env{t: t, srv: srv, db: db, p: p, sub: sub, raw: raw, path: path,
		admin: user{ID: admin.ID, Email: admin.Email, Token: adminAuth.Secret},
		bob:   user{ID: bob.ID, Email: bob.Email, Token: bobAuth.Secret}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// do sends one request. body is nil (none), a string or []byte (sent as
// is) or any other value (sent as JSON). hdr holds header name/value pairs;
// an empty value removes the header (e.g. "Accept", "").
func (e *env) do(method, path, token string, body any, hdr ...string) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b // of unknown length: sent chunked
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Accept", acceptV3)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == emptyHeader {
			req.Header[http.CanonicalHeaderKey(hdr[i])] = []string{""}
		} else if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// must sends a request and fails the test unless it answers want.
func (e *env) must(want int, method, path, token string, body any, hdr ...string) *response {
	e.t.Helper()
	r := e.do(method, path, token, body, hdr...)
	if r.Status != want {
		e.t.Fatalf("%s %s: got %s, want status %d", method, path, r, want)
	}
	checkRequestID(e.t, r)
	return r
}

func decodeAs[T any](t *testing.T, r *response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r, err)
	}
	return v
}

func checkRequestID(t *testing.T, r *response) {
	t.Helper()
	id := r.Header.Get("Request-Id")
	if id == "" {
		t.Errorf("response %s has no Request-Id header", r)
		return
	}
	if uuid.Validate(id) != nil {
		t.Errorf("Request-Id %q is not a uuid", id)
	}
}

// checkError asserts Heroku's error shape: the status, a JSON content type,
// a Request-Id, and a body of exactly {"id","message"} with the given id.
func checkError(t *testing.T, r *response, status int, id string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d (body %s)", r.Status, status, bytes.TrimSpace(r.Body))
	}
	checkRequestID(t, r)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("error body %q is not a JSON object: %v", r.Body, err)
	}
	if len(m) != 2 {
		t.Errorf("error body %s: want exactly the keys id and message", r.Body)
	}
	gotID, ok := m["id"].(string)
	if !ok || gotID != id {
		t.Errorf("error id = %v, want %q (body %s)", m["id"], id, r.Body)
	}
	if msg, ok := m["message"].(string); !ok || strings.TrimSpace(msg) == "" {
		t.Errorf("error message = %v, want a non-empty string", m["message"])
	}
}

// expectError sends a request and checks it fails with status and id.
func (e *env) expectError(status int, id, method, path, token string, body any, hdr ...string) *response {
	e.t.Helper()
	r := e.do(method, path, token, body, hdr...)
	checkError(e.t, r, status, id)
	return r
}

// dump returns every row of every table, for "nothing changed" checks.
func (e *env) dump() string {
	e.t.Helper()
	var b strings.Builder
	for _, tbl := range []string{"accounts", "tokens", "apps", "collaborators", "releases", "formations", "app_features", "log_drains", "domains", "sni_endpoints", "acme_certs"} {
		rows, err := e.raw.Query("SELECT * FROM " + tbl + " ORDER BY 1, 2")
		if err != nil {
			e.t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatalf("dump %s: %v", tbl, err)
			}
			fmt.Fprintf(&b, "%s:", tbl)
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, " %v", v)
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			e.t.Fatalf("dump %s: %v", tbl, err)
		}
		rows.Close()
	}
	return b.String()
}

// unchanged fails the test if the database differs from the dump before.
func (e *env) unchanged(before string) {
	e.t.Helper()
	if after := e.dump(); after != before {
		e.t.Errorf("the store changed although the request failed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// count returns the number of rows a query counts.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.raw.QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// drain returns the events published so far.
func (e *env) drain() []platform.Event {
	var out []platform.Event
	for {
		select {
		case ev := <-e.sub.C:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// audit returns the audit lines among the events published so far.
func (e *env) audit() []string {
	var out []string
	for _, ev := range e.drain() {
		if ev.Message != "" {
			out = append(out, ev.Message)
		}
	}
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func (e *env) createApp(token, name string) appJSON {
	e.t.Helper()
	body := map[string]any{}
	if name != "" {
		body["name"] = name
	}
	return decodeAs[appJSON](e.t, e.must(http.StatusCreated, "POST", "/apps", token, body))
}

func (e *env) releases(token, app string) []releaseJSON {
	e.t.Helper()
	return decodeAs[[]releaseJSON](e.t, e.must(http.StatusOK, "GET", "/apps/"+app+"/releases", token, nil, "Range", "version ..; max=1000"))
}

func (e *env) config(token, app string) map[string]string {
	e.t.Helper()
	return decodeAs[map[string]string](e.t, e.must(http.StatusOK, "GET", "/apps/"+app+"/config-vars", token, nil))
}

func (e *env) setConfig(token, app string, body string) map[string]string {
	e.t.Helper()
	return decodeAs[map[string]string](e.t, e.must(http.StatusOK, "PATCH", "/apps/"+app+"/config-vars", token, body))
}

func (e *env) formation(token, app string) map[string]formationJSON {
	e.t.Helper()
	fs := decodeAs[[]formationJSON](e.t, e.must(http.StatusOK, "GET", "/apps/"+app+"/formation", token, nil))
	m := map[string]formationJSON{}
	for _, f := range fs {
		m[f.Type] = f
	}
	return m
}

// digest returns a valid image id derived from seed.
func digest(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// deploy releases an image for each type as `heroku container:release` does.
func (e *env) deploy(token, app string, types ...string) string {
	e.t.Helper()
	img := digest(app + strings.Join(types, ",") + fmt.Sprint(time.Now().UnixNano()))
	var updates []map[string]any
	for _, typ := range types {
		updates = append(updates, map[string]any{"type": typ, "docker_image": img})
	}
	e.must(http.StatusOK, "PATCH", "/apps/"+app+"/formation", token, map[string]any{"updates": updates}, "Accept", acceptDocker)
	return img
}
