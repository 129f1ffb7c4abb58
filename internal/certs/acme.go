package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/skiffhq/skiff/internal/platform"
)

// acmeLoop issues and renews certificates until ctx ends, looking for work
// when woken, every Interval, and when the next renewal falls due.
func (m *Manager) acmeLoop(ctx context.Context) {
	t := time.NewTimer(m.cfg.Interval)
	defer t.Stop()
	for {
		next := m.pass(ctx)
		wait := m.cfg.Interval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(m.cfg.Now()), time.Second))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
	}
}

// renewAt is when a certificate is due for renewal: RenewBefore ahead of
// its expiry, or with a third of its lifetime left if that is sooner, so
// that a CA issuing short-lived certificates (shorter than RenewBefore)
// does not have each one renewed as soon as it is issued.
func (m *Manager) renewAt(c *platform.ACMECert) time.Time {
	before := m.cfg.RenewBefore
	if b, _ := pem.Decode([]byte(c.CertificateChain)); b != nil {
		if leaf, err := x509.ParseCertificate(b.Bytes); err == nil {
			before = min(before, leaf.NotAfter.Sub(leaf.NotBefore)/3)
		}
	}
	return c.NotAfter.Add(-before)
}

// Pass does one round of ACME work: every custom domain of an ACM app that
// is queued, due for a retry, or whose certificate is due for renewal
// (RenewBefore ahead of expiry, or with a third of its lifetime left if
// sooner) gets a new certificate, one domain at a time.
func (m *Manager) Pass(ctx context.Context) { m.pass(ctx) }

// pass is Pass; it returns when the earliest renewal not yet due falls
// due (zero: none).
func (m *Manager) pass(ctx context.Context) (next time.Time) {
	ds, err := m.cfg.Source.ACMDomains(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Log.Warn("acme: listing domains", "err", err)
		}
		return
	}
	set, err := m.cfg.Source.Certificates(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Log.Warn("acme: listing certificates", "err", err)
		}
		return
	}
	due := map[string]time.Time{}
	for _, c := range set.ACME {
		due[c.DomainID] = m.renewAt(c)
	}
	now := m.cfg.Now()
	for _, d := range ds {
		if ctx.Err() != nil {
			return
		}
		status := deref(d.ACMStatus)
		switch {
		case strings.HasPrefix(d.Hostname, "*."):
			if status != platform.ACMFailed {
				m.setStatus(ctx, d, platform.ACMFailed, "Automated Certificate Management cannot issue certificates for wildcard domains (HTTP-01 validation); upload one with heroku certs:add.")
			}
			continue
		case status == platform.ACMFailed:
			continue // until `heroku certs:auto:refresh`
		case status == platform.ACMCertIssued:
			if at, ok := due[d.ID]; ok && now.Before(at) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			if m.retryLater(d.ID, now) { // a failed renewal waits like a failed issue
				continue
			}
		case status == platform.ACMFailing:
			if m.retryLater(d.ID, now) {
				continue
			}
		}
		m.issue(ctx, d, status)
	}
	return next
}

// retryLater reports whether the domain's last order failed and its retry
// is not yet due.
func (m *Manager) retryLater(domainID string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.tries[domainID]
	return a != nil && now.Before(a.next)
}

func (m *Manager) setStatus(ctx context.Context, d *platform.Domain, status, reason string) {
	var r *string
	if reason != "" {
		r = &reason
	}
	if err := m.cfg.Source.SetACMStatus(ctx, d.ID, status, r); err != nil && ctx.Err() == nil {
		m.cfg.Log.Warn("acme: recording status", "domain", d.Hostname, "status", status, "err", err)
	}
}

// issue obtains a certificate for d and records the outcome. A renewal
// keeps the domain "cert issued" while it runs: the old certificate still
// serves.
func (m *Manager) issue(ctx context.Context, d *platform.Domain, status string) {
	renewal := status == platform.ACMCertIssued
	if !renewal {
		m.setStatus(ctx, d, platform.ACMVerified, "")
	}
	octx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	chain, key, notAfter, err := m.obtain(octx, d.Hostname)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		m.mu.Lock()
		a := m.tries[d.ID]
		if a == nil {
			a = &attempt{}
			m.tries[d.ID] = a
		}
		a.n++
		a.next = m.cfg.Now().Add(time.Duration(a.n) * m.cfg.RetryDelay)
		n := a.n
		if n >= m.cfg.Attempts {
			delete(m.tries, d.ID)
		}
		m.mu.Unlock()
		reason := failureReason(d.Hostname, err)
		m.cfg.Log.Warn("acme: certificate order failed", "domain", d.Hostname, "attempt", n, "err", err)
		switch {
		case renewal && n < m.cfg.Attempts:
			// keep serving the current certificate; try again later
		case n >= m.cfg.Attempts:
			m.setStatus(ctx, d, platform.ACMFailed, reason)
		default:
			m.setStatus(ctx, d, platform.ACMFailing, reason)
		}
		return
	}
	m.mu.Lock()
	delete(m.tries, d.ID)
	m.mu.Unlock()
	ok, err := m.cfg.Source.PutACMECert(ctx, &platform.ACMECert{DomainID: d.ID, CertificateChain: chain, PrivateKey: key, NotAfter: notAfter})
	if err != nil {
		m.cfg.Log.Warn("acme: storing certificate", "domain", d.Hostname, "err", err)
		return
	}
	if ok {
		m.cfg.Log.Info("acme: certificate issued", "domain", d.Hostname, "not_after", notAfter, "renewal", renewal)
		m.reloadLogged(ctx)
	}
}

// failureReason turns an ACME error into the acm_status_reason users read.
func failureReason(host string, err error) string {
	var ae *acme.AuthorizationError
	if errors.As(err, &ae) {
		var details []string
		for _, e := range ae.Errors {
			var pe *acme.Error
			if errors.As(e, &pe) && pe.Detail != "" {
				details = append(details, pe.Detail)
			} else {
				details = append(details, e.Error())
			}
		}
		return fmt.Sprintf("HTTP-01 validation of %s failed: %s. Check that the domain's DNS points at its DNS target.", host, strings.Join(details, "; "))
	}
	var pe *acme.Error
	if errors.As(err, &pe) && pe.Detail != "" {
		return fmt.Sprintf("The certificate authority refused %s: %s", host, pe.Detail)
	}
	var oe *acme.OrderError
	if errors.As(err, &oe) && oe.Problem != nil {
		return fmt.Sprintf("The certificate order for %s failed: %s", host, oe.Problem.Detail)
	}
	return fmt.Sprintf("Obtaining a certificate for %s failed: %v", host, err)
}

// client returns an ACME client with the stored account, registering one
// (and storing it) on first use of the directory.
func (m *Manager) client(ctx context.Context) (*acme.Client, error) {
	hc := http.DefaultClient
	if m.cfg.Roots != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: m.cfg.Roots}, Proxy: http.ProxyFromEnvironment}}
	}
	acct, err := m.cfg.Source.ACMEAccount(ctx, m.cfg.Directory)
	if err != nil {
		return nil, err
	}
	if acct != nil {
		key, err := parseKey(acct.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("stored ACME account key: %w", err)
		}
		return &acme.Client{Key: key, DirectoryURL: m.cfg.Directory, HTTPClient: hc, KID: acme.KeyID(acct.URI), UserAgent: "skiff"}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &acme.Client{Key: key, DirectoryURL: m.cfg.Directory, HTTPClient: hc, UserAgent: "skiff"}
	a := &acme.Account{}
	if m.cfg.Email != "" {
		a.Contact = []string{"mailto:" + m.cfg.Email}
	}
	reg, err := c.Register(ctx, a, acme.AcceptTOS)
	if err != nil {
		return nil, fmt.Errorf("registering with %s: %w", m.cfg.Directory, err)
	}
	pemKey, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := m.cfg.Source.PutACMEAccount(ctx, &platform.ACMEAccount{Directory: m.cfg.Directory, PrivateKey: pemKey, URI: reg.URI}); err != nil {
		return nil, err
	}
	c.KID = acme.KeyID(reg.URI)
	return c, nil
}

// obtain runs one ACME order for host, answering its HTTP-01 challenge
// through ChallengeHandler, and returns the PEM chain and key.
func (m *Manager) obtain(ctx context.Context, host string) (chainPEM, keyPEM string, notAfter time.Time, err error) {
	c, err := m.client(ctx)
	if err != nil {
		return "", "", time.Time{}, err
	}
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(host))
	if err != nil {
		return "", "", time.Time{}, err
	}
	for _, u := range order.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return "", "", time.Time{}, err
		}
		if z.Status == acme.StatusValid {
			continue
		}
		var chal *acme.Challenge
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				chal = ch
			}
		}
		if chal == nil {
			return "", "", time.Time{}, fmt.Errorf("the CA offers no http-01 challenge for %s", host)
		}
		resp, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return "", "", time.Time{}, err
		}
		m.tokens.Store(chal.Token, resp)
		defer m.tokens.Delete(chal.Token)
		if _, err := c.Accept(ctx, chal); err != nil {
			return "", "", time.Time{}, err
		}
		if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
			return "", "", time.Time{}, err
		}
	}
	if order, err = c.WaitOrder(ctx, order.URI); err != nil {
		return "", "", time.Time{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", time.Time{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{host}}, key)
	if err != nil {
		return "", "", time.Time{}, err
	}
	ders, _, err := c.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if len(ders) == 0 {
		return "", "", time.Time{}, errors.New("the CA returned no certificate")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("issued certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	return encodeChain(ders), keyPEM, leaf.NotAfter, err
}

// encodeChain writes a chain of DER certificates as PEM.
func encodeChain(ders [][]byte) string {
	var b strings.Builder
	for _, der := range ders {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.String()
}

func encodeKey(k crypto.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func parseKey(s string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return signer, nil
}
