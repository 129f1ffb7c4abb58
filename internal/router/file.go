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
// apps. It loads the certificates too.
func ReadFile(path string) (*File, []*tls.Certificate, error) {
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
	owner := map[string]string{}
	var errs []error
	for i, r := range f.Routes {
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
				f.Routes[i].Backends[j].Name = fmt.Sprintf("web.%d", j+1)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("routing table %s: %w", path, err)
	}
	var certs []*tls.Certificate
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
		certs = append(certs, &kp)
	}
	return &f, certs, nil
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

// Set replaces the certificates.
func (c *Certs) Set(certs []*tls.Certificate) error {
	s := &certSet{byName: map[string]*tls.Certificate{}}
	for _, crt := range certs {
		if crt.Leaf == nil {
			leaf, err := x509.ParseCertificate(crt.Certificate[0])
			if err != nil {
				return fmt.Errorf("parse certificate: %w", err)
			}
			crt.Leaf = leaf
		}
		for _, n := range crt.Leaf.DNSNames {
			n = strings.ToLower(n)
			if _, ok := s.byName[n]; !ok {
				s.byName[n] = crt
			}
		}
		if s.first == nil {
			s.first = crt
		}
	}
	c.set.Store(s)
	return nil
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
