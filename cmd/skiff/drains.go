package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/skiffhq/skiff/internal/drain"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/metrics"
	"github.com/skiffhq/skiff/internal/platform"
)

// startDrains runs the apps' log drains on the lines logplex commits. With
// caFile, the certificates in it are trusted by syslog+tls and https drains
// besides the system's roots (a private CA, or Skiff's own in tests).
func startDrains(ctx context.Context, caFile string, p *platform.Platform, bus *platform.Bus, logs *logplex.Logplex, log *slog.Logger) (*drain.Manager, func(), error) {
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--drain-ca-file: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--drain-ca-file %s: no PEM certificate in it", caFile)
		}
	}
	m := drain.New(drain.Config{Source: p, Events: bus, Logs: logs, RootCAs: roots, Logger: log})
	if err := m.Start(ctx); err != nil {
		return nil, nil, err
	}
	logs.SetOutlet(m)
	return m, func() {
		logs.SetOutlet(nil)
		m.Close()
	}, nil
}

// startMetrics serves the pipeline's metrics (Prometheus text format) at
// GET /metrics on addr; "" serves nothing. The router adds itself to the
// registry with reg.Add.
func startMetrics(addr string, log *slog.Logger, sources ...metrics.Source) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	reg := &metrics.Registry{}
	for _, s := range sources {
		reg.Add(s)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener", "err", err)
		}
	}()
	log.Info("metrics", "url", "http://"+dialable(ln.Addr().(*net.TCPAddr))+"/metrics")
	return func() { srv.Close() }, nil
}
