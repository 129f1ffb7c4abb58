package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/rendezvous"
)

// rendezvousConfig is the settings of the rendezvous service, where
// `heroku run` and `skiff run` attach to their one-off dynos.
type rendezvousConfig struct {
	addr string // listen address; "" runs no rendezvous service
	host string // host name in attach URLs; "" means the listener's host
}

func (c *rendezvousConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "rendezvous-addr", envDefault("SKIFF_RENDEZVOUS_ADDR", "127.0.0.1:5001"),
		"address the rendezvous service of attached one-off dynos (heroku run) listens on; empty: none ($SKIFF_RENDEZVOUS_ADDR)")
	fs.StringVar(&c.host, "rendezvous-host", envDefault("SKIFF_RENDEZVOUS_HOST", ""),
		"host name clients reach the rendezvous service at, in attach URLs and its certificate (default: the listen address's host) ($SKIFF_RENDEZVOUS_HOST)")
}

// startRendezvous starts the rendezvous service, with a certificate from
// the local CA for its host name, until ctx is done. It returns nil when
// the service is turned off.
func startRendezvous(ctx context.Context, c *rendezvousConfig, ca *pki.CA, log *slog.Logger) (*rendezvous.Server, error) {
	if c.addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("rendezvous listener: %w", err)
	}
	var certs *pki.Renewer // for srv.Host(), known once srv exists; handshakes start after Serve
	srv, err := rendezvous.New(rendezvous.Config{Listener: ln, Host: c.host, Log: log,
		Certificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.GetCertificate(h) }})
	if err != nil {
		ln.Close()
		return nil, err
	}
	certs = ca.Renewer([]string{srv.Host()}, certLifetime)
	if _, err := certs.Certificate(); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		if err := srv.Serve(ctx); err != nil {
			log.Error("rendezvous service stopped", "err", err)
		}
	}()
	log.Info("rendezvous service for attached one-off dynos", "addr", ln.Addr().String(), "host", srv.Host())
	return srv, nil
}

// certLifetime is how long a certificate of the local CA for a service
// lasts; pki.Renewer renews it once two thirds of it have passed.
const certLifetime = 90 * 24 * time.Hour
