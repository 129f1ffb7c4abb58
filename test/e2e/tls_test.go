package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/certs/pebbletest"
	"github.com/skiffhq/skiff/internal/pki"
)

// TestRouterCustomDomainsAndCerts drives a custom domain through the real
// server's router with a real dyno: the domain routes within 100 ms of
// domains:add and stops at domains:remove; an uploaded certificate serves
// its name over HTTPS while the default host keeps the platform's; the
// router's metrics and log lines cover the custom domain's requests.
func TestRouterCustomDomainsAndCerts(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	img := importImageOf(t, dataDir, routedApp)
	s := startServerIn(t, dataDir, true, "--dynos=true", "--dyno-bridge", "sktl1", "--dyno-subnet", "10.213.224.0/24",
		"--rendezvous-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "tlsapp")
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/tlsapp/formation",
		map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": img}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	waitPS(t, h, "tlsapp", "web.1=up")

	const domain = "www.example.test"
	if st, b := routerGet(t, s.RouterURL, domain); st != 404 || !strings.Contains(b, "nothing here") {
		t.Fatalf("%s before domains:add: %d %.100q, want the no-such-app 404", domain, st, b)
	}

	// Routed within 100 ms of the add (the CLI's exit is after the API's
	// commit, so this is if anything generous to the router).
	h.ok(t, "domains:add", domain, "-a", "tlsapp")
	took := pollRouter(t, s.RouterURL, domain, 200, "web.1 http HTTP/1.1")
	t.Logf("%s routed %s after domains:add returned", domain, took)
	if took > 100*time.Millisecond {
		t.Errorf("%s reached the dyno %s after domains:add, want within 100ms", domain, took)
	}

	h.ok(t, "domains:remove", domain, "-a", "tlsapp")
	took = pollRouter(t, s.RouterURL, domain, 404, "nothing here")
	t.Logf("%s unrouted %s after domains:remove returned", domain, took)
	if took > 100*time.Millisecond {
		t.Errorf("%s still routed %s after domains:remove, want within 100ms", domain, took)
	}

	// Timed from the API's answer, as a script adding a domain sees it.
	if st, b := s.api(t, s.AdminToken, "POST", "/apps/tlsapp/domains", map[string]any{"hostname": "api.example.test", "sni_endpoint": nil}, ""); st != 201 {
		t.Fatalf("POST /apps/tlsapp/domains: %d %s", st, b)
	}
	took = pollRouter(t, s.RouterURL, "API.example.test.", 200, "web.1 http HTTP/1.1")
	t.Logf("api.example.test routed %s after POST /apps/tlsapp/domains answered", took)
	if took > 100*time.Millisecond {
		t.Errorf("api.example.test reached the dyno %s after the API added it, want within 100ms", took)
	}

	// A challenge path the server has no token for goes to the app, which
	// may answer its own ACME challenges.
	req, _ := http.NewRequest("GET", s.RouterURL+"/.well-known/acme-challenge/apps-own-token", nil)
	req.Host = "api.example.test"
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "web.1 http HTTP/1.1" {
			t.Errorf("unknown ACME token: %d %.100q, want the dyno's answer", res.StatusCode, b)
		}
	}

	// A wildcard domain answers for one label more.
	h.ok(t, "domains:add", "*.wild.example.test", "-a", "tlsapp")
	pollRouter(t, s.RouterURL, "a.wild.example.test:80", 200, "web.1 http HTTP/1.1")
	if st, b := routerGet(t, s.RouterURL, "a.b.wild.example.test"); st != 404 {
		t.Errorf("a.b.wild.example.test: %d %.100q, want the no-such-app 404", st, b)
	}

	// An uploaded certificate, from a CA of the test's own. Uploaded before
	// the domain is added, so certs:add asks nothing; the domain then finds
	// it by name.
	dir := t.TempDir()
	ca, err := pki.Open(filepath.Join(dir, "ca"), "Throwaway CA")
	if err != nil {
		t.Fatal(err)
	}
	crt, key := writeCert(t, ca, dir, "www", domain)
	h.ok(t, "certs:add", crt, key, "-a", "tlsapp")
	h.ok(t, "domains:add", domain, "-a", "tlsapp")
	pollRouter(t, s.RouterURL, domain, 200, "web.1 http HTTP/1.1")

	leaf, body := pollTLS(t, s.RouterTLSURL, domain, ca.Pool(), "web.1 https HTTP/1.1")
	if leaf.Issuer.CommonName != "Throwaway CA" {
		t.Errorf("%s served a certificate issued by %q, want the uploaded one", domain, leaf.Issuer.CommonName)
	}
	t.Logf("HTTPS %s: %q", domain, body)
	// HTTP/2 to the client by ALPN, HTTP/1.1 to the dyno.
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: domain, RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ = http.NewRequest("GET", "https://"+strings.TrimPrefix(s.RouterTLSURL, "https://")+"/", nil)
	req.Host = domain
	if res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req); err != nil {
		t.Errorf("HTTP/2 to %s: %v", domain, err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || string(b) != "web.1 https HTTP/1.1" {
			t.Errorf("HTTP/2 to %s: %s %d %q", domain, res.Proto, res.StatusCode, b)
		}
	}

	// A wildcard certificate serves the wildcard domain's names.
	wcrt, wkey := writeCert(t, ca, dir, "wild", "*.wild.example.test")
	// The CLI offers no association for a wildcard: the domain finds the
	// app's certificate by name.
	h.ok(t, "certs:add", wcrt, wkey, "-a", "tlsapp")
	leaf, _ = pollTLS(t, s.RouterTLSURL, "b.wild.example.test", ca.Pool(), "web.1 https HTTP/1.1")
	if leaf.Issuer.CommonName != "Throwaway CA" {
		t.Errorf("b.wild.example.test served a certificate issued by %q, want the uploaded wildcard", leaf.Issuer.CommonName)
	}

	// The default host keeps the platform's certificate, from the local CA.
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "pki", pki.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	platformCA := x509.NewCertPool()
	platformCA.AppendCertsFromPEM(caPEM)
	leaf, _ = pollTLS(t, s.RouterTLSURL, "tlsapp.localhost", platformCA, "web.1 https HTTP/1.1")
	if leaf.Issuer.CommonName != "Skiff local CA" {
		t.Errorf("tlsapp.localhost served a certificate issued by %q, want the local CA's", leaf.Issuer.CommonName)
	}
	// The custom domain's certificate is not the platform's.
	if _, err := tlsDial(s.RouterTLSURL, domain, platformCA); err == nil {
		t.Errorf("%s: the platform's CA verifies its certificate, want the uploaded one", domain)
	}

	// The router's line for a custom-domain request is in the app's log.
	defer func() {
		// Removed, the domain is served the platform's certificate again
		// (and the no-such-app page).
		h.ok(t, "domains:remove", domain, "-a", "tlsapp")
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := tlsDial(s.RouterTLSURL, domain, nil)
			if err != nil {
				t.Fatal(err)
			}
			issuer := c.ConnectionState().PeerCertificates[0].Issuer.CommonName
			c.Close()
			if issuer == "Skiff local CA" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after domains:remove: certificate from %q, want the platform's", domain, issuer)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	re := regexp.MustCompile(`(?m)^\S+ heroku\[router\]: at=info method=GET path="/" host=www\.example\.test request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=https$`)
	for {
		out := h.ok(t, "logs", "-a", "tlsapp", "-n", "200", "--source", "heroku", "--dyno", "router")
		if re.MatchString(out.Stdout) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no router line for an HTTPS request to %s:\n%s", domain, out.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The router's per-app families are on /metrics.
	m := scrape(t, s)
	for _, re := range []string{
		`(?m)^skiff_router_requests_total\{app="tlsapp",class="2xx"\} [1-9]\d*$`,
		`(?m)^skiff_router_response_seconds\{app="tlsapp",quantile="0.99"\} \S+$`,
		`(?m)^skiff_router_response_seconds_count\{app="tlsapp"\} [1-9]\d*$`,
		`(?m)^skiff_router_unknown_host_total [1-9]\d*$`,
	} {
		if !regexp.MustCompile(re).MatchString(m) {
			t.Errorf("metrics do not match %s:\n%s", re, m)
		}
	}
}

// TestRouterACM obtains a certificate from pebble through the real
// server's router: pebble validates the HTTP-01 challenge on the router's
// HTTP port (its DNS, pebble-challtestsrv, resolves the domain to
// 127.0.0.1), the domain reaches "cert issued", and the router serves
// pebble's certificate for it, which verifies against pebble's root.
func TestRouterACM(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	img := importImageOf(t, dataDir, routedApp)
	// The router's HTTP port is chosen first, for pebble's httpPort.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// Certificates valid for 20 s: the server renews each with a third of
	// its lifetime left, so the test sees a renewal too.
	pebble := pebbletest.Start(t, port, pebbletest.Validity(20*time.Second))
	const domain = "acm.example.test"
	pebble.Resolve(t, domain, "127.0.0.1")
	s := startServerIn(t, dataDir, true, "--dynos=true", "--dyno-bridge", "sktl2", "--dyno-subnet", "10.213.225.0/24",
		"--rendezvous-addr", "127.0.0.1:0", "--router-http-addr", "127.0.0.1:"+strconv.Itoa(port),
		"--acme-directory", pebble.Directory, "--acme-roots", pebble.RootsFile)
	if s.RouterURL != "http://127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("router HTTP at %s, want port %d", s.RouterURL, port)
	}
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "acmapp")
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/acmapp/formation",
		map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": img}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	h.ok(t, "domains:add", domain, "-a", "acmapp")
	h.ok(t, "certs:auto:enable", "-a", "acmapp")

	deadline := time.Now().Add(60 * time.Second)
	var res result
	for {
		res = h.ok(t, "certs:auto", "-a", "acmapp")
		if strings.Contains(res.Stdout, "Cert issued") || strings.Contains(res.Stdout, "Fail") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the domain's certificate was never issued:\n%s", res.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantMatch(t, res, "stdout", `acm\.example\.test\s+Cert issued`)
	var domains []struct {
		Hostname  string
		ACMStatus *string `json:"acm_status"`
	}
	s.apiJSON(t, s.AdminToken, "GET", "/apps/acmapp/domains/"+domain, nil, "", 200, nil)
	s.apiJSON(t, s.AdminToken, "GET", "/apps/acmapp/domains", nil, "", 200, &domains)
	if len(domains) != 2 || domains[1].ACMStatus == nil || *domains[1].ACMStatus != "cert issued" {
		t.Fatalf("domains: %s, want %s with acm_status \"cert issued\"", show(domains), domain)
	}

	waitPS(t, h, "acmapp", "web.1=up")
	roots := pebble.IssuerRoots(t)
	leaf, body := pollTLS(t, s.RouterTLSURL, domain, roots, "web.1 https HTTP/1.1")
	t.Logf("HTTPS %s: issuer %q, valid %s to %s, %q", domain, leaf.Issuer.CommonName, leaf.NotBefore, leaf.NotAfter, body)

	// Renewal: a new certificate replaces it before it expires, and the
	// domain stays "cert issued" throughout.
	deadline = time.Now().Add(30 * time.Second)
	for {
		renewed, _, err := getTLS(s.RouterTLSURL, domain, roots)
		if err != nil {
			t.Fatalf("https://%s/ while renewing: %v", domain, err)
		}
		if renewed != nil && !renewed.Equal(leaf) {
			t.Logf("renewed: valid %s to %s", renewed.NotBefore, renewed.NotAfter)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's certificate (expiring %s) was not renewed", domain, leaf.NotAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantMatch(t, h.ok(t, "certs:auto", "-a", "acmapp"), "stdout", `acm\.example\.test\s+Cert issued`)
	// One certificate per renewal, not a storm of them.
	if n := strings.Count(s.stderr.String(), `msg="acme: certificate issued" domain=acm.example.test`); n > 3 {
		t.Errorf("%d certificates issued for one domain within a minute", n)
	}

	// Domains added with ACM on are queued at once; one whose DNS does
	// not reach the router fails with the CA's reason, and the router
	// keeps serving it the platform's certificate.
	pebble.Resolve(t, "lost.example.test", "127.0.0.2")
	h.ok(t, "domains:add", "late.example.test", "-a", "acmapp")
	h.ok(t, "domains:add", "lost.example.test", "-a", "acmapp")
	deadline = time.Now().Add(60 * time.Second)
	for {
		res = h.ok(t, "certs:auto", "-a", "acmapp")
		if regexp.MustCompile(`late\.example\.test\s+Cert issued`).MatchString(res.Stdout) &&
			regexp.MustCompile(`lost\.example\.test\s+Failing`).MatchString(res.Stdout) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late.example.test not issued or lost.example.test not failing:\n%s", res.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantMatch(t, res, "stdout", `lost\.example\.test\s+Failing\s+HTTP-01 validation of lost\.example\.test failed: .*127\.0\.0\.2`)
	pollTLS(t, s.RouterTLSURL, "late.example.test", roots, "web.1 https HTTP/1.1")
	if _, err := tlsDial(s.RouterTLSURL, "lost.example.test", roots); err == nil {
		t.Error("lost.example.test is served a certificate from pebble, want none (the platform's)")
	}

	// A router apart from the server, fed by its API, serves the same
	// ACM certificates.
	_, _, remoteTLS := startAPIRouter(t, s, s.AdminToken)
	pollTLS(t, "https://"+remoteTLS, "late.example.test", roots, "web.1 https HTTP/1.1")
	pollTLS(t, "https://"+remoteTLS, domain, roots, "web.1 https HTTP/1.1")
}

// routerGet sends GET / with the given Host to the router over plain HTTP.
func routerGet(t *testing.T, routerURL, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", routerURL+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET / Host: %s: %v", host, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pollRouter requests host from the router until it answers status with a
// body containing want, and returns how long that took.
func pollRouter(t *testing.T, routerURL, host string, status int, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, b := routerGet(t, routerURL, host)
		if st == status && strings.Contains(b, want) {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: %d %.100q, want %d %q", host, st, b, status, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// tlsDial handshakes with the router's HTTPS address for sni, verifying the
// chain against roots (nil: no verification), and returns the connection.
func tlsDial(routerTLSURL, sni string, roots *x509.CertPool) (*tls.Conn, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: sni, RootCAs: roots, NextProtos: []string{"http/1.1"}, InsecureSkipVerify: roots == nil}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(routerTLSURL, "https://"))
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// pollTLS requests https://sni/ from the router until the certificate
// verifies against roots and the dyno answers with a body containing want;
// it returns the served leaf and the body.
func pollTLS(t *testing.T, routerTLSURL, sni string, roots *x509.CertPool, want string) (*x509.Certificate, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaf, body, err := getTLS(routerTLSURL, sni, roots)
		if err == nil && strings.Contains(body, want) {
			return leaf, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://%s/ through %s: %v %q, want %q", sni, routerTLSURL, err, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func getTLS(routerTLSURL, sni string, roots *x509.CertPool) (*x509.Certificate, string, error) {
	c, err := tlsDial(routerTLSURL, sni, roots)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+sni+"\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, "", err
	}
	_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) {
		return nil, string(b), nil
	}
	return c.ConnectionState().PeerCertificates[0], string(body), nil
}
