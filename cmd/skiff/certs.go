package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/skiffhq/skiff/internal/certs"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
)

// certsConfig is the TLS side of `skiff server`: the platform's own
// certificate and the ACME CA that Automated Certificate Management uses.
type certsConfig struct {
	tlsCert, tlsKey string // the *.<base domain> certificate; empty: issued by the local CA
	acmeDirectory   string
	acmeRoots       string // PEM file of extra roots trusted for the ACME server's HTTPS
	acmeEmail       string
}

// register adds the certificate flags through str, parseServerFlags'
// flag-with-environment helper.
func (c *certsConfig) register(str func(p *string, name, env, def, usage string)) {
	str(&c.tlsCert, "tls-cert", "SKIFF_TLS_CERT", "", "PEM certificate chain for *.<base-domain> (default: issued by the local CA)")
	str(&c.tlsKey, "tls-key", "SKIFF_TLS_KEY", "", "PEM private key of --tls-cert")
	str(&c.acmeDirectory, "acme-directory", "SKIFF_ACME_DIRECTORY", certs.LetsEncrypt, "ACME directory URL for Automated Certificate Management")
	str(&c.acmeRoots, "acme-roots", "SKIFF_ACME_ROOTS", "", "PEM file of extra CA roots to trust for the ACME server's HTTPS (e.g. a test CA)")
	str(&c.acmeEmail, "acme-email", "SKIFF_ACME_EMAIL", "", "contact email of the ACME account")
}

func (c *certsConfig) check() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	return nil
}

// startCerts loads the platform's certificate (from --tls-cert/--tls-key,
// else issued by the local CA for <base> and *.<base>) and starts the
// certificate manager, which runs until ctx ends. The router serves
// m.GetCertificate in its tls.Config and hands plain-HTTP requests under
// certs.ChallengePrefix to m.ChallengeHandler().
func startCerts(ctx context.Context, cfg *serverConfig, p *platform.Platform, bus *platform.Bus, ca *pki.CA, log *slog.Logger) (*certs.Manager, error) {
	c := &cfg.certs
	var def *tls.Certificate
	var renew func() (*tls.Certificate, error)
	if c.tlsCert != "" {
		kp, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		def = &kp
		if err := kp.Leaf.VerifyHostname("app." + cfg.baseDomain); err != nil {
			log.Warn("--tls-cert does not cover the apps' default hostnames", "want", "*."+cfg.baseDomain, "err", err)
		}
	} else {
		// Issued at start and renewed with a third of its life left
		// (the manager asks at each reload); clients trust the CA, not
		// this certificate.
		r := ca.Renewer([]string{"*." + cfg.baseDomain, cfg.baseDomain}, certLifetime)
		var err error
		if def, err = r.Certificate(); err != nil {
			return nil, fmt.Errorf("platform certificate: %w", err)
		}
		renew = r.Certificate
	}
	var roots *x509.CertPool
	if c.acmeRoots != "" {
		pemRoots, err := os.ReadFile(c.acmeRoots)
		if err != nil {
			return nil, fmt.Errorf("--acme-roots: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pemRoots) {
			return nil, fmt.Errorf("--acme-roots %s holds no PEM certificate", c.acmeRoots)
		}
	}
	m, err := certs.New(ctx, certs.Config{Source: p, Events: bus, Default: def, Renew: renew, Directory: c.acmeDirectory, Roots: roots,
		Email: c.acmeEmail, Log: log})
	if err != nil {
		return nil, err
	}
	go m.Run(ctx)
	log.Info("certificates", "platform", def.Leaf.DNSNames, "acme_directory", c.acmeDirectory)
	return m, nil
}
