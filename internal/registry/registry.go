// Package registry is Skiff's embedded container registry: the OCI
// Distribution API over durable storage under the data directory, with
// repositories named <app>/<process-type> and access decided by the
// platform's accounts.
//
// The protocol (uploads, manifests, tags, deletes, digest checks) is CNCF
// distribution's, used as a library with its filesystem driver: every blob
// is written to an upload directory, verified and renamed into place, and
// every link file (tags, revisions) is written to a temporary file, synced
// and renamed, so a crash leaves no corrupt blob and no half-visible
// manifest. This package adds what is Skiff's own:
//
//   - authentication: HTTP Basic with any user name and an API token as
//     password, a bearer token the clients that ask for one get from
//     /v2/token, and per-repository authorization against the apps an
//     account can use (403 DENIED otherwise);
//   - a catalog that lists only the repositories of the caller's apps;
//   - finding the image `heroku container:release` names (by its config
//     digest) and handing its blobs to the image store (Import);
//   - garbage collection that keeps what releases refer to (GC).
package registry

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // the filesystem driver
	"github.com/sirupsen/logrus"
)

// Accounts is what the registry needs to know of the platform's accounts.
type Accounts interface {
	// Authenticate returns who the API token secret belongs to, or an
	// error if it belongs to no one.
	Authenticate(ctx context.Context, secret string) (Principal, error)
	// Active reports whether the API token a bearer token was issued for
	// still exists and has not expired: revoking an API token ends its
	// registry tokens too.
	Active(ctx context.Context, p Principal) (bool, error)
	// AppID returns the id of the app named app if the account may push
	// and pull its images, and "" if not: an app that does not exist is
	// "", not an error.
	AppID(ctx context.Context, account, app string) (string, error)
	// Apps returns every app's name by id, for Reconcile.
	Apps(ctx context.Context) (map[string]string, error)
}

// Principal is who a request acts as: an account, through one of its API
// tokens (ids, not secrets).
type Principal struct {
	Account, Token string
}

// Config configures a Registry.
type Config struct {
	// Dir holds the registry's storage, its token key and its upload
	// secret.
	Dir      string
	Accounts Accounts
	// GCGrace protects recent content from GC: blobs written or asked
	// for, and manifests pushed, less than GCGrace ago are kept even if
	// nothing refers to them yet (an upload whose manifest is still to
	// come). Default one hour.
	GCGrace time.Duration
	Logger  *slog.Logger
}

// Registry serves the OCI Distribution API. It is an http.Handler.
type Registry struct {
	cfg    Config
	app    *handlers.App
	driver storagedriver.StorageDriver
	ns     distribution.Namespace
	tokens *tokenKey
	owners *owners
	log    *slog.Logger

	// gc is held shared by every request that writes and exclusively by
	// GC, so that a sweep never sees a manifest half-pushed.
	gc sync.RWMutex
}

const controllerName = "skiff"

var registerOnce sync.Once

// New opens (creating if needed) the registry stored under cfg.Dir.
func New(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Accounts == nil {
		return nil, errors.New("registry: no accounts")
	}
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	// distribution logs every request through logrus at info level;
	// Skiff's own log says what matters.
	logrus.SetLevel(logrus.PanicLevel)
	registerOnce.Do(func() {
		err := auth.Register(controllerName, func(opts map[string]any) (auth.AccessController, error) {
			return opts["registry"].(*Registry), nil
		})
		if err != nil {
			panic(err)
		}
	})
	tk, err := openTokenKey(filepath.Join(cfg.Dir, "token.key"))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	// The upload secret signs upload state between the requests of a
	// chunked upload; kept on disk so uploads resume across restarts.
	secret, err := readOrCreateSecret(filepath.Join(cfg.Dir, "http.secret"))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{cfg: cfg, tokens: tk, log: cfg.Logger}
	root := filepath.Join(cfg.Dir, "storage")
	params := map[string]any{"rootdirectory": root}
	r.driver, err = factory.Create(ctx, "filesystem", params)
	if err != nil {
		return nil, fmt.Errorf("registry: storage: %w", err)
	}
	r.ns, err = storage.NewRegistry(ctx, r.driver, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("registry: storage: %w", err)
	}
	dc := &configuration.Configuration{}
	dc.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": root},
		"delete":     configuration.Parameters{"enabled": true},
	}
	dc.Auth = configuration.Auth{controllerName: configuration.Parameters{"registry": r}}
	dc.HTTP.Secret = secret
	// Non-distributable layers name where they live; they are not pushed.
	dc.Validation.Manifests.URLs.Allow = []string{`^https?://`}
	var perr error
	func() {
		defer func() {
			if v := recover(); v != nil { // NewApp panics on a bad configuration
				perr = fmt.Errorf("registry: %v", v)
			}
		}()
		r.app = handlers.NewApp(ctx, dc)
	}()
	if perr != nil {
		return nil, perr
	}
	// Renames and destroys made while the registry was not running.
	if r.owners, err = loadOwners(cfg.Dir); err != nil {
		return nil, err
	}
	if err := r.Reconcile(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the registry's background work.
func (r *Registry) Close() error { return r.app.Shutdown() }

// ctxKey keys the authenticated account in a request's context.
type ctxKey struct{}

// ServeHTTP authenticates the request, checks that the account may use the
// repository it names, and hands it to distribution.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := req.URL.Path
	switch {
	case p == "/v2/token" || p == "/v2/token/":
		r.serveToken(w, req)
		return
	case p == "/v2" || p == "/v2/":
		if _, ok := r.authenticate(w, req); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{}"))
		}
		return
	case !strings.HasPrefix(p, "/v2/"):
		writeError(w, http.StatusNotFound, "NOT_FOUND", "not a registry path", nil)
		return
	}
	account, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	if p == "/v2/_catalog" {
		r.serveCatalog(w, req, account)
		return
	}
	app, typ, ok := repoOf(p)
	if !ok {
		writeError(w, http.StatusNotFound, "NAME_INVALID",
			"repositories are named <app>/<process-type>, e.g. myapp/web", map[string]string{"path": p})
		return
	}
	if !r.allowed(w, req, account, app) {
		return
	}
	if from := req.URL.Query().Get("from"); from != "" { // a cross-repository mount reads from there
		fapp, _, ok := strings.Cut(from, "/")
		if !ok {
			writeError(w, http.StatusBadRequest, "NAME_INVALID", "mount from <app>/<process-type>", map[string]string{"from": from})
			return
		}
		if !r.allowed(w, req, account, fapp) {
			return
		}
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		r.gc.RLock()
		defer r.gc.RUnlock()
	}
	req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, account))
	if !sha256Only(w, req, p) {
		return
	}
	if (req.Method == http.MethodHead || req.Method == http.MethodGet) && strings.Contains(p, "/blobs/sha256:") {
		// A client that finds a blob here will not upload it again:
		// serveBlob keeps it from GC for the grace period, until its
		// manifest arrives.
		if r.serveBlob(w, req, app+"/"+typ, p[strings.LastIndex(p, "/")+1:]) {
			return
		}
	}
	if i := strings.Index(p, "/referrers/"); i >= 0 {
		r.serveReferrers(w, req, app+"/"+typ, p[i+len("/referrers/"):])
		return
	}
	if r.manifestFallback(w, req, p) {
		return
	}
	if req.Method == http.MethodPut && strings.Contains(p, "/manifests/") {
		w, req = subjectHeader(w, req)
	}
	w.Header().Del("Docker-Distribution-API-Version") // distribution sets its own
	r.app.ServeHTTP(w, req)
}

// repoOf splits a /v2/<app>/<type>/… path. Repositories have exactly two
// components; anything else is not a Skiff repository.
func repoOf(p string) (app, typ string, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(p, "/v2/"), "/", 4)
	if len(parts) < 4 {
		return "", "", false
	}
	switch parts[2] {
	case "manifests", "blobs", "tags", "referrers":
	default:
		return "", "", false
	}
	return parts[0], parts[1], parts[0] != "" && parts[1] != ""
}

// allowed checks that account may use app, answering 403 DENIED if not,
// and that the repositories under its name are its own (see owners).
func (r *Registry) allowed(w http.ResponseWriter, req *http.Request, account, app string) bool {
	id, err := r.cfg.Accounts.AppID(req.Context(), account, app)
	if err == nil && id != "" {
		err = r.own(req.Context(), app, id)
	}
	if err != nil {
		r.log.Error("registry: checking app access", "app", app, "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "could not check access", nil)
		return false
	}
	if id == "" {
		writeError(w, http.StatusForbidden, "DENIED",
			fmt.Sprintf("requested access to the resource is denied: no app %q that this account can use", app), nil)
		return false
	}
	return true
}

// Authorized implements distribution's auth.AccessController: ServeHTTP
// has already authenticated and authorized the request.
func (r *Registry) Authorized(req *http.Request, _ ...auth.Access) (*auth.Grant, error) {
	account, ok := req.Context().Value(ctxKey{}).(string)
	if !ok {
		return nil, challenge{}
	}
	return &auth.Grant{User: auth.UserInfo{Name: account}}, nil
}

// challenge asks the client for credentials.
type challenge struct{}

func (c challenge) Error() string { return "authentication required" }
func (c challenge) SetHeaders(req *http.Request, w http.ResponseWriter) {
	setChallenge(w, req)
}

func setChallenge(w http.ResponseWriter, req *http.Request) {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s://%s/v2/token",service="skiff"`, scheme, req.Host))
	w.Header().Add("WWW-Authenticate", `Basic realm="skiff"`)
}

// authenticate finds the account of the request's credentials: Basic
// (any user, an API token as password) or Bearer (a token from /v2/token,
// or an API token). Without valid credentials it answers 401.
func (r *Registry) authenticate(w http.ResponseWriter, req *http.Request) (string, bool) {
	var who Principal
	var err error
	if _, pass, ok := req.BasicAuth(); ok && pass != "" {
		who, err = r.cfg.Accounts.Authenticate(req.Context(), pass)
	} else if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		if who, err = r.tokens.verify(tok, time.Now()); err == nil {
			var active bool
			if active, err = r.cfg.Accounts.Active(req.Context(), who); err == nil && !active {
				err = errors.New("the API token was revoked")
			}
		} else {
			who, err = r.cfg.Accounts.Authenticate(req.Context(), tok)
		}
	} else {
		err = errors.New("no credentials")
	}
	if err != nil {
		setChallenge(w, req)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED",
			"authentication required: log in with any user name and a Skiff API token as password", nil)
		return "", false
	}
	return who.Account, true
}

// writeError writes the Distribution API's error body.
func writeError(w http.ResponseWriter, status int, code, msg string, detail any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	type e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	json.NewEncoder(w).Encode(struct {
		Errors []e `json:"errors"`
	}{[]e{{code, msg, detail}}})
}

func readOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	s := fmt.Sprintf("%x", buf)
	if err := writeFileAtomic(path, []byte(s)); err != nil {
		return "", err
	}
	return s, nil
}

// writeFileAtomic writes a small private file whole or not at all.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
