package main

import (
	"bufio"
	"context"
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
)

// runRouter is `skiff router`: the router alone, fed by a routing table
// file that is reloaded on SIGHUP and when the file changes.
func runRouter(args []string) error {
	fs := flag.NewFlagSet("skiff router", flag.ContinueOnError)
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, envDefault(env, def), usage+" ($"+env+")")
	}
	var httpAddr, httpsAddr, tablePath, metricsAddr, logs string
	str(&httpAddr, "http-addr", "SKIFF_ROUTER_HTTP_ADDR", "127.0.0.1:8080", "plain HTTP listen address (empty: none)")
	str(&httpsAddr, "https-addr", "SKIFF_ROUTER_HTTPS_ADDR", "", "HTTPS listen address; needs certificates in the table (empty: none)")
	str(&tablePath, "table", "SKIFF_ROUTER_TABLE", "", "routing table file (JSON; see docs/router.md)")
	str(&metricsAddr, "metrics-addr", "SKIFF_ROUTER_METRICS_ADDR", "", "serve Prometheus metrics at http://<addr>/metrics (empty: none)")
	str(&logs, "log", "SKIFF_ROUTER_LOG", "stdout", "where router log lines go: stdout or none")
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile to this file until exit (for benchmarking)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: skiff router --table FILE [flags]\n\nRuns Skiff's router alone over a routing table file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if tablePath == "" {
		return errors.New("--table is required")
	}
	if logs != "stdout" && logs != "none" {
		return fmt.Errorf("--log %q: want stdout or none", logs)
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
	f, certs, err := router.ReadFile(tablePath)
	if err != nil {
		return err
	}
	if httpsAddr != "" && len(certs) == 0 {
		return fmt.Errorf("--https-addr needs at least one certificate in %s", tablePath)
	}
	var cs router.Certs
	if err := cs.Set(certs); err != nil {
		return err
	}
	cfg := router.Config{GetCertificate: cs.GetCertificate}
	var out *lineWriter
	if logs == "stdout" {
		out = &lineWriter{w: bufio.NewWriterSize(os.Stdout, 64<<10)}
		cfg.Log = out.log
		go out.flushEvery(100 * time.Millisecond)
	}
	r := router.New(cfg)
	r.SetRoutes(f.Routes)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

	// Reload on SIGHUP and when the file changes (checked every second).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stamp := fileStamp(tablePath)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reload := func(why string) {
		f, certs, err := router.ReadFile(tablePath)
		if err != nil {
			log.Error("routing table not reloaded; the previous one stays", "err", err)
			return
		}
		if err := cs.Set(certs); err != nil {
			log.Error("certificates not reloaded", "err", err)
			return
		}
		r.SetRoutes(f.Routes)
		log.Info("routing table reloaded", "on", why, "routes", len(f.Routes), "certificates", len(certs))
	}
	for {
		select {
		case <-ctx.Done():
			r.Close()
			if out != nil {
				out.flush()
			}
			return nil
		case err := <-errc:
			r.Close()
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

func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(st.ModTime().UnixNano(), st.Size())
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
