package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesOnceAndReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := Open(dir, "Skiff test CA")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, "ignored on reload")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) {
		t.Fatal("reopening made a new CA")
	}
	if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
}

func TestOpenRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, "x"); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, keyFile))
	if _, err := Open(dir, "x"); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("Open with the key missing: %v", err)
	}
	os.WriteFile(filepath.Join(dir, keyFile), []byte("junk"), 0o600)
	if _, err := Open(dir, "x"); err == nil {
		t.Fatal("Open with a junk key succeeded")
	}
}

// TestIssueServesVerifiedTLS checks the issued chain verifies against the
// CA for a DNS name and an IP, over a real TLS handshake.
func TestIssueServesVerifiedTLS(t *testing.T) {
	ca, err := Open(t.TempDir(), "Skiff test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"rendezvous.skiff.test", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "ok")
			c.Close()
		}
	}()
	for _, name := range []string{"rendezvous.skiff.test", "127.0.0.1"} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "ok" {
			t.Fatalf("%s: read %q", name, got)
		}
	}
	// A name not in the certificate is refused.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "other.test"})
	if err == nil {
		c.Close()
		t.Fatal("handshake for a foreign name succeeded")
	}
	// The leaf is a server certificate and not a CA.
	if cert.Leaf.IsCA || cert.Leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || len(cert.Leaf.IPAddresses) != 1 || !cert.Leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("leaf: %+v", cert.Leaf)
	}
	if _, err := ca.Issue(nil, time.Hour); err == nil {
		t.Fatal("Issue with no names succeeded")
	}
}
