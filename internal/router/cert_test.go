package router

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

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
