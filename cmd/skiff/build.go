package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skiffhq/skiff/internal/api"
	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/runtime"
)

// buildConfig is the settings of builds from source.
type buildConfig struct {
	parallel, memoryMB, timeout, maxSourceMB string
	network                                  string // "true": RUN steps share the server's network namespace
	logRetention                             string
	cacheMB                                  string
	gitAddr                                  string // HTTPS git listener; "" serves git on the API listener only
}

// buildFlags registers the build flags on fs.
func buildFlags(fs *flag.FlagSet, c *buildConfig) {
	str := envFlag(fs)
	str(&c.parallel, "build-parallel", "SKIFF_BUILD_PARALLEL", "2", "builds (of different apps) that run at once")
	str(&c.memoryMB, "build-memory", "SKIFF_BUILD_MEMORY", "1024", "memory limit of each build step's container, in MB")
	str(&c.timeout, "build-timeout", "SKIFF_BUILD_TIMEOUT", "15m", "a build that runs longer fails")
	str(&c.maxSourceMB, "build-max-source", "SKIFF_BUILD_MAX_SOURCE", "1024", "largest source tarball and build layer, in MB")
	str(&c.network, "build-network", "SKIFF_BUILD_NETWORK", "false", "let RUN steps use the host's network (true: trusted Dockerfiles only; they also reach the host's local services)")
	str(&c.logRetention, "build-log-retention", "SKIFF_BUILD_LOG_RETENTION", "720h", "how long a finished build's output is kept")
	str(&c.cacheMB, "build-cache-size", "SKIFF_BUILD_CACHE_SIZE", "5120", "largest layer cache of one app, in MB; the least recently used layers go first")
	str(&c.gitAddr, "git-addr", "SKIFF_GIT_ADDR", "", "address of the HTTPS git listener (certificate from the local CA); git is also served over HTTP on the API address")
}

// startBuilds starts the build service: Dockerfile builds in runc
// containers of their own (state under <data>/builds), git push, and the
// builds API. It needs what dynos need (root, runc).
// The returned stop ends running builds and removes the build runtime's
// leftovers (containers, cgroups).
func startBuilds(ctx context.Context, cfg *serverConfig, p *platform.Platform, images *image.Store, apiURL string, log *slog.Logger) (*build.Service, func(), error) {
	bc := cfg.build
	parallel, err := strconv.Atoi(bc.parallel)
	if err != nil || parallel < 1 {
		return nil, nil, fmt.Errorf("--build-parallel %q: want a positive whole number", bc.parallel)
	}
	mem, err := strconv.ParseInt(bc.memoryMB, 10, 64)
	if err != nil || mem < 16 {
		return nil, nil, fmt.Errorf("--build-memory %q: want a number of MB, at least 16", bc.memoryMB)
	}
	timeout, err := time.ParseDuration(bc.timeout)
	if err != nil || timeout <= 0 {
		return nil, nil, fmt.Errorf("--build-timeout %q: want a duration such as 15m", bc.timeout)
	}
	maxSrc, err := strconv.ParseInt(bc.maxSourceMB, 10, 64)
	if err != nil || maxSrc < 1 {
		return nil, nil, fmt.Errorf("--build-max-source %q: want a number of MB", bc.maxSourceMB)
	}
	network, err := strconv.ParseBool(bc.network)
	if err != nil {
		return nil, nil, fmt.Errorf("--build-network %q: want true or false", bc.network)
	}
	logRetention, err := time.ParseDuration(bc.logRetention)
	if err != nil || logRetention <= 0 {
		return nil, nil, fmt.Errorf("--build-log-retention %q: want a duration such as 720h", bc.logRetention)
	}
	cacheMB, err := strconv.ParseInt(bc.cacheMB, 10, 64)
	if err != nil || cacheMB < 1 {
		return nil, nil, fmt.Errorf("--build-cache-size %q: want a number of MB", bc.cacheMB)
	}
	dir := filepath.Join(cfg.dataDir, "builds")
	rt, err := runtime.New(runtime.Config{Runc: cfg.runc, Root: filepath.Join(cfg.dataDir, "runc-builds"),
		Dir: filepath.Join(dir, "containers"), CgroupParent: cfg.dynoBridge + "-builds"})
	if err != nil {
		return nil, nil, fmt.Errorf("build runtime: %w", err)
	}
	if err := rt.Reap(); err != nil {
		log.Warn("reaping leftover build containers", "err", err)
	}
	init, _ := staticSelf()
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("builds: %w", err)
	}
	b := &build.Builder{Images: images, Runtime: rt, Init: init, Network: network,
		Limits: build.Limits{Memory: mem << 20, Timeout: timeout, MaxLayerBytes: maxSrc << 20}}
	svc, err := build.New(ctx, build.Config{Platform: p, Builder: b, Dir: dir, URL: apiURL, Parallel: parallel,
		MaxSourceBytes: maxSrc << 20, HookBinary: exe, LogRetention: logRetention,
		CacheMaxBytes: cacheMB << 20, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		svc.Close()
		if err := rt.Reap(); err != nil {
			log.Warn("reaping build containers", "err", err)
		}
	}
	return svc, stop, nil
}

// holdBuiltImages lets the image garbage collector (the registry's
// releaser, when the registry runs) keep what builds make until their
// releases name it, and publishes built images to the app's registry
// repositories. Builds keep their stacks through the platform's list of
// images in use.
func holdBuiltImages(builds *build.Service, images api.Images) {
	if h, ok := images.(interface{ Hold(id string) }); ok {
		builds.SetHold(h.Hold)
	}
	if r, ok := images.(*releaser); ok {
		builds.SetPublish(r.Publish)
	}
}

// withGit serves git's smart HTTP (`git push http://<api>/<app>.git`) on
// the API's listener, beside the API.
func withGit(api http.Handler, builds *build.Service) http.Handler {
	if builds == nil {
		return api
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if build.IsGitPath(r.URL.Path) {
			builds.ServeGit(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// serveGitTLS serves git over HTTPS on --git-addr with a certificate from
// the local CA (git needs GIT_SSL_CAINFO=<data-dir>/pki/ca.pem), for
// remotes as the heroku CLI writes them: https://<git host>/<app>.git.
// It returns the listener's URL and a function that stops it.
func serveGitTLS(cfg *serverConfig, ca *pki.CA, builds *build.Service, log *slog.Logger) (string, func(), error) {
	if cfg.build.gitAddr == "" || builds == nil {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.build.gitAddr)
	if err != nil {
		return "", nil, fmt.Errorf("git listener: %w", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	names := []string{"git." + cfg.baseDomain, "localhost", "127.0.0.1", "::1"}
	if !addr.IP.IsUnspecified() {
		names = append(names, addr.IP.String())
	}
	certs := ca.Renewer(names, 365*24*time.Hour)
	if _, err := certs.Certificate(); err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("git listener: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if build.IsGitPath(r.URL.Path) {
				builds.ServeGit(w, r)
				return
			}
			http.NotFound(w, r)
		}),
		TLSConfig:         &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go srv.ServeTLS(ln, "", "")
	return "https://" + dialable(addr), func() { srv.Close() }, nil
}

// runGitHook is `skiff git-hook`, the pre-receive hook of app repositories.
func runGitHook() int { return build.RunHook(os.Stdin, os.Stdout) }
