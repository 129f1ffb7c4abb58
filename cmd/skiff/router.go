package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/internal/router"
	"github.com/skiffhq/skiff/internal/routing"
)

// runRouter is `skiff router`: the router alone, fed either by a routing
// table file that is reloaded on SIGHUP and when the file changes, or by a
// running Skiff server's API (--api), which pushes every change.
func runRouter(args []string) error {
	fs := flag.NewFlagSet("skiff router", flag.ContinueOnError)
	str := envFlag(fs)
	var httpAddr, httpsAddr, tablePath, apiURL, apiCA, metricsAddr, logs, loops string
	str(&httpAddr, "http-addr", "SKIFF_ROUTER_HTTP_ADDR", "127.0.0.1:8080", "plain HTTP listen address (empty: none)")
	str(&httpsAddr, "https-addr", "SKIFF_ROUTER_HTTPS_ADDR", "", "HTTPS listen address; needs certificates in the table (empty: none)")
	str(&tablePath, "table", "SKIFF_ROUTER_TABLE", "", "routing table file (JSON; see docs/router.md)")
	str(&apiURL, "api", "SKIFF_ROUTER_API", "", "take the routing table from this Skiff server's API instead of a file; an admin's token in $SKIFF_ROUTER_TOKEN")
	str(&apiCA, "api-ca", "SKIFF_ROUTER_API_CA", "", "PEM CA certificate to trust for an https:// --api, besides the system's")
	str(&metricsAddr, "metrics-addr", "SKIFF_ROUTER_METRICS_ADDR", "", "serve Prometheus metrics at http://<addr>/metrics (empty: none)")
	str(&loops, "loops", "SKIFF_ROUTER_LOOPS", "", "event loops serving plain HTTP keep-alive (Linux): a number, empty for one per CPU, off for a goroutine per connection")
	str(&logs, "log", "SKIFF_ROUTER_LOG", "", "where router log lines go: stdout, none, or api (the apps' logs on the --api server; its default)")
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile to this file until exit (for benchmarking)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: skiff router --table FILE [flags]\n       skiff router --api URL [flags]\n\nRuns Skiff's router alone over a routing table file or a Skiff server's routing table.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if (tablePath == "") == (apiURL == "") {
		return errors.New("give exactly one of --table and --api")
	}
	if logs == "" {
		logs = "stdout"
		if apiURL != "" {
			logs = "api"
		}
	}
	switch {
	case logs == "api" && apiURL == "":
		return errors.New("--log api needs --api")
	case logs != "stdout" && logs != "none" && logs != "api":
		return fmt.Errorf("--log %q: want stdout, none or api", logs)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cs router.Certs
	nloops, err := parseLoops(loops)
	if err != nil {
		return fmt.Errorf("--loops: %w", err)
	}
	cfg := router.Config{GetCertificate: cs.GetCertificate, Loops: nloops}
	var client *routing.Client
	if apiURL != "" {
		token := os.Getenv("SKIFF_ROUTER_TOKEN")
		if token == "" {
			return errors.New("--api needs an admin's API token in $SKIFF_ROUTER_TOKEN")
		}
		hc, err := apiHTTPClient(apiCA)
		if err != nil {
			return err
		}
		client = &routing.Client{URL: apiURL, Token: token, HTTP: hc}
		cfg.ACME = client.ChallengeHandler(log)
	}
	var out *lineWriter
	var wg sync.WaitGroup
	defer wg.Wait() // the last router lines go out before the exit
	switch logs {
	case "stdout":
		out = &lineWriter{w: bufio.NewWriterSize(os.Stdout, 64<<10)}
		cfg.Log = out.log
		go out.flushEvery(100 * time.Millisecond)
	case "api":
		sink := &routing.LogSink{Client: client, Log: log}
		cfg.Log = sink.Add
		lctx, cancel := context.WithCancel(context.Background())
		defer cancel() // after the router has closed: see the returns below
		wg.Go(func() { sink.Run(lctx) })
	}
	r := router.New(cfg)

	// The first table, before any listener opens: a router without one
	// would answer every request with "no such app".
	var etag, stamp string
	apply := func(routes []router.Route, certs []router.NamedCert, why string) error {
		if err := cs.SetNamed(certs); err != nil {
			return err
		}
		r.SetRoutes(routes)
		log.Info("routing table reloaded", "on", why, "routes", len(routes), "certificates", len(certs))
		return nil
	}
	if client != nil {
		if err := firstTable(ctx, client, log, func(t *routing.Table, certs []router.NamedCert, tag string) error {
			etag = tag
			return apply(t.Routes, certs, "start")
		}); err != nil {
			return err
		}
	} else {
		// The stamp is taken before the read, so that a change written
		// at any moment after it is seen by the watch below.
		stamp = fileStamp(tablePath)
		f, certs, err := router.ReadFile(tablePath)
		if err != nil {
			return err
		}
		if err := apply(f.Routes, certs, "start"); err != nil {
			return err
		}
	}
	if httpsAddr != "" && cs.Empty() {
		return errors.New("--https-addr needs at least one certificate in the routing table")
	}

	errc := make(chan error, 3)
	listen := func(addr string, serve func(net.Listener) error) error {
		if addr == "" {
			return nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		log.Info("router listening", "addr", l.Addr().String())
		go func() { errc <- serve(l) }()
		return nil
	}
	if err := listen(httpAddr, r.Serve); err != nil {
		return err
	}
	if err := listen(httpsAddr, r.ServeTLS); err != nil {
		return err
	}
	if metricsAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			r.WriteMetrics(w)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		if err := listen(metricsAddr, srv.Serve); err != nil {
			return err
		}
		defer srv.Close()
	}
	defer func() {
		r.Close()
		if out != nil {
			out.flush()
		}
	}()

	if client != nil {
		wg.Go(func() {
			followAPI(ctx, client, etag, log, func(t *routing.Table, certs []router.NamedCert) error {
				return apply(t.Routes, certs, "api")
			})
		})
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			stop()
			return err
		}
	}

	// Reload on SIGHUP and when the file changes (checked every second).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reload := func(why string) {
		f, certs, err := router.ReadFile(tablePath)
		if err != nil {
			log.Error("routing table not reloaded; the previous one stays", "err", err)
			return
		}
		if err := apply(f.Routes, certs, why); err != nil {
			log.Error("certificates not reloaded", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-hup:
			stamp = fileStamp(tablePath)
			reload("SIGHUP")
		case <-tick.C:
			if s := fileStamp(tablePath); s != stamp {
				stamp = s
				reload("change")
			}
		}
	}
}

// apiWait is how long one poll of the API waits for a change.
const apiWait = 30 * time.Second

// firstTable fetches the routing table from the API, retrying until it
// succeeds or ctx ends.
func firstTable(ctx context.Context, c *routing.Client, log *slog.Logger, use func(*routing.Table, []router.NamedCert, string) error) error {
	for delay := time.Second; ; delay = min(2*delay, 10*time.Second) {
		t, certs, tag, err := c.Fetch(ctx, "", 0)
		if err == nil {
			return use(t, certs, tag)
		}
		log.Error("no routing table yet; retrying", "api", c.URL, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// followAPI long-polls the API for changes to the routing table until ctx
// ends. When the API cannot be reached, the router keeps the table it has.
func followAPI(ctx context.Context, c *routing.Client, etag string, log *slog.Logger, use func(*routing.Table, []router.NamedCert) error) {
	delay := time.Second
	for ctx.Err() == nil {
		t, certs, tag, err := c.Fetch(ctx, etag, apiWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("routing table not refreshed; the previous one stays", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(2*delay, 10*time.Second)
			continue
		}
		delay = time.Second
		if t == nil {
			continue // unchanged
		}
		if err := use(t, certs); err != nil {
			log.Error("routing table not applied; the previous one stays", "err", err)
			continue
		}
		etag = tag
	}
}

// apiHTTPClient is the client for --api: no overall timeout (a poll waits
// for changes), the system's roots plus caFile's.
func apiHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--api-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--api-ca: %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

// fileStamp identifies one version of the file at path. Besides the
// modification time and size it holds the inode and change time: a file
// replaced by rename within one tick of the kernel's coarse clock may have
// the same mtime and size as the one before.
func fileStamp(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	return fmt.Sprint(st.Ino, st.Ctim.Nano(), st.Mtim.Nano(), st.Size)
}

// lineWriter prints router log lines as `heroku logs` shows them, in
// batches.
type lineWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
}

func (l *lineWriter) log(_, app, line string) {
	l.mu.Lock()
	l.buf = time.Now().UTC().AppendFormat(l.buf[:0], "2006-01-02T15:04:05.000000+00:00")
	l.buf = append(l.buf, " heroku[router]: "...)
	l.buf = append(l.buf, line...)
	l.buf = append(l.buf, '\n')
	l.w.Write(l.buf)
	l.mu.Unlock()
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	l.w.Flush()
	l.mu.Unlock()
}

func (l *lineWriter) flushEvery(d time.Duration) {
	for range time.Tick(d) {
		l.flush()
	}
}
