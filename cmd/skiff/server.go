package main

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/internal/api"
	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/cli"
	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/metrics"
	"github.com/skiffhq/skiff/internal/network"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/runtime"
	"github.com/skiffhq/skiff/internal/store"
)

// serverConfig is every setting of `skiff server`. Each is a flag with a
// matching SKIFF_* environment variable; the flag wins.
type serverConfig struct {
	dataDir    string
	apiAddr    string
	baseDomain string
	adminEmail string
	rateLimit  int
	rateRefill float64
	maxDynos   int
	logLevel   string

	dynos      bool   // run the dyno manager
	runc       string // OCI runtime binary
	dynoBridge string // bridge, netns prefix and cgroup parent of this server's dynos
	dynoSubnet string

	logStreamMax time.Duration // Logplex: tail streams end after this long and clients reconnect (0: never)
	drainCAFile  string        // drains: extra trusted roots for syslog+tls and https drains
	metricsAddr  string        // GET /metrics (Prometheus text) listens here; "": off

	certs certsConfig // the platform's certificate and ACME (certs.go)

	registry registryConfig // the embedded container registry (registry.go)

	rendezvous rendezvousConfig // heroku run (rendezvous.go)

	routerHTTP, routerHTTPS string      // Router: listen addresses ("off": none)
	routerLoops             string      // Router: event loops for plain HTTP ("", "off" or a number)
	build                   buildConfig // builds from source
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skiff"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "skiff")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "skiff")
}

// envDefault returns the environment's value for name, else def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envFlag returns a function that defines string flags on fs whose
// default comes from an environment variable, which the usage names.
func envFlag(fs *flag.FlagSet) func(p *string, name, env, def, usage string) {
	return func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, envDefault(env, def), usage+" ($"+env+")")
	}
}

func parseServerFlags(args []string) (*serverConfig, error) {
	fs := flag.NewFlagSet("skiff server", flag.ContinueOnError)
	c := &serverConfig{}
	str := envFlag(fs)
	str(&c.dataDir, "data-dir", "SKIFF_DATA_DIR", defaultDataDir(), "directory for the database and all state")
	str(&c.apiAddr, "api-addr", "SKIFF_API_ADDR", "127.0.0.1:5000", "address the Platform API listens on")
	str(&c.baseDomain, "base-domain", "SKIFF_BASE_DOMAIN", "localhost", "apps answer on <app>.<base-domain>")
	str(&c.adminEmail, "admin-email", "SKIFF_ADMIN_EMAIL", "admin@skiff.local", "email of the admin account created at first start")
	str(&c.logLevel, "log-level", "SKIFF_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.runc, "runc", "SKIFF_RUNC", "runc", "OCI runtime binary that runs dynos")
	str(&c.dynoBridge, "dyno-bridge", "SKIFF_DYNO_BRIDGE", "skiff0", "bridge of the dyno network; also names its netns and cgroups (one per server on a host)")
	str(&c.dynoSubnet, "dyno-subnet", "SKIFF_DYNO_SUBNET", "10.213.0.0/20", "IPv4 subnet of the dyno network")
	var dynos string
	str(&dynos, "dynos", "SKIFF_DYNOS", "true", "run dynos on this host (false: API only)")
	var rateLimit, rateRefill, maxDynos string
	str(&rateLimit, "rate-limit", "SKIFF_RATE_LIMIT", "4500", "API requests an account may make in a burst")
	str(&rateRefill, "rate-refill", "SKIFF_RATE_REFILL", "75", "API requests an account regains each minute")
	str(&maxDynos, "max-dynos", "SKIFF_MAX_DYNOS", "100", "dynos one app may run, all process types together")
	var logStreamMax string // Logplex.
	str(&logStreamMax, "log-stream-max", "SKIFF_LOG_STREAM_MAX", "0", "end log tail streams after this long; clients reconnect without loss (0: never)")
	str(&c.drainCAFile, "drain-ca-file", "SKIFF_DRAIN_CA_FILE", "", "PEM certificates trusted by TLS log drains besides the system's roots")
	str(&c.metricsAddr, "metrics-addr", "SKIFF_METRICS_ADDR", "", "address of the metrics endpoint (GET /metrics, Prometheus text format); empty: none")
	c.certs.register(str)
	checkRegistry := registryFlags(fs, &c.registry)
	c.rendezvous.flags(fs)
	str(&c.routerHTTP, "router-http-addr", "SKIFF_ROUTER_HTTP_ADDR", "127.0.0.1:8080", "address the router serves apps on over HTTP (off: none)")
	str(&c.routerHTTPS, "router-https-addr", "SKIFF_ROUTER_HTTPS_ADDR", "127.0.0.1:8443", "address the router serves apps on over HTTPS (off: none)")
	str(&c.routerLoops, "router-loops", "SKIFF_ROUTER_LOOPS", "", "event loops serving plain HTTP keep-alive (Linux): a number, empty for one per CPU, off for a goroutine per connection")
	buildFlags(fs, &c.build)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: skiff server [flags]\n\nRuns the Skiff API with embedded defaults (SQLite under --data-dir).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := checkRegistry(); err != nil {
		return nil, err
	}
	var err error
	if c.rateLimit, err = strconv.Atoi(rateLimit); err != nil || c.rateLimit < 1 {
		return nil, fmt.Errorf("--rate-limit %q: want a positive whole number", rateLimit)
	}
	if c.rateRefill, err = strconv.ParseFloat(rateRefill, 64); err != nil || c.rateRefill <= 0 {
		return nil, fmt.Errorf("--rate-refill %q: want a positive number", rateRefill)
	}
	if c.maxDynos, err = strconv.Atoi(maxDynos); err != nil || c.maxDynos < 1 {
		return nil, fmt.Errorf("--max-dynos %q: want a positive whole number", maxDynos)
	}
	if c.dynos, err = strconv.ParseBool(dynos); err != nil {
		return nil, fmt.Errorf("--dynos %q: want true or false", dynos)
	}
	if c.logStreamMax, err = time.ParseDuration(logStreamMax); err != nil || c.logStreamMax < 0 { // Logplex.
		return nil, fmt.Errorf("--log-stream-max %q: want a duration such as 30m, or 0", logStreamMax)
	}
	if err := c.certs.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func runServer(args []string) error {
	cfg, err := parseServerFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := store.Open(filepath.Join(cfg.dataDir, "skiff.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	// The local CA issues the certificates of Skiff's own TLS services.
	ca, err := pki.Open(filepath.Join(cfg.dataDir, "pki"), "Skiff local CA")
	if err != nil {
		return err
	}
	log.Info("local CA", "certificate", filepath.Join(cfg.dataDir, "pki", pki.CertFile), "subject", ca.Cert.Subject.CommonName)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	bus := platform.NewBus()
	p := platform.New(db, bus, platform.WithLimits(platform.Limits{MaxDynos: cfg.maxDynos}), platform.WithBaseDomain(cfg.baseDomain))
	// Certificates: GetCertificate and ChallengeHandler are for the router.
	certMgr, err := startCerts(ctx, cfg, p, bus, ca, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.apiAddr)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	apiURL := "http://" + dialable(ln.Addr().(*net.TCPAddr))

	// Logplex. Opened before the dynos start so that they can log into it,
	// closed after they have stopped (defers run in reverse).
	logs, err := logplex.Open(logplex.Config{Dir: filepath.Join(cfg.dataDir, "logs"), URL: apiURL,
		Events: bus, StreamMax: cfg.logStreamMax, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	defer logs.Close()
	context.AfterFunc(ctx, logs.EndStreams) // open tail streams must not hold up the HTTP shutdown
	drains, stopDrains, err := startDrains(ctx, cfg.drainCAFile, p, bus, logs, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopDrains()
	// End of Logplex.

	images, err := image.Open(filepath.Join(cfg.dataDir, "images"))
	if err != nil {
		ln.Close()
		return fmt.Errorf("image store: %w", err)
	}
	var dynos *dyno.Manager
	var stopDynos func()
	var builds *build.Service
	if cfg.dynos {
		dynos, stopDynos, err = startDynos(ctx, cfg, p, bus, logs, images, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopDynos()
		var stopBuilds func()
		if builds, stopBuilds, err = startBuilds(ctx, cfg, p, images, apiURL, log); err != nil {
			ln.Close()
			return err
		}
		defer stopBuilds()
	}

	// Router.
	loops, err := parseLoops(cfg.routerLoops)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--router-loops: %w", err)
	}
	rtr, hub, stopRouter, err := startRouter(ctx, routerSetup{httpAddr: cfg.routerHTTP, httpsAddr: cfg.routerHTTPS, loops: loops,
		baseDomain: cfg.baseDomain, platform: p, bus: bus, dynos: dynos, logs: logs, certs: certMgr,
		domains: p.Hostnames, log: log})
	if err != nil {
		ln.Close()
		return err
	}
	defer stopRouter()

	// Metrics of the log pipeline and the router, for monitoring.
	sources := []metrics.Source{logs, drains}
	if rtr != nil {
		sources = append(sources, rtr)
	}
	stopMetrics, err := startMetrics(cfg.metricsAddr, log, sources...)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()

	base := cfg.baseDomain
	apiCfg := api.Config{
		WebURL:     func(app string) string { return "http://" + app + "." + base + "/" },
		GitURL:     func(app string) string { return "https://git." + base + "/" + app + ".git" },
		RateLimit:  cfg.rateLimit,
		RateRefill: cfg.rateRefill,
		Logger:     log,
	}
	if dynos != nil {
		apiCfg.Dynos = dynos
		rdv, err := startRendezvous(ctx, &cfg.rendezvous, ca, log)
		if err != nil {
			ln.Close()
			return err
		}
		if rdv != nil {
			apiCfg.Rendezvous = rdv
		}
	}
	apiCfg.Logs = logs // Logplex.
	apiCfg.Routers = routersAPI{hub: hub, certs: certMgr, logs: logs}
	var stopRegistry func()
	if apiCfg.Images, stopRegistry, err = startRegistry(ctx, cfg, p, images, dynos, ca, log); err != nil {
		ln.Close()
		return err
	}
	defer stopRegistry()
	if builds != nil {
		apiCfg.Builds = builds
		holdBuiltImages(builds, apiCfg.Images)
	}
	defer startRemover(ctx, p, bus, builds, apiCfg.Images, logs, log)() // destroyed apps leave nothing
	handler := api.New(p, apiCfg)

	fmt.Printf("API URL: %s\n", apiURL)
	gitURL, stopGit, err := serveGitTLS(cfg, ca, builds, log) // builds: git over HTTPS
	if err != nil {
		ln.Close()
		return err
	}
	defer stopGit()
	if gitURL != "" {
		fmt.Printf("Git URL: %s\n", gitURL)
	}
	if err := firstStart(ctx, p, cfg, apiURL); err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{Handler: withGit(handler, builds), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("skiff server started", "api", apiURL, "data_dir", cfg.dataDir)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown) // then the deferred stopDynos stops every dyno gracefully
}

// startDynos starts the dyno manager with the container runner: images
// under the data dir, one network namespace per dyno on this server's
// bridge, runc. Whatever an earlier run left behind (containers, mounts,
// namespaces) is reaped first. The returned stop waits until every dyno is
// down, then removes the dyno network.
func startDynos(ctx context.Context, cfg *serverConfig, p *platform.Platform, bus *platform.Bus, logs dyno.Logs, images *image.Store, log *slog.Logger) (*dyno.Manager, func(), error) {
	hint := " (run as root with runc installed, or start with --dynos=false for an API-only server)"
	subnet, err := netip.ParsePrefix(cfg.dynoSubnet)
	if err != nil {
		return nil, nil, fmt.Errorf("--dyno-subnet: %w", err)
	}
	prefix := strings.ReplaceAll(cfg.dynoBridge, "-", "_")
	// Host-side veth names start with a prefix unique to this bridge: a
	// network manager removes interfaces with its prefix that it does not
	// know, so two servers on one host must not share one.
	sum := sha256.Sum256([]byte(cfg.dynoBridge))
	veth := "v" + hex.EncodeToString(sum[:2]) + "-"
	nw, err := network.Open(network.Config{Bridge: cfg.dynoBridge, Subnet: subnet, Prefix: prefix, VethPrefix: veth})
	if err != nil {
		return nil, nil, fmt.Errorf("dyno network: %w%s", err, hint)
	}
	rt, err := runtime.New(runtime.Config{Runc: cfg.runc, Root: filepath.Join(cfg.dataDir, "runc"),
		Dir: filepath.Join(cfg.dataDir, "dynos"), CgroupParent: cfg.dynoBridge})
	if err != nil {
		nw.Close(true)
		return nil, nil, fmt.Errorf("dyno runtime: %w%s", err, hint)
	}
	if err := rt.Reap(); err != nil {
		log.Warn("reaping leftover containers", "err", err)
	}
	if err := nw.Reap(nil); err != nil {
		log.Warn("reaping leftover dyno networks", "err", err)
	}
	init, err := staticSelf()
	if err != nil {
		log.Warn("dynos run without an init: signals the app does not handle are ignored", "err", err)
	}
	m := dyno.New(dyno.Config{
		Runner: &dyno.ContainerRunner{Images: images, Net: nw, Runtime: rt, Init: init},
		Source: p, Events: bus, Logs: logs, Log: log,
		Unroute: 100 * time.Millisecond, // the router's feed takes ~10 ms to drop a stopping dyno
	})
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(mctx)
	}()
	stop := func() {
		cancel()
		<-done
		if err := rt.Reap(); err != nil {
			log.Warn("reaping containers", "err", err)
		}
		if err := nw.Close(true); err != nil {
			log.Warn("removing the dyno network", "err", err)
		}
	}
	return m, stop, nil
}

// staticSelf returns this executable's path if it can serve as a dyno's
// init: it must be statically linked, as dyno images have no libc to offer
// (build with CGO_ENABLED=0, as scripts/run does).
func staticSelf() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0)", exe)
		}
	}
	return exe, nil
}

// firstStart creates the admin account when the store has none, prints its
// token once, writes it to <data-dir>/admin-token for scripts and, unless
// the user already has one, to the skiff client's login file.
func firstStart(ctx context.Context, p *platform.Platform, cfg *serverConfig, apiURL string) error {
	admin, auth, err := p.EnsureAdmin(ctx, cfg.adminEmail)
	if err != nil || admin == nil {
		return err
	}
	// The file is complete before the banner names the token, so a script
	// that reads it on seeing the banner never finds it missing or short.
	path := filepath.Join(cfg.dataDir, "admin-token")
	if err := os.WriteFile(path+".tmp", []byte(auth.Secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	fmt.Printf("Admin email: %s\nAdmin token: %s\n", admin.Email, auth.Secret)
	if l, err := cli.ReadLogin(); err == nil && l.Token == "" {
		if path, err := cli.WriteLogin(cli.Login{APIURL: apiURL, Email: admin.Email, Token: auth.Secret}); err == nil {
			slog.Info("saved the admin login for the skiff client", "file", path)
		}
	}
	return nil
}

// dialable turns a listener address into one a client can dial: an
// unspecified host (0.0.0.0, ::) becomes loopback.
func dialable(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(a.Port)
}

// lockDataDir takes an exclusive lock on the data directory so that two
// servers never share one database.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "skiff.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another skiff server", dir)
	}
	return func() { f.Close() }, nil
}
