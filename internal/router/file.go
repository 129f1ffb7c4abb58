package router

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// File is a routing table on disk, for `skiff router`: routes and the
// certificates to serve.
//
//	{"routes": [{"app": "web", "hosts": ["web.example.com"],
//	             "backends": [{"name": "web.1", "addr": "10.0.0.2:5000"}],
//	             "balance": "p2c", "maintenance": false}],
//	 "certificates": [{"cert": "site.pem", "key": "site.key"}]}
type File struct {
	Routes       []Route    `json:"routes"`
	Certificates []CertFile `json:"certificates,omitempty"`
}

// CertFile names a PEM certificate chain and its key; relative paths are
// relative to the table file.
type CertFile struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// ReadFile reads and checks a routing table file: every route needs an app
// and a host, every backend a host:port, and no host may belong to two
// apps. It loads the certificates too; each serves the names it holds.
func ReadFile(path string) (*File, []NamedCert, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read routing table: %w", err)
	}
	var f File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("routing table %s: %w", path, err)
	}
	if err := CheckRoutes(f.Routes); err != nil {
		return nil, nil, fmt.Errorf("routing table %s: %w", path, err)
	}
	var certs []NamedCert
	for _, c := range f.Certificates {
		rel := func(p string) string {
			if filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(filepath.Dir(path), p)
		}
		kp, err := tls.LoadX509KeyPair(rel(c.Cert), rel(c.Key))
		if err != nil {
			return nil, nil, fmt.Errorf("routing table %s: certificate %s: %w", path, c.Cert, err)
		}
		certs = append(certs, NamedCert{Cert: &kp})
	}
	return &f, certs, nil
}

// CheckRoutes checks a routing table from outside (a file, the API): every
// route needs an app and a host, every backend a host:port, and no host
// may belong to two apps. Backends without a name are named web.N.
func CheckRoutes(routes []Route) error {
	owner := map[string]string{}
	var errs []error
	for i, r := range routes {
		if r.App == "" {
			errs = append(errs, fmt.Errorf("route %d: no app name", i))
		}
		if len(r.Hosts) == 0 {
			errs = append(errs, fmt.Errorf("route %d (%s): no hosts", i, r.App))
		}
		switch r.Balance {
		case "", BalanceRandom, BalanceP2C:
		default:
			errs = append(errs, fmt.Errorf("route %d (%s): balance %q is neither %q nor %q", i, r.App, r.Balance, BalanceRandom, BalanceP2C))
		}
		for _, h := range r.Hosts {
			h = normHost(h)
			if o, ok := owner[h]; ok && o != r.App {
				errs = append(errs, fmt.Errorf("host %s belongs to both %s and %s", h, o, r.App))
			}
			owner[h] = r.App
		}
		for j, be := range r.Backends {
			if _, _, err := net.SplitHostPort(be.Addr); err != nil {
				errs = append(errs, fmt.Errorf("route %d (%s) backend %d: address %q: %v", i, r.App, j, be.Addr, err))
			}
			if be.Name == "" {
				routes[i].Backends[j].Name = fmt.Sprintf("web.%d", j+1)
			}
		}
	}
	return errors.Join(errs...)
}

// Certs chooses a certificate by SNI among a set that can be replaced at
// any time: exact name first, then a wildcard one label up, then the
// first certificate.
type Certs struct {
	set atomic.Pointer[certSet]
}

type certSet struct {
	byName map[string]*tls.Certificate
	first  *tls.Certificate
}

// NamedCert is a certificate and the hostnames it is served for: exact
// names, and "*.example.com" for any name one label under example.com.
// Without hosts, it serves the names it holds.
type NamedCert struct {
	Cert  *tls.Certificate
	Hosts []string
}

// SetNamed replaces the certificates. Names given explicitly take
// precedence over the names certificates hold; the first certificate also
// serves any name no other serves.
func (c *Certs) SetNamed(certs []NamedCert) error {
	s := &certSet{byName: map[string]*tls.Certificate{}}
	add := func(name string, crt *tls.Certificate) {
		name = strings.ToLower(name)
		if _, ok := s.byName[name]; !ok {
			s.byName[name] = crt
		}
	}
	for _, nc := range certs {
		if nc.Cert.Leaf == nil {
			leaf, err := x509.ParseCertificate(nc.Cert.Certificate[0])
			if err != nil {
				return fmt.Errorf("parse certificate: %w", err)
			}
			nc.Cert.Leaf = leaf
		}
		for _, h := range nc.Hosts {
			add(h, nc.Cert)
		}
		if s.first == nil {
			s.first = nc.Cert
		}
	}
	for _, nc := range certs {
		if len(nc.Hosts) == 0 {
			for _, n := range nc.Cert.Leaf.DNSNames {
				add(n, nc.Cert)
			}
		}
	}
	c.set.Store(s)
	return nil
}

// Empty reports whether the set holds no certificate.
func (c *Certs) Empty() bool {
	s := c.set.Load()
	return s == nil || s.first == nil
}

// GetCertificate is a tls.Config.GetCertificate.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := c.set.Load()
	if s == nil || s.first == nil {
		return nil, errors.New("no certificate")
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if crt, ok := s.byName[name]; ok {
		return crt, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if crt, ok := s.byName["*"+name[i:]]; ok {
			return crt, nil
		}
	}
	return s.first, nil
}
