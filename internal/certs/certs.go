// Package certs chooses the TLS certificate the router serves for each
// hostname and obtains certificates from an ACME CA for apps with
// Automated Certificate Management.
//
// The choice, made per TLS handshake, reads an immutable in-memory index
// swapped atomically whenever domains or certificates change: no lock, no
// store access and no allocation on the handshake path. For a name the
// index holds, in order of preference: the SNI endpoint a custom domain is
// associated with, the domain's ACME certificate, any of the app's SNI
// endpoints that covers the name; a name the index does not hold gets the
// platform's own certificate (for *.<base domain>).
//
// Certificates and the ACME account live in the platform store, so that
// several routers can share them; ACME HTTP-01 challenge answers are kept
// in this process and served by Manager.ChallengeHandler (and, through the
// API, by Manager.Challenge to routers running apart from the server,
// which also receive the index as Manager.Served).
package certs

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// Source is the part of the platform the manager reads and writes.
type Source interface {
	Certificates(ctx context.Context) (*platform.CertificateSet, error)
	ACMDomains(ctx context.Context) ([]*platform.Domain, error)
	SetACMStatus(ctx context.Context, domainID, status string, reason *string) error
	PutACMECert(ctx context.Context, c *platform.ACMECert) (bool, error)
	ACMEAccount(ctx context.Context, directory string) (*platform.ACMEAccount, error)
	PutACMEAccount(ctx context.Context, a *platform.ACMEAccount) error
}

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Config configures a Manager.
type Config struct {
	Source Source
	Events *platform.Bus // EventDomains, EventApp and EventDestroy trigger a reload; nil: none
	// Default is the platform's own certificate, served for the base
	// domain and for any name no app claims.
	Default *tls.Certificate
	// Renew, when set, gives the platform's certificate anew at each
	// reload (events, and every Interval), so that a renewed one (see
	// pki.Renewer) replaces Default before it expires.
	Renew func() (*tls.Certificate, error)

	// ACME: Directory is the CA's directory URL (LetsEncrypt when empty);
	// Roots, when set, are the roots trusted for the ACME server's own
	// HTTPS (a test CA such as pebble's); Email is the account's contact.
	Directory string
	Roots     *x509.CertPool
	Email     string
	// RenewBefore is how long before expiry a certificate is renewed
	// (Heroku: a month). Attempts is how many validation failures make a
	// domain "failed" (before that it is "failing" and retried after
	// RetryDelay times the number of failures).
	RenewBefore time.Duration
	Attempts    int
	RetryDelay  time.Duration
	// Interval is how often the ACME loop looks for work without being
	// woken by an event; it also reloads the index then.
	Interval time.Duration
	// Timeout bounds one certificate order.
	Timeout time.Duration

	Now func() time.Time
	Log *slog.Logger
}

// Manager serves certificates and runs the ACME loop.
type Manager struct {
	cfg    Config
	idx    atomic.Pointer[index]
	tokens sync.Map // HTTP-01 token -> key authorization

	mu     sync.Mutex
	parsed map[string]*tls.Certificate // key: kind+id+updated_at, so unchanged certificates are not parsed again
	tries  map[string]*attempt         // domain id -> failed validations
	wake   chan struct{}

	// served is the index as routers apart from the server receive it;
	// servedCh is closed when it changes. Both under mu.
	served   []Served
	servedCh chan struct{}
	pem      map[*tls.Certificate]Served // encoded once per parsed certificate
}

// Served is a certificate with its key, in PEM, and the hostnames it is
// served for: exact names, and "*.example.com" for the names one label
// under example.com. The platform's own certificate has no hosts: it is
// served for any name the others do not hold.
type Served struct {
	Hosts []string `json:"hosts,omitempty"`
	Chain string   `json:"chain"`
	Key   string   `json:"key"`
}

type attempt struct {
	n    int
	next time.Time
}

// New returns a manager with its index loaded from the store.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	cfg.Directory = cmp.Or(cfg.Directory, LetsEncrypt)
	cfg.RenewBefore = cmp.Or(cfg.RenewBefore, 30*24*time.Hour)
	cfg.Attempts = cmp.Or(cfg.Attempts, 3)
	cfg.RetryDelay = cmp.Or(cfg.RetryDelay, 10*time.Minute)
	cfg.Interval = cmp.Or(cfg.Interval, time.Minute)
	cfg.Timeout = cmp.Or(cfg.Timeout, 3*time.Minute)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Default == nil {
		return nil, errors.New("certs: no default certificate")
	}
	m := &Manager{cfg: cfg, parsed: map[string]*tls.Certificate{}, tries: map[string]*attempt{}, wake: make(chan struct{}, 1),
		servedCh: make(chan struct{}), pem: map[*tls.Certificate]Served{}}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// index maps hostnames to certificates. exact holds custom hostnames;
// wild holds, for each wildcard domain *.P, the certificate under P.
type index struct {
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate
	def   *tls.Certificate
}

// GetCertificate picks the certificate for a TLS handshake by its SNI
// name; use it as tls.Config.GetCertificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.idx.Load().lookup(hello.ServerName), nil
}

func (x *index) lookup(name string) *tls.Certificate {
	if name == "" {
		return x.def
	}
	name = strings.ToLower(strings.TrimSuffix(name, ".")) // no allocation when already canonical
	if c, ok := x.exact[name]; ok {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := x.wild[parent]; ok {
			return c
		}
	}
	return x.def
}

// Reload rebuilds the index from the store. The manager calls it on
// events; call it directly after changing certificates outside the bus.
func (m *Manager) Reload(ctx context.Context) error {
	set, err := m.cfg.Source.Certificates(ctx)
	if err != nil {
		return fmt.Errorf("certs: reload: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]*tls.Certificate{}
	parse := func(key, chain, pkey string) *tls.Certificate {
		if c, ok := m.parsed[key]; ok {
			keep[key] = c
			return c
		}
		c, err := tls.X509KeyPair([]byte(chain), []byte(pkey))
		if err != nil {
			m.cfg.Log.Warn("stored certificate does not load; skipped", "key", key, "err", err)
			return nil
		}
		keep[key] = &c
		return &c
	}
	sni := map[string]*tls.Certificate{}     // endpoint id -> certificate
	byApp := map[string][]*tls.Certificate{} // app id -> its endpoints' certificates
	for _, e := range set.SNIEndpoints {
		if c := parse("sni:"+e.ID+":"+e.UpdatedAt.String(), e.CertificateChain, e.PrivateKey); c != nil {
			sni[e.ID] = c
			byApp[e.AppID] = append(byApp[e.AppID], c)
		}
	}
	acme := map[string]*tls.Certificate{} // domain id -> certificate
	for _, a := range set.ACME {
		if c := parse("acme:"+a.DomainID+":"+a.UpdatedAt.String(), a.CertificateChain, a.PrivateKey); c != nil {
			acme[a.DomainID] = c
		}
	}
	def := m.cfg.Default
	if m.cfg.Renew != nil {
		if c, err := m.cfg.Renew(); err != nil {
			m.cfg.Log.Warn("renewing the platform certificate; the current one stays", "err", err)
		} else {
			m.cfg.Default, def = c, c
		}
	}
	x := &index{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}, def: def}
	for _, d := range set.Domains {
		c := sni[deref(d.SNIEndpointID)]
		if c == nil {
			c = acme[d.ID]
		}
		if c == nil {
			for _, ac := range byApp[d.AppID] {
				if fits(ac.Leaf, d.Hostname) {
					c = ac
					break
				}
			}
		}
		if c == nil {
			continue
		}
		if parent, ok := strings.CutPrefix(d.Hostname, "*."); ok {
			x.wild[parent] = c
		} else {
			x.exact[d.Hostname] = c
		}
	}
	m.parsed = keep
	m.idx.Store(x)
	return m.serve(x)
}

// serve publishes x as Served, closing servedCh if that changes it.
// Called with mu held.
func (m *Manager) serve(x *index) error {
	hosts := map[*tls.Certificate][]string{}
	for h, c := range x.exact {
		hosts[c] = append(hosts[c], h)
	}
	for parent, c := range x.wild {
		hosts[c] = append(hosts[c], "*."+parent)
	}
	encoded := map[*tls.Certificate]Served{}
	encode := func(c *tls.Certificate) (Served, error) {
		s, ok := m.pem[c]
		if !ok {
			var err error
			if s, err = encodePEM(c); err != nil {
				return Served{}, err
			}
		}
		encoded[c] = s
		return s, nil
	}
	def, err := encode(x.def)
	if err != nil {
		return fmt.Errorf("certs: platform certificate: %w", err)
	}
	served := []Served{def}
	for c, hs := range hosts {
		s, err := encode(c)
		if err != nil {
			m.cfg.Log.Warn("certificate not handed to routers", "hosts", hs, "err", err)
			continue
		}
		slices.Sort(hs)
		s.Hosts = hs
		served = append(served, s)
	}
	slices.SortFunc(served[1:], func(a, b Served) int { return strings.Compare(a.Hosts[0], b.Hosts[0]) })
	m.pem = encoded
	if !slices.EqualFunc(served, m.served, func(a, b Served) bool {
		return a.Chain == b.Chain && a.Key == b.Key && slices.Equal(a.Hosts, b.Hosts)
	}) {
		m.served = served
		close(m.servedCh)
		m.servedCh = make(chan struct{})
	}
	return nil
}

// encodePEM writes a certificate's chain and private key as PEM.
func encodePEM(c *tls.Certificate) (Served, error) {
	key, err := encodeKey(c.PrivateKey)
	if err != nil {
		return Served{}, fmt.Errorf("encode private key: %w", err)
	}
	return Served{Chain: encodeChain(c.Certificate), Key: key}, nil
}

// Served returns the certificates every router serves, and a channel
// closed when they change.
func (m *Manager) Served() ([]Served, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.served, m.servedCh
}

// Challenge returns the key authorization for an ACME HTTP-01 token of an
// order in progress.
func (m *Manager) Challenge(token string) (string, bool) {
	v, ok := m.tokens.Load(token)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// fits reports whether leaf serves host. A wildcard domain
// "*.example.com" needs a certificate naming "*.example.com" itself.
func fits(leaf *x509.Certificate, host string) bool {
	if leaf == nil {
		return false
	}
	if !strings.HasPrefix(host, "*.") {
		return leaf.VerifyHostname(host) == nil
	}
	for _, n := range leaf.DNSNames {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ChallengeHandler answers ACME HTTP-01 challenges at
// /.well-known/acme-challenge/<token>; anything else is a 404. The router
// consults it for plain-HTTP requests before routing.
func (m *Manager) ChallengeHandler() http.Handler { return http.HandlerFunc(m.serveChallenge) }

// ChallengePrefix is the path under which ACME HTTP-01 challenges arrive.
const ChallengePrefix = "/.well-known/acme-challenge/"

func (m *Manager) serveChallenge(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePrefix)
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	v, ok := m.Challenge(token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(v))
}

// Run reloads the index on changes and runs the ACME loop until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var events <-chan platform.Event
	if m.cfg.Events != nil {
		sub := m.cfg.Events.Subscribe(256)
		defer sub.Close()
		events = sub.C
	}
	// Changes committed before the subscription are in this reload; later
	// ones arrive as events.
	m.reloadLogged(ctx)
	acmeDone := make(chan struct{})
	go func() {
		defer close(acmeDone)
		m.acmeLoop(ctx)
	}()
	defer func() { <-acmeDone }() // Run ends only once no order is running
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			if e.Kind != platform.EventDomains && e.Kind != platform.EventApp && e.Kind != platform.EventDestroy {
				continue
			}
			for drained := false; !drained; { // one reload for a burst of events
				select {
				case <-events:
				default:
					drained = true
				}
			}
			m.reloadLogged(ctx)
			m.Wake()
		case <-tick.C:
			m.reloadLogged(ctx)
		}
	}
}

func (m *Manager) reloadLogged(ctx context.Context) {
	if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
		m.cfg.Log.Warn("reloading certificates", "err", err)
	}
}

// Wake makes the ACME loop look for work now.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
