package pki

import (
	"crypto/tls"
	"sync"
	"time"
)

// Renewer serves a certificate for a fixed set of names from the CA and
// issues a new one once two thirds of its lifetime have passed, so that a
// listener that runs for months never serves an expired certificate.
type Renewer struct {
	ca    *CA
	names []string
	ttl   time.Duration

	mu   sync.Mutex
	cert *tls.Certificate
}

// Renewer returns a Renewer of certificates for names, each valid for ttl.
// Nothing is issued until the first Certificate call.
func (ca *CA) Renewer(names []string, ttl time.Duration) *Renewer {
	return &Renewer{ca: ca, names: names, ttl: ttl}
}

// Certificate returns the current certificate, issuing a new one when there
// is none yet or less than a third of ttl is left. When issuing fails it
// keeps serving the current certificate while that is still valid.
func (r *Renewer) Certificate() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.ca.now()
	if r.cert != nil && r.cert.Leaf.NotAfter.Sub(now) > r.ttl/3 {
		return r.cert, nil
	}
	cert, err := r.ca.Issue(r.names, r.ttl)
	if err != nil {
		if r.cert != nil && now.Before(r.cert.Leaf.NotAfter) {
			return r.cert, nil
		}
		return nil, err
	}
	r.cert = cert
	return cert, nil
}

// GetCertificate is Certificate for tls.Config.GetCertificate.
func (r *Renewer) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate()
}
