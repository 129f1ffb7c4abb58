package router

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

// testCert issues a certificate from a real local CA (package pki).
func testCert(t *testing.T, names ...string) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := pki.Open(t.TempDir(), "router test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c, ca.Pool()
}
