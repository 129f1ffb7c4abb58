package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/certs/pebbletest"
	"github.com/skiffhq/skiff/internal/clocktest"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/router"
	"github.com/skiffhq/skiff/internal/store"
)

type fixture struct {
	p     *platform.Platform
	admin *platform.Account
	ca    *pki.CA
	def   *tls.Certificate
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.NewBus(), platform.WithBaseDomain("skiff.test"))
	admin, _, err := p.EnsureAdmin(context.Background(), "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Open(filepath.Join(t.TempDir(), "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	def, err := ca.Issue([]string{"*.skiff.test", "skiff.test"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{p: p, admin: admin, ca: ca, def: def}
}

func (f *fixture) app(t *testing.T, name string, domains ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.p.CreateApp(ctx, f.admin, platform.AppSpec{Name: name}); err != nil {
		t.Fatal(err)
	}
	for _, d := range domains {
		if _, err := f.p.CreateDomain(ctx, f.admin, name, d, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) domain(t *testing.T, app, host string) *platform.Domain {
	t.Helper()
	d, err := f.p.Domain(context.Background(), f.admin, app, host)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// upload stores a certificate for names, issued by the fixture's CA, as an
// SNI endpoint of app, and returns the endpoint's name and leaf.
func (f *fixture) upload(t *testing.T, app string, names ...string) (string, *x509.Certificate) {
	t.Helper()
	c, err := f.ca.Issue(names, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chain, key := pemChain(t, c)
	e, err := f.p.CreateSNIEndpoint(context.Background(), f.admin, app, chain, key)
	if err != nil {
		t.Fatal(err)
	}
	return e.Name, c.Leaf
}

func pemChain(t testing.TB, c *tls.Certificate) (string, string) {
	t.Helper()
	var b strings.Builder
	for _, der := range c.Certificate {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	key, err := encodeKey(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), key
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestGetCertificateChoosesBySNI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app(t, "shop", "www.shop.example", "api.shop.example", "*.wild.example", "plain.example")
	f.app(t, "blog", "blog.example")
	wwwName, wwwLeaf := f.upload(t, "shop", "www.shop.example")
	_, anyLeaf := f.upload(t, "shop", "api.shop.example", "other.example")
	_, wildLeaf := f.upload(t, "shop", "*.wild.example")
	// www is associated explicitly; api and *.wild by the names they cover.
	if _, err := f.p.SetDomainSNIEndpoint(ctx, f.admin, "shop", "www.shop.example", &wwwName); err != nil {
		t.Fatal(err)
	}
	m, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// A router apart from the server (skiff router --api) gets the index
	// as Served and must choose the same.
	remote := remoteCerts(t, m)
	for _, tc := range []struct {
		sni  string
		want *x509.Certificate
	}{
		{"www.shop.example", wwwLeaf},
		{"WWW.Shop.Example.", wwwLeaf},
		{"api.shop.example", anyLeaf},
		{"a.wild.example", wildLeaf},
		{"a.b.wild.example", f.def.Leaf}, // a wildcard covers one label
		{"wild.example", f.def.Leaf},     // and not the parent
		{"plain.example", f.def.Leaf},    // no certificate of its own
		{"blog.example", f.def.Leaf},     // another app's certificates never serve it
		{"other.example", f.def.Leaf},    // not a domain of any app
		{"shop.skiff.test", f.def.Leaf},  // the default domain
		{"", f.def.Leaf},                 // no SNI
	} {
		c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.sni})
		if err != nil {
			t.Fatalf("%q: %v", tc.sni, err)
		}
		if !c.Leaf.Equal(tc.want) {
			t.Errorf("%q: got the certificate for %v, want the one for %v", tc.sni, c.Leaf.DNSNames, tc.want.DNSNames)
		}
		if c, err := remote.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.sni}); err != nil || !c.Leaf.Equal(tc.want) {
			t.Errorf("%q from Served: got %v (%v), want the certificate for %v", tc.sni, c, err, tc.want.DNSNames)
		}
	}

	// Removing the endpoint falls back to the platform's certificate once
	// the manager reloads.
	if _, err := f.p.DeleteSNIEndpoint(ctx, f.admin, "shop", wwwName); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "www.shop.example"}); !c.Leaf.Equal(f.def.Leaf) {
		t.Errorf("after removal: got %v, want the default", c.Leaf.DNSNames)
	}
}

// remoteCerts loads what m serves into a router's certificate set, as
// `skiff router --api` does.
func remoteCerts(t *testing.T, m *Manager) *router.Certs {
	t.Helper()
	served, _ := m.Served()
	var named []router.NamedCert
	for _, s := range served {
		c, err := tls.X509KeyPair([]byte(s.Chain), []byte(s.Key))
		if err != nil {
			t.Fatal(err)
		}
		named = append(named, router.NamedCert{Cert: &c, Hosts: s.Hosts})
	}
	var rc router.Certs
	if err := rc.SetNamed(named); err != nil {
		t.Fatal(err)
	}
	return &rc
}

func TestServedChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.app(t, "shop", "www.shop.example")
	m, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	served, changed := m.Served()
	if len(served) != 1 || served[0].Hosts != nil {
		t.Fatalf("before any upload: %+v, want the platform's certificate alone", served)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Fatal("a reload without a change closed the channel")
	default:
	}
	f.upload(t, "shop", "www.shop.example")
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("an upload did not close the channel")
	}
	served, _ = m.Served()
	if len(served) != 2 || !slices.Equal(served[1].Hosts, []string{"www.shop.example"}) {
		t.Fatalf("after the upload: %d certificates, hosts %v", len(served), served[len(served)-1].Hosts)
	}
}

func TestReloadFollowsEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.app(t, "shop", "www.shop.example")
	m, err := New(ctx, Config{Source: f.p, Events: f.p.Events(), Default: f.def, Log: quiet(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	_, leaf := f.upload(t, "shop", "www.shop.example")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "www.shop.example"})
		if c.Leaf.Equal(leaf) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the uploaded certificate never reached the index")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChallengeHandler(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := New(context.Background(), Config{Source: f.p, Default: f.def, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m.tokens.Store("tok", "tok.thumb")
	srv := http.Server{Handler: m.ChallengeHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/.well-known/acme-challenge/tok", 200, "tok.thumb"},
		{"GET", "/.well-known/acme-challenge/other", 404, ""},
		{"POST", "/.well-known/acme-challenge/tok", 404, ""},
		{"GET", "/", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+ln.Addr().String()+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || tc.status == 200 && string(b) != tc.body {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

// TestACMEAgainstPebble obtains, renews and fails to obtain certificates
// from pebble over the real protocol, pebble's validation authority
// fetching the HTTP-01 answers from the manager's challenge handler.
func TestACMEAgainstPebble(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pebble := pebbletest.Start(t, ln.Addr().(*net.TCPAddr).Port)
	pebble.Resolve(t, "fail.shop.example", "127.0.0.2") // nothing answers there

	f := newFixture(t)
	ctx := context.Background()
	f.app(t, "shop", "www.shop.example", "fail.shop.example", "*.wild.example")
	clk := clocktest.New(time.Now())
	m, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet(), Directory: pebble.Directory, Roots: pebble.Roots,
		Attempts: 2, RetryDelay: time.Minute, Now: clk.Now, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := http.Server{Handler: m.ChallengeHandler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	if _, err := f.p.SetACM(ctx, f.admin, "shop", true); err != nil {
		t.Fatal(err)
	}
	if got := deref(f.domain(t, "shop", "www.shop.example").ACMStatus); got != platform.ACMPending {
		t.Fatalf("after enabling ACM: acm_status = %q, want pending", got)
	}

	m.Pass(ctx)
	www := f.domain(t, "shop", "www.shop.example")
	if deref(www.ACMStatus) != platform.ACMCertIssued || www.ACMStatusReason != nil {
		t.Fatalf("www: acm_status %q (%q), want %q", deref(www.ACMStatus), deref(www.ACMStatusReason), platform.ACMCertIssued)
	}
	first := serve(t, m, "www.shop.example")
	if first.Issuer.CommonName == f.def.Leaf.Issuer.CommonName || !strings.Contains(strings.ToLower(first.Issuer.CommonName), "pebble") {
		t.Errorf("www is served a certificate from %q, want pebble's", first.Issuer.CommonName)
	}
	fail := f.domain(t, "shop", "fail.shop.example")
	if deref(fail.ACMStatus) != platform.ACMFailing || !strings.Contains(deref(fail.ACMStatusReason), "fail.shop.example") {
		t.Errorf("fail after one attempt: %q (%q), want failing with a reason", deref(fail.ACMStatus), deref(fail.ACMStatusReason))
	}
	wild := f.domain(t, "shop", "*.wild.example")
	if deref(wild.ACMStatus) != platform.ACMFailed || !strings.Contains(deref(wild.ACMStatusReason), "wildcard") {
		t.Errorf("wildcard: %q (%q), want failed with a reason", deref(wild.ACMStatus), deref(wild.ACMStatusReason))
	}

	// Not yet due: nothing is retried.
	m.Pass(ctx)
	if got := deref(f.domain(t, "shop", "fail.shop.example").ACMStatus); got != platform.ACMFailing {
		t.Errorf("before the retry delay: %q, want still failing", got)
	}
	// Due: the second failure is final.
	clk.Set(clk.Now().Add(2 * time.Minute))
	m.Pass(ctx)
	fail = f.domain(t, "shop", "fail.shop.example")
	if deref(fail.ACMStatus) != platform.ACMFailed || !strings.Contains(deref(fail.ACMStatusReason), "HTTP-01 validation of fail.shop.example failed") {
		t.Errorf("fail after two attempts: %q (%q), want failed with the validation error", deref(fail.ACMStatus), deref(fail.ACMStatusReason))
	}
	if again := serve(t, m, "www.shop.example"); !again.Equal(first) {
		t.Error("www's certificate changed although it is far from expiry")
	}

	// Renewal: 29 days before expiry the certificate is replaced.
	clk.Set(first.NotAfter.Add(-29 * 24 * time.Hour))
	m.Pass(ctx)
	renewed := serve(t, m, "www.shop.example")
	if renewed.Equal(first) {
		t.Fatal("www's certificate was not renewed 29 days before expiry")
	}
	if got := deref(f.domain(t, "shop", "www.shop.example").ACMStatus); got != platform.ACMCertIssued {
		t.Errorf("after renewal: %q, want cert issued", got)
	}

	// A failed renewal keeps the certificate serving and is retried after
	// RetryDelay, not at every pass. (pebble reuses the valid authorization,
	// so the failure comes from a manager whose CA is unreachable.)
	down, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet(), Directory: "https://127.0.0.1:1/dir",
		Attempts: 3, RetryDelay: time.Minute, Now: clk.Now, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(renewed.NotAfter.Add(-29 * 24 * time.Hour))
	wwwID := f.domain(t, "shop", "www.shop.example").ID
	tries := func() int {
		down.mu.Lock()
		defer down.mu.Unlock()
		if a := down.tries[wwwID]; a != nil {
			return a.n
		}
		return 0
	}
	for i, want := range []int{1, 1} { // the second pass is before the retry is due
		down.Pass(ctx)
		if got := tries(); got != want {
			t.Errorf("failed renewal, pass %d: %d attempts, want %d", i+1, got, want)
		}
	}
	clk.Set(clk.Now().Add(2 * time.Minute))
	down.Pass(ctx)
	if got := tries(); got != 2 {
		t.Errorf("failed renewal after RetryDelay: %d attempts, want 2", got)
	}
	if got := deref(f.domain(t, "shop", "www.shop.example").ACMStatus); got != platform.ACMCertIssued {
		t.Errorf("after failed renewals: %q, want still cert issued", got)
	}
	if err := down.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c := serve(t, down, "www.shop.example"); !c.Equal(renewed) {
		t.Error("a failed renewal changed the served certificate")
	}

	// Refresh retries the failed domain; with DNS fixed it succeeds.
	pebble.Resolve(t, "fail.shop.example", "127.0.0.1")
	if _, err := f.p.RefreshACM(ctx, f.admin, "shop"); err != nil {
		t.Fatal(err)
	}
	m.Pass(ctx)
	if got := deref(f.domain(t, "shop", "fail.shop.example").ACMStatus); got != platform.ACMCertIssued {
		t.Errorf("after refresh with DNS fixed: %q, want cert issued", got)
	}

	// Disabling ACM drops the certificates: the platform's serves again.
	if _, err := f.p.SetACM(ctx, f.admin, "shop", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c := serve(t, m, "www.shop.example"); !c.Equal(f.def.Leaf) {
		t.Errorf("after disabling ACM: served %q's certificate, want the platform's", c.Issuer.CommonName)
	}
	if d := f.domain(t, "shop", "www.shop.example"); d.ACMStatus != nil {
		t.Errorf("after disabling ACM: acm_status %q, want null", *d.ACMStatus)
	}
}

// serve runs a real TLS handshake against the manager's GetCertificate and
// returns the leaf the client saw.
func serve(t *testing.T, m *Manager, sni string) *x509.Certificate {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestGetCertificateDoesNotAllocate guards the handshake hot path.
func TestGetCertificateDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	f.app(t, "shop", "www.shop.example", "*.wild.example")
	f.upload(t, "shop", "www.shop.example")
	m, err := New(context.Background(), Config{Source: f.p, Default: f.def, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, sni := range []string{"www.shop.example", "a.wild.example", "shop.skiff.test", "unknown.example"} {
		hello := &tls.ClientHelloInfo{ServerName: sni}
		if n := testing.AllocsPerRun(100, func() { m.GetCertificate(hello) }); n != 0 {
			t.Errorf("GetCertificate(%q) allocates %.0f times", sni, n)
		}
	}
}

// BenchmarkGetCertificate measures the handshake-path lookup over 1000
// custom domains with their own certificates.
func BenchmarkGetCertificate(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if _, err := f.p.CreateApp(ctx, f.admin, platform.AppSpec{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	c, err := f.ca.Issue([]string{"*.bench.example"}, 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	chain, key := pemChain(b, c)
	if _, err := f.p.CreateSNIEndpoint(ctx, f.admin, "bench", chain, key); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := f.p.CreateDomain(ctx, f.admin, "bench", fmt.Sprintf("d%d.bench.example", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	m, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	hellos := []*tls.ClientHelloInfo{{ServerName: "d500.bench.example"}, {ServerName: "bench.skiff.test"}, {ServerName: "D7.Bench.Example"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.GetCertificate(hellos[i%len(hellos)])
	}
}

// TestRenewAt: a certificate is renewed RenewBefore ahead of expiry, or
// with a third of its lifetime left when that is sooner (a CA issuing
// certificates shorter-lived than RenewBefore).
func TestRenewAt(t *testing.T) {
	ca, err := pki.Open(filepath.Join(t.TempDir(), "ca"), "Renewal CA")
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: Config{RenewBefore: 30 * 24 * time.Hour}}
	for _, tc := range []struct {
		lifetime time.Duration
		window   time.Duration // renewal this long before expiry
	}{
		{90 * 24 * time.Hour, 30 * 24 * time.Hour},
		{6 * 24 * time.Hour, 0}, // a third of the lifetime
		{30 * time.Second, 0},
	} {
		c, err := ca.Issue([]string{"renew.example"}, tc.lifetime)
		if err != nil {
			t.Fatal(err)
		}
		chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
		leaf := c.Leaf
		got := m.renewAt(&platform.ACMECert{CertificateChain: chain, NotAfter: leaf.NotAfter})
		window := tc.window
		if window == 0 { // pki backdates NotBefore: the lifetime is the certificate's own
			window = leaf.NotAfter.Sub(leaf.NotBefore) / 3
		}
		want := leaf.NotAfter.Add(-window)
		if !got.Equal(want) {
			t.Errorf("lifetime %s: renew at %s before expiry, want %s", tc.lifetime, leaf.NotAfter.Sub(got), leaf.NotAfter.Sub(want))
		}
	}
	// A chain that does not parse: RenewBefore.
	exp := time.Now().Add(90 * 24 * time.Hour)
	if got := m.renewAt(&platform.ACMECert{CertificateChain: "junk", NotAfter: exp}); !got.Equal(exp.Add(-30 * 24 * time.Hour)) {
		t.Errorf("unparsable chain: renew at %s, want 30 days before expiry", got)
	}
}

// TestPlatformCertificateRenewed: with Renew, each reload takes the
// platform's certificate anew, for handshakes and for remote routers.
func TestPlatformCertificateRenewed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	current := f.def
	m, err := New(ctx, Config{Source: f.p, Default: f.def, Log: quiet(),
		Renew: func() (*tls.Certificate, error) { return current, nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, changed := m.Served()
	renewed, err := f.ca.Issue([]string{"*.skiff.test", "skiff.test"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	current = renewed
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "shop.skiff.test"}); !c.Leaf.Equal(renewed.Leaf) {
		t.Error("the renewed platform certificate is not served")
	}
	select {
	case <-changed:
	default:
		t.Error("the renewal did not reach remote routers (Served unchanged)")
	}
}
