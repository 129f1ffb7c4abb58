package main

// The embedded container registry: its flags, its listener, the bridge
// between the platform's accounts and the registry's access checks, the
// readying of released images, and the periodic garbage collection.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/api"
	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/registry"
)

// registryConfig is the registry's part of serverConfig.
type registryConfig struct {
	addr         string        // listen address; "off" disables the registry
	keepReleases int           // images of each app's newest N releases are kept (0: all)
	gcInterval   time.Duration // between garbage collections (0: only at start)
	gcGrace      time.Duration // content younger than this is never collected
	tls          bool          // serve HTTPS with a certificate from the local CA
}

// registryFlags declares the registry's flags on fs; the returned function,
// called after fs.Parse, checks and converts them into c.
func registryFlags(fs *flag.FlagSet, c *registryConfig) func() error {
	var keep, interval, grace, useTLS string
	fs.StringVar(&c.addr, "registry-addr", envDefault("SKIFF_REGISTRY_ADDR", "127.0.0.1:5002"),
		"address the container registry listens on; off to disable ($SKIFF_REGISTRY_ADDR)")
	fs.StringVar(&keep, "registry-keep-releases", envDefault("SKIFF_REGISTRY_KEEP_RELEASES", "0"),
		"keep the images of each app's newest N releases, plus the current one (0: of every release) ($SKIFF_REGISTRY_KEEP_RELEASES)")
	fs.StringVar(&interval, "registry-gc-interval", envDefault("SKIFF_REGISTRY_GC_INTERVAL", "1h"),
		"time between garbage collections of unreferenced images and blobs (0: only at start) ($SKIFF_REGISTRY_GC_INTERVAL)")
	fs.StringVar(&grace, "registry-gc-grace", envDefault("SKIFF_REGISTRY_GC_GRACE", "1h"),
		"never collect blobs and manifests pushed or asked for less than this long ago ($SKIFF_REGISTRY_GC_GRACE)")
	fs.StringVar(&useTLS, "registry-tls", envDefault("SKIFF_REGISTRY_TLS", "false"),
		"serve the registry over HTTPS with a certificate from the local CA (<data-dir>/pki/ca.pem) ($SKIFF_REGISTRY_TLS)")
	return func() error {
		var err error
		if c.tls, err = strconv.ParseBool(useTLS); err != nil {
			return fmt.Errorf("--registry-tls %q: want true or false", useTLS)
		}
		if c.keepReleases, err = strconv.Atoi(keep); err != nil || c.keepReleases < 0 {
			return fmt.Errorf("--registry-keep-releases %q: want a whole number, 0 for all", keep)
		}
		if c.gcInterval, err = time.ParseDuration(interval); err != nil || c.gcInterval < 0 {
			return fmt.Errorf("--registry-gc-interval %q: want a duration such as 1h, or 0", interval)
		}
		if c.gcGrace, err = time.ParseDuration(grace); err != nil || c.gcGrace < 0 {
			return fmt.Errorf("--registry-gc-grace %q: want a duration such as 1h", grace)
		}
		if c.gcGrace == 0 {
			c.gcGrace = time.Nanosecond // "no grace" (registry.Config takes 0 as the default)
		}
		return nil
	}
}

// startRegistry serves the registry on its own listener. The API's Images
// should be set to the returned value (nil when the registry is off), so
// that releases import from it. The returned stop shuts it down.
func startRegistry(ctx context.Context, cfg *serverConfig, p *platform.Platform, images *image.Store,
	dynos *dyno.Manager, ca *pki.CA, log *slog.Logger) (api.Images, func(), error) {
	rc := cfg.registry
	if rc.addr == "off" || rc.addr == "" {
		return nil, func() {}, nil
	}
	reg, err := registry.New(ctx, registry.Config{Dir: filepath.Join(cfg.dataDir, "registry"),
		Accounts: platformAccounts{p}, GCGrace: rc.gcGrace, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", rc.addr)
	if err != nil {
		reg.Close()
		return nil, nil, fmt.Errorf("registry listener: %w", err)
	}
	host := dialable(ln.Addr().(*net.TCPAddr))
	if rc.tls {
		hostname, _, _ := net.SplitHostPort(host)
		names := []string{"localhost", "127.0.0.1", "registry." + cfg.baseDomain, hostname}
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: ca.Renewer(names, certLifetime).GetCertificate, MinVersion: tls.VersionTLS12})
	}
	fmt.Printf("Registry: %s\n", host)
	rel := &releaser{p: p, reg: reg, images: images, grace: rc.gcGrace, unpack: cfg.dynos, prepared: map[string]time.Time{}}
	if dynos != nil {
		rel.running = func(appID string) []int {
			var vs []int
			for _, d := range dynos.Dynos(appID) {
				vs = append(vs, d.Release)
			}
			return vs
		}
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		rel.gcLoop(gctx, rc.keepReleases, rc.gcInterval, log)
	}()
	log.Info("registry started", "addr", host, "tls", rc.tls)
	return rel, func() {
		cancel()
		<-done
		shutdown, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		srv.Shutdown(shutdown)
		reg.Close()
	}, nil
}

// platformAccounts answers the registry's access questions from the platform.
type platformAccounts struct{ p *platform.Platform }

func (a platformAccounts) Authenticate(ctx context.Context, secret string) (registry.Principal, error) {
	acc, tok, err := a.p.Authenticate(ctx, secret)
	if err != nil {
		return registry.Principal{}, err
	}
	return registry.Principal{Account: acc.ID, Token: tok.ID}, nil
}

func (a platformAccounts) Active(ctx context.Context, who registry.Principal) (bool, error) {
	auths, err := a.p.Authorizations(ctx, &platform.Account{ID: who.Account}, "")
	if err != nil {
		return false, err
	}
	for _, t := range auths {
		if t.ID == who.Token {
			return t.ExpiresAt == nil || time.Now().Before(*t.ExpiresAt), nil
		}
	}
	return false, nil
}

func (a platformAccounts) AppID(ctx context.Context, account, app string) (string, error) {
	ap, err := a.p.App(ctx, &platform.Account{ID: account}, app)
	if e, ok := platform.AsError(err); ok && (e.Kind == platform.KindNotFound || e.Kind == platform.KindForbidden) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return ap.ID, nil
}

func (a platformAccounts) Apps(ctx context.Context) (map[string]string, error) {
	live, err := a.p.LiveState(ctx)
	if err != nil {
		return nil, err
	}
	return live.Apps, nil
}

// releaser readies released images and collects the ones no release needs.
type releaser struct {
	p      *platform.Platform
	reg    *registry.Registry
	images *image.Store
	grace  time.Duration
	unpack bool // this server runs dynos: unpack released images (as root) at release
	// running lists the release versions an app's dynos run, whose images
	// (overlay lower layers) must stay; nil without dynos.
	running func(appID string) []int

	mu       sync.Mutex
	prepared map[string]time.Time // images readied for a release that may not be recorded yet
}

// Prepare imports each image from the registry repository <app>/<type>
// into the image store, unless the store has it already, and, when this
// server runs dynos, unpacks its layers: an image the dynos could not run
// (a layer that escapes its root, a broken tar) fails the release instead
// of its dynos.
func (r *releaser) Prepare(ctx context.Context, actor *platform.Account, ident string, updates []platform.ImageUpdate) error {
	app, err := r.p.App(ctx, actor, ident)
	if err != nil {
		return err
	}
	for _, u := range updates {
		r.Hold(u.Image)
		if err := r.prepare(ctx, app.Name, u); err != nil {
			return fmt.Errorf("Cannot release %s for %s: %w", u.Image, u.Type, err)
		}
	}
	return nil
}

// Hold keeps the image id through garbage collections for the grace
// period, as if readied for a release: builds call it for the images they
// make before their release is recorded.
func (r *releaser) Hold(id string) {
	r.mu.Lock()
	r.prepared[id] = time.Now()
	r.mu.Unlock()
}

// Publish puts a built image into the registry repository <app>/<typ> as
// its latest, sharing the image store's blob files (see build.Publisher).
func (r *releaser) Publish(ctx context.Context, app, typ, id string) (string, error) {
	return r.reg.Publish(ctx, r.images, app, typ, id, "latest")
}

func (r *releaser) prepare(ctx context.Context, app string, u platform.ImageUpdate) error {
	if _, err := r.images.Resolve(u.Image); err != nil {
		_, err := r.reg.Import(ctx, r.images, app, u.Type, u.Image)
		if errors.Is(err, registry.ErrNoImage) {
			return fmt.Errorf("no such image in %s/%s (push it first, or it was garbage-collected)", app, u.Type)
		}
		if err != nil {
			return err
		}
	}
	if !r.unpack {
		return nil
	}
	_, err := r.images.Image(u.Image)
	return err
}

// keep returns the images GC must keep: those of retained releases and
// those readied for a release within the grace period.
func (r *releaser) keep(ctx context.Context, keepReleases int) (func(string) bool, error) {
	released, err := r.p.ReleasedImages(ctx, keepReleases, r.running)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	for id, at := range r.prepared {
		if time.Since(at) > r.grace {
			delete(r.prepared, id)
		}
	}
	r.mu.Unlock()
	// The prepared and held images are read when GC asks, not now: an
	// image held after this (a build that just stored it) is kept too.
	return func(id string) bool { return released[id] || r.held(id) }, nil
}

// held reports whether id was readied for a release, or held by a build,
// within the grace period.
func (r *releaser) held(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.prepared[id]
	if ok && time.Since(at) > r.grace {
		delete(r.prepared, id)
		return false
	}
	return ok
}

// gc collects once: the image store first, then the registry.
func (r *releaser) gc(ctx context.Context, keepReleases int, log *slog.Logger) {
	keep, err := r.keep(ctx, keepReleases)
	if err != nil {
		log.Error("image gc: reading releases", "err", err)
		return
	}
	ist, err := r.images.Retain(keep)
	if err != nil {
		log.Error("image gc", "err", err)
		return
	}
	rst, err := r.reg.GC(ctx, keep)
	if err != nil {
		log.Error("registry gc", "err", err)
		return
	}
	log.Info("image gc", "images_removed", ist.Images, "image_blobs_removed", ist.Blobs, "layers_removed", ist.Layers,
		"registry_manifests_removed", rst.Manifests, "registry_blobs_removed", rst.Blobs, "registry_bytes_freed", rst.Bytes)
}

// gcLoop collects at start and then every interval (never if 0) until ctx ends.
func (r *releaser) gcLoop(ctx context.Context, keepReleases int, interval time.Duration, log *slog.Logger) {
	r.gc(ctx, keepReleases, log)
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.gc(ctx, keepReleases, log)
		}
	}
}
