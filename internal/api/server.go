// Package api serves the Heroku Platform API v3 over HTTP: routes, JSON
// shapes, Range pagination, errors, authentication and rate limiting. It
// holds no business rules; it translates between HTTP and package platform.
package api

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

// Config is what the API needs to know about its surroundings.
type Config struct {
	// WebURL and GitURL return an app's public URLs.
	WebURL func(app string) string
	GitURL func(app string) string
	// RateLimit is each account's bucket size; RateRefill how many requests
	// a minute it regains. Zero values take Heroku's 4500 and 75.
	RateLimit  int
	RateRefill float64
	// Dynos is the dyno manager; nil when this server runs no dynos.
	Dynos  Dynos
	Logger *slog.Logger
	Now    func() time.Time
	// Logs is the log pipeline (log sessions); nil when this server has none.
	Logs LogSessions
	// Builds is the build service; nil when this server builds nothing.
	Builds Builds
	// Images, when set, readies the images a formation update releases
	// (from the embedded registry into the image store) before the release
	// is made; an image it cannot ready fails the update.
	Images Images
	// Rendezvous serves attached one-off dynos (heroku run); nil: none.
	Rendezvous Rendezvous
	// Routers serves routers running apart from the server; nil: none.
	Routers Routers
}

// Images readies released images; see Config.Images.
type Images interface {
	Prepare(ctx context.Context, actor *platform.Account, app string, updates []platform.ImageUpdate) error
}

// Server is the Platform API's HTTP handler.
type Server struct {
	p     *platform.Platform
	cfg   Config
	log   *slog.Logger
	limit *limiter
	mux   *http.ServeMux
	// grants caches log-input authentication; see grants.
	grants *grants
}

// New returns the API handler over p.
func New(p *platform.Platform, cfg Config) *Server {
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 4500
	}
	if cfg.RateRefill == 0 {
		cfg.RateRefill = 75
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WebURL == nil {
		cfg.WebURL = func(app string) string { return "http://" + app + ".localhost/" }
	}
	if cfg.GitURL == nil {
		cfg.GitURL = func(app string) string { return "https://localhost/" + app + ".git" }
	}
	s := &Server{p: p, cfg: cfg, log: cfg.Logger, limit: newLimiter(cfg.RateLimit, cfg.RateRefill, cfg.Now), mux: http.NewServeMux(),
		grants: newGrants(cfg.Now)}
	s.routes()
	return s
}

// call is one authenticated request.
type call struct {
	account *platform.Account
	token   string // the secret the caller presented
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// handle registers an authenticated route.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err == nil {
			err = s.rateLimit(w, "account:"+c.account.ID, 1)
		}
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// handlePublic registers a route that authenticates by itself (login). It
// is rate limited by client address, which slows password guessing.
func (s *Server) handlePublic(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		err := s.rateLimit(w, "addr:"+host, 1)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) rateLimit(w http.ResponseWriter, key string, cost float64) error {
	ok, remaining := s.limit.take(key, cost)
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
	if !ok {
		return &apiError{http.StatusTooManyRequests, "rate_limit",
			"Your account reached the API rate limit\nPlease wait a few minutes before making new requests"}
	}
	return nil
}

// bearer extracts the API token from Authorization: "Bearer <token>", or
// Basic with the token as password (Heroku's historical form, used by
// `heroku container:release` with an empty username).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

func (s *Server) authenticate(r *http.Request) (*call, error) {
	tok := bearer(r)
	if tok == "" {
		return nil, unauthorized()
	}
	a, _, err := s.p.Authenticate(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	return &call{account: a, token: tok}, nil
}

// ServeHTTP applies the conventions every response shares, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	w.Header().Set("Request-Id", id)
	if m := r.Header.Get("X-Http-Method-Override"); m != "" && r.Method == http.MethodPost {
		r.Method = strings.ToUpper(m)
	}
	if err := checkAccept(r.Header.Get("Accept")); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked", "panic", v, "method", r.Method, "path", r.URL.Path, "request_id", id)
			s.writeError(rec, r, errInternal)
		}
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		if s.log.Enabled(r.Context(), level) { // the arguments cost allocations even when not logged
			s.log.Log(r.Context(), level, "api request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration", time.Since(start), "request_id", id)
		}
	}()
	s.mux.ServeHTTP(rec, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Pattern != logInputPattern && r.Pattern != routerLogsPattern {
		s.grants.changed() // it may have revoked a token or access: see grants
	}
}

var errInternal = &apiError{http.StatusInternalServerError, "internal_server_error", "Internal server error."}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// checkAccept refuses API versions other than 3. A request without the
// Heroku media type (curl, a browser) is served as version 3.
func checkAccept(accept string) error {
	for _, part := range strings.Split(accept, ",") {
		media, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(media) != "application/vnd.heroku+json" {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if k == "version" && v != "3" && !strings.HasPrefix(v, "3.") {
				return &apiError{http.StatusNotAcceptable, "not_acceptable",
					"Unsupported API version " + strconv.Quote(v) + ": send Accept: application/vnd.heroku+json; version=3"}
			}
		}
	}
	return nil
}

func basicLogin(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	enc, found := strings.CutPrefix(h, "Basic ")
	if !found {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(b), ":")
	return user, pass, ok && user != ""
}

// timeJSON formats t as the Platform API does: ISO 8601 UTC, seconds.
func timeJSON(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func timePtrJSON(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timeJSON(*t)
	return &s
}

// page parses the Range header for a list sortable by fields.
func page(r *http.Request, fields ...string) (store.Page, error) {
	p, err := parseRange(r.Header.Get("Range"), fields...)
	if err != nil {
		return p, &apiError{http.StatusRequestedRangeNotSatisfiable, "requested_range_not_satisfiable", "Invalid Range header: " + err.Error()}
	}
	return p, nil
}
