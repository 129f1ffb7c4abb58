package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

func (e *env) addDomain(token, app, host string) domainJSON {
	e.t.Helper()
	return decodeAs[domainJSON](e.t, e.must(http.StatusCreated, "POST", "/apps/"+app+"/domains", token, map[string]any{"hostname": host}))
}

func (e *env) domains(token, app string) []domainJSON {
	e.t.Helper()
	return decodeAs[[]domainJSON](e.t, e.must(http.StatusOK, "GET", "/apps/"+app+"/domains", token, nil))
}

func TestDomains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "shop")
	e.createApp(e.bob.Token, "bobs")

	ds := e.domains(e.admin.Token, "shop")
	if len(ds) != 1 || ds[0].Kind != "heroku" || ds[0].Hostname != "shop.localhost" || ds[0].CNAME != nil || ds[0].Status != "none" {
		t.Fatalf("a new app's domains = %+v, want only its default shop.localhost", ds)
	}
	def := ds[0]

	e.drain()
	d := e.addDomain(e.admin.Token, "shop", "WWW.Example.COM.")
	if d.Hostname != "www.example.com" || d.Kind != "custom" || d.Status != "succeeded" || d.ACMStatus != nil ||
		d.SNIEndpoint != nil || d.App.Name != "shop" || d.CNAME == nil {
		t.Fatalf("created domain = %+v", d)
	}
	if !regexp.MustCompile(`^[a-z]+-[a-z]+-[0-9a-f]{24}\.localhost$`).MatchString(*d.CNAME) {
		t.Errorf("cname = %q, want <adjective>-<noun>-<24 hex>.localhost", *d.CNAME)
	}
	if ev := e.drain(); len(ev) != 1 || ev[0].Kind != platform.EventDomains {
		t.Errorf("events after adding a domain = %+v, want one %q", ev, platform.EventDomains)
	}
	hosts, err := e.p.Hostnames(t.Context())
	if err != nil || len(hosts) != 1 || strings.Join(hosts[decodeAs[appJSON](t, e.must(200, "GET", "/apps/shop", e.admin.Token, nil)).ID], ",") != "www.example.com" {
		t.Errorf("Hostnames = %v, %v", hosts, err)
	}

	for _, ident := range []string{d.ID, "www.example.com", "WWW.EXAMPLE.COM"} {
		got := decodeAs[domainJSON](t, e.must(http.StatusOK, "GET", "/apps/shop/domains/"+ident, e.admin.Token, nil))
		if got.ID != d.ID {
			t.Errorf("GET domain %s = %+v", ident, got)
		}
	}
	for _, ident := range []string{def.ID, "shop.localhost"} {
		if got := decodeAs[domainJSON](t, e.must(http.StatusOK, "GET", "/apps/shop/domains/"+ident, e.admin.Token, nil)); got.Kind != "heroku" {
			t.Errorf("GET default domain by %s = %+v", ident, got)
		}
	}
	if ds := e.domains(e.admin.Token, "shop"); len(ds) != 2 || ds[0].Kind != "heroku" || ds[1].ID != d.ID {
		t.Errorf("list = %+v", ds)
	}

	before := e.dump()
	for _, tc := range []struct {
		body   any
		status int
		msg    string
	}{
		{map[string]any{}, 422, "Missing required params: hostname."},
		{map[string]any{"hostname": 5}, 422, "Invalid type for hostname"},
		{map[string]any{"hostname": "www.example.com"}, 422, "Hostname www.example.com is already added to this app."},
		{map[string]any{"hostname": ""}, 422, "Hostname must not be empty."},
		{map[string]any{"hostname": "example"}, 422, "must be a fully qualified domain name"},
		{map[string]any{"hostname": "a..example.com"}, 422, "it has an empty label"},
		{map[string]any{"hostname": "-a.example.com"}, 422, "starts or ends with a hyphen"},
		{map[string]any{"hostname": "a_b.example.com"}, 422, "may contain only letters, digits and hyphens"},
		{map[string]any{"hostname": strings.Repeat("a", 64) + ".example.com"}, 422, "longer than 63 characters"},
		{map[string]any{"hostname": strings.Repeat("abcdefghi.", 26) + "com"}, 422, "too long"},
		{map[string]any{"hostname": "*.com"}, 422, "at least two labels after the *"},
		{map[string]any{"hostname": "a.*.example.com"}, 422, "may only be the whole first label"},
		{map[string]any{"hostname": "*a.example.com"}, 422, "may only be the whole first label"},
		{map[string]any{"hostname": "192.0.2.1"}, 422, "is an IP address"},
		{map[string]any{"hostname": "[::1]"}, 422, "is an IP address"},
		{map[string]any{"hostname": "münchen.example"}, 422, "punycode"},
		{map[string]any{"hostname": "other.localhost"}, 422, "reserves for its own app"},
		{map[string]any{"hostname": "localhost.", "x": 1}, 422, "fully qualified"},
		{map[string]any{"hostname": "new.example.com", "sni_endpoint": "nope"}, 422, "Couldn't find the SNI endpoint nope on this app."},
		{map[string]any{"hostname": "new.example.com", "sni_endpoint": 7}, 422, "Invalid type for sni_endpoint"},
	} {
		r := e.do("POST", "/apps/shop/domains", e.admin.Token, tc.body)
		checkError(t, r, tc.status, "invalid_params")
		if !strings.Contains(string(r.Body), tc.msg) {
			t.Errorf("POST %v: %s, want a message with %q", tc.body, r, tc.msg)
		}
	}
	// Another app's hostname, in any case.
	r := e.do("POST", "/apps/bobs/domains", e.bob.Token, map[string]any{"hostname": "www.EXAMPLE.com"})
	checkError(t, r, 422, "invalid_params")
	if !strings.Contains(string(r.Body), "Hostname www.example.com is already in use by another app.") {
		t.Errorf("another app's hostname: %s", r)
	}
	e.expectError(422, "invalid_params", "DELETE", "/apps/shop/domains/shop.localhost", e.admin.Token, nil)
	e.expectError(422, "invalid_params", "PATCH", "/apps/shop/domains/shop.localhost", e.admin.Token, map[string]any{"sni_endpoint": nil})
	e.expectError(422, "invalid_params", "PATCH", "/apps/shop/domains/www.example.com", e.admin.Token, map[string]any{})
	e.expectError(404, "not_found", "GET", "/apps/bobs/domains/www.example.com", e.bob.Token, nil)
	e.expectError(404, "not_found", "DELETE", "/apps/bobs/domains/"+d.ID, e.bob.Token, nil)
	e.unchanged(before)

	// Wildcards are fine, and do not clash with names under them.
	e.addDomain(e.bob.Token, "bobs", "*.example.com")

	// The default domain follows a rename.
	e.must(http.StatusOK, "PATCH", "/apps/shop", e.admin.Token, map[string]any{"name": "store"})
	if ds := e.domains(e.admin.Token, "store"); ds[0].Hostname != "store.localhost" || ds[0].ID != def.ID || ds[1].App.Name != "store" {
		t.Errorf("after a rename: %+v", ds)
	}

	deleted := decodeAs[domainJSON](t, e.must(http.StatusOK, "DELETE", "/apps/store/domains/www.example.com", e.admin.Token, nil))
	if deleted.ID != d.ID {
		t.Errorf("DELETE returned %+v", deleted)
	}
	e.addDomain(e.bob.Token, "bobs", "www.example.com") // free again

	// Destroying an app frees its hostnames.
	e.must(http.StatusOK, "DELETE", "/apps/bobs", e.bob.Token, nil)
	e.addDomain(e.admin.Token, "store", "www.example.com")
}

// testCA makes certificates for upload tests.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{t: t, cert: c, key: key}
}

// leaf issues a server certificate for names valid from nb to na, and
// returns its PEM (then the CA's) and its key's PEM.
func (ca *testCA) leaf(nb, na time.Time, names ...string) (cert, caPEM, key string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: nb, NotAfter: na, DNSNames: names, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

func TestSNIEndpoints(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	e := newEnv(t, withClock(clock))
	e.createApp(e.admin.Token, "shop")
	www := e.addDomain(e.admin.Token, "shop", "www.example.com")
	ca := newTestCA(t, "Test CA")
	now := clock.Now()
	crt, caPEM, key := ca.leaf(now.Add(-time.Hour), now.Add(48*time.Hour), "www.example.com", "example.com")
	_, _, otherKey := ca.leaf(now.Add(-time.Hour), now.Add(48*time.Hour), "other.example.com")
	expired, _, expiredKey := ca.leaf(now.Add(-48*time.Hour), now.Add(-time.Hour), "www.example.com")
	future, _, futureKey := ca.leaf(now.Add(time.Hour), now.Add(48*time.Hour), "www.example.com")

	before := e.dump()
	for _, tc := range []struct {
		name       string
		chain, key any
		msg        string
	}{
		{"missing both", nil, nil, "Missing required params: certificate_chain, private_key."},
		{"missing key", crt, nil, "Missing required params: private_key."},
		{"empty chain", "", key, "certificate_chain is required"},
		{"garbage chain", "hello", key, "certificate_chain holds no PEM certificate"},
		{"trailing garbage", crt + "junk", key, "text after its last PEM certificate"},
		{"key in the chain", crt + key, key, "holds a PRIVATE KEY PEM block"},
		{"corrupt certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key, "does not parse"},
		{"garbage key", crt, "nope", "private_key must be exactly one PEM private key"},
		{"certificate as key", crt, crt, "private_key holds a CERTIFICATE PEM block"},
		{"encrypted key", crt, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "private_key is encrypted"},
		{"another certificate's key", crt, otherKey, "private_key does not match the first certificate of certificate_chain."},
		{"chain out of order", caPEM + crt, key, "private_key does not match"},
		{"intermediate not the issuer", crt + crt, key, "certificate_chain is out of order"},
		{"expired", expired, expiredKey, "The certificate expired on"},
		{"not yet valid", future, futureKey, "The certificate is not valid before"},
		{"wrong type", 5, key, "Invalid type for certificate_chain"},
	} {
		body := map[string]any{}
		if tc.chain != nil {
			body["certificate_chain"] = tc.chain
		}
		if tc.key != nil {
			body["private_key"] = tc.key
		}
		r := e.do("POST", "/apps/shop/sni-endpoints", e.admin.Token, body)
		checkError(t, r, 422, "invalid_params")
		if !strings.Contains(string(r.Body), tc.msg) {
			t.Errorf("%s: %s, want a message with %q", tc.name, r, tc.msg)
		}
	}
	e.unchanged(before)

	ep := decodeAs[sniEndpointJSON](t, e.must(http.StatusCreated, "POST", "/apps/shop/sni-endpoints", e.admin.Token,
		map[string]any{"certificate_chain": crt + caPEM, "private_key": key}))
	if !regexp.MustCompile(`^[a-z]+-[0-9]{5}$`).MatchString(ep.Name) || ep.App.Name != "shop" || len(ep.Domains) != 0 ||
		strings.Join(ep.SSLCert.CertDomains, ",") != "www.example.com,example.com" || ep.SSLCert.Issuer != "/CN=Test CA" ||
		ep.SSLCert.Subject != "/CN=www.example.com" || ep.SSLCert.CASigned || ep.SSLCert.SelfSigned || ep.SSLCert.ACM {
		t.Errorf("created endpoint = %+v", ep)
	}
	raw := string(e.must(http.StatusOK, "GET", "/apps/shop/sni-endpoints/"+ep.Name, e.admin.Token, nil).Body)
	if !strings.Contains(raw, `"ca_signed?":false`) || strings.Contains(raw, "PRIVATE KEY") {
		t.Errorf("GET endpoint: %s (wants the CLI's \"ca_signed?\" key and never the private key)", raw)
	}

	// Associate by name; the endpoint lists the domain's id.
	d := decodeAs[domainJSON](t, e.must(http.StatusOK, "PATCH", "/apps/shop/domains/www.example.com", e.admin.Token, map[string]any{"sni_endpoint": ep.Name}))
	if d.SNIEndpoint == nil || d.SNIEndpoint.Name != ep.Name || d.SNIEndpoint.ID != ep.ID {
		t.Errorf("after PATCH: %+v", d)
	}
	eps := decodeAs[[]sniEndpointJSON](t, e.must(http.StatusOK, "GET", "/apps/shop/sni-endpoints", e.admin.Token, nil))
	if len(eps) != 1 || strings.Join(eps[0].Domains, ",") != www.ID {
		t.Errorf("list = %+v", eps)
	}
	// PATCH replaces the certificate; bad input changes nothing.
	before = e.dump()
	e.expectError(422, "invalid_params", "PATCH", "/apps/shop/sni-endpoints/"+ep.ID, e.admin.Token, map[string]any{"certificate_chain": crt, "private_key": otherKey})
	e.expectError(404, "not_found", "PATCH", "/apps/shop/sni-endpoints/nope-12345", e.admin.Token, map[string]any{"certificate_chain": crt, "private_key": key})
	e.unchanged(before)
	// The replacement starts after the first upload and the first expires.
	clock.Advance(50 * time.Hour)
	crt2, _, key2 := ca.leaf(clock.Now().Add(-time.Hour), clock.Now().Add(72*time.Hour), "www.example.com")
	up := decodeAs[sniEndpointJSON](t, e.must(http.StatusOK, "PATCH", "/apps/shop/sni-endpoints/"+ep.ID, e.admin.Token, map[string]any{"certificate_chain": crt2, "private_key": key2}))
	if up.CertificateChain != crt2 || len(up.Domains) != 1 || strings.Join(up.SSLCert.CertDomains, ",") != "www.example.com" {
		t.Errorf("after PATCH: %+v", up)
	}
	// A new domain can name the endpoint at once.
	if d := e.must(http.StatusCreated, "POST", "/apps/shop/domains", e.admin.Token, map[string]any{"hostname": "example.com", "sni_endpoint": ep.ID}); !strings.Contains(string(d.Body), ep.Name) {
		t.Errorf("created with an endpoint: %s", d)
	}
	// Deleting the endpoint leaves its domains without one.
	e.must(http.StatusOK, "DELETE", "/apps/shop/sni-endpoints/"+ep.Name, e.admin.Token, nil)
	for _, d := range e.domains(e.admin.Token, "shop") {
		if d.SNIEndpoint != nil {
			t.Errorf("%s still names the deleted endpoint", d.Hostname)
		}
	}
	e.expectError(404, "not_found", "GET", "/apps/shop/sni-endpoints/"+ep.Name, e.admin.Token, nil)
}

func TestACMEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "shop")
	e.addDomain(e.admin.Token, "shop", "www.example.com")
	e.expectError(422, "invalid_params", "PATCH", "/apps/shop/acm", e.admin.Token, map[string]any{"acm_refresh": true})

	app := decodeAs[appJSON](t, e.must(http.StatusOK, "POST", "/apps/shop/acm", e.admin.Token, map[string]any{}))
	if !app.ACM {
		t.Fatal("acm false after POST /acm")
	}
	status := func() *string { return e.domains(e.admin.Token, "shop")[1].ACMStatus }
	if s := status(); s == nil || *s != "pending" {
		t.Errorf("after enabling: acm_status %v, want pending", s)
	}
	// A domain added while ACM is on is queued too.
	if d := e.addDomain(e.admin.Token, "shop", "api.example.com"); d.ACMStatus == nil || *d.ACMStatus != "pending" {
		t.Errorf("domain added with ACM on: %+v", d)
	}
	// Refresh re-queues failed domains.
	id := e.domains(e.admin.Token, "shop")[1].ID
	reason := "boom"
	if err := e.p.SetACMStatus(t.Context(), id, platform.ACMFailed, &reason); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusOK, "PATCH", "/apps/shop/acm", e.admin.Token, map[string]any{"acm_refresh": true})
	if d := e.domains(e.admin.Token, "shop")[1]; d.ACMStatus == nil || *d.ACMStatus != "pending" || d.ACMStatusReason != nil {
		t.Errorf("after refresh: %+v", d)
	}
	app = decodeAs[appJSON](t, e.must(http.StatusOK, "DELETE", "/apps/shop/acm", e.admin.Token, nil))
	if app.ACM || status() != nil {
		t.Errorf("after disabling: acm %v, acm_status %v", app.ACM, status())
	}
}

func TestDomainsAndCertsMalformedJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createApp(e.admin.Token, "jsonapp")
	e.addDomain(e.admin.Token, "jsonapp", "www.example.com")
	before := e.dump()
	for _, w := range []struct{ method, path string }{
		{"POST", "/apps/jsonapp/domains"},
		{"PATCH", "/apps/jsonapp/domains/www.example.com"},
		{"POST", "/apps/jsonapp/sni-endpoints"},
		{"PATCH", "/apps/jsonapp/acm"},
	} {
		for _, body := range []string{`{"hostname": `, `hostname=x`, `["a"]`, `{} {}`} {
			checkError(t, e.do(w.method, w.path, e.admin.Token, body), http.StatusBadRequest, "bad_request")
		}
	}
	e.unchanged(before)
}
