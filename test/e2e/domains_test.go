package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/certs/pebbletest"
	"github.com/skiffhq/skiff/internal/pki"
)

// TestHerokuDomainsAndCerts drives custom domains and uploaded
// certificates through the official heroku CLI. The expected wording comes
// from the CLI's source (commands/domains/*.js, commands/certs/*.js,
// lib/certs/certificate-details.js).
func TestHerokuDomainsAndCerts(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	h := srv.heroku(t, srv.AdminToken)
	h.ok(t, "apps:create", "shop")
	h.ok(t, "apps:create", "blog")

	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	must("domains without custom domains", func(t *testing.T) {
		res := h.ok(t, "domains", "-a", "shop")
		wantContains(t, res, "stdout", "=== shop Heroku Domain")
		wantContains(t, res, "stdout", "shop.localhost")
		wantNotContains(t, res, "stdout", "Custom Domains")
	})

	var cname string
	must("domains:add --wait", func(t *testing.T) {
		res := h.ok(t, "domains:add", "www.example.com", "-a", "shop", "--wait")
		m := wantMatch(t, res, "stdout", `point to the DNS Target ([a-z0-9.-]+)\.`)
		cname = m[1]
		if !regexp.MustCompile(`^[a-z]+-[a-z]+-[0-9a-f]{24}\.localhost$`).MatchString(cname) {
			t.Errorf("DNS target %q, want <adjective>-<noun>-<random>.localhost", cname)
		}
		wantNotContains(t, res, "stdout", "enqueued") // --wait saw it succeed
	})

	must("domains lists the custom domain", func(t *testing.T) {
		res := h.ok(t, "domains", "-a", "shop")
		wantContains(t, res, "stdout", "=== shop Custom Domains")
		wantMatch(t, res, "stdout", `www\.example\.com\s+CNAME\s+`+regexp.QuoteMeta(cname))
	})

	t.Run("domains:info", func(t *testing.T) {
		res := h.ok(t, "domains:info", "www.example.com", "-a", "shop")
		wantMatch(t, res, "stdout", `kind:\s+custom`)
		wantMatch(t, res, "stdout", `status:\s+succeeded`)
		wantMatch(t, res, "stdout", `cname:\s+`+regexp.QuoteMeta(cname))
		wantMatch(t, res, "stdout", `app:\s+shop`)
	})

	t.Run("a hostname belongs to one app", func(t *testing.T) {
		res := h.fails(t, "domains:add", "WWW.example.com", "-a", "blog")
		wantContains(t, res, "stderr", "Hostname www.example.com is already in use by another app.")
		res = h.fails(t, "domains:add", "www.example.com", "-a", "shop")
		wantContains(t, res, "stderr", "Hostname www.example.com is already added to this app.")
	})

	t.Run("invalid hostnames", func(t *testing.T) {
		for host, want := range map[string]string{
			"bad_host.example.com": `label "bad_host" may contain only letters, digits and hyphens`,
			"localhost":            "must be a fully qualified domain name",
			"*.com":                "must have at least two labels after the *",
			"a.*.example.com":      "a wildcard (*) may only be the whole first label",
			"10.0.0.1":             "is an IP address",
			"x.localhost":          "reserves for its own app and DNS target names",
			"bücher.example":       "punycode",
		} {
			res := h.fails(t, "domains:add", host, "-a", "shop")
			wantContains(t, res, "stderr", want)
		}
	})

	t.Run("wildcard domains", func(t *testing.T) {
		h.ok(t, "domains:add", "*.wild.example.com", "-a", "blog")
		res := h.ok(t, "domains", "-a", "blog")
		wantContains(t, res, "stdout", "*.wild.example.com")
	})

	// A certificate for api.example.com, from a CA of the test's own.
	dir := t.TempDir()
	ca, err := pki.Open(filepath.Join(dir, "ca"), "E2E Test CA")
	if err != nil {
		t.Fatal(err)
	}
	crt, key := writeCert(t, ca, dir, "api", "api.example.com")

	var name string
	must("certs:add", func(t *testing.T) {
		res := h.ok(t, "certs:add", crt, key, "-a", "shop")
		wantContains(t, res, "stdout", "Certificate details:")
		wantMatch(t, res, "stdout", `Common Name\(s\):\s+api\.example\.com`)
		wantMatch(t, res, "stdout", `Issuer:\s+/O=Skiff/CN=E2E Test CA`)
		wantContains(t, res, "stdout", "SSL certificate is not trusted.")
		res = h.ok(t, "certs", "-a", "shop")
		name = wantMatch(t, res, "stdout", `\b([a-z]+-[0-9]{5})\b`)[1]
		wantContains(t, res, "stdout", "api.example.com")
	})

	t.Run("certs:add refuses a key of another certificate", func(t *testing.T) {
		_, otherKey := writeCert(t, ca, dir, "other", "other.example.com")
		res := h.fails(t, "certs:add", crt, otherKey, "-a", "shop")
		wantContains(t, res, "stderr", "private_key does not match the first certificate of certificate_chain.")
	})

	must("domains:add with the certificate", func(t *testing.T) {
		h.ok(t, "domains:add", "api.example.com", "-a", "shop", "--cert", name)
		res := h.ok(t, "domains", "-a", "shop")
		wantMatch(t, res, "stdout", `api\.example\.com\s+CNAME\s+\S+\s+`+name)
	})

	t.Run("certs:info", func(t *testing.T) {
		res := h.ok(t, "certs:info", "-a", "shop", "--name", name)
		wantMatch(t, res, "stdout", `Common Name\(s\):\s+api\.example\.com`)
		wantContains(t, res, "stderr", "Fetching SSL certificate "+name+" info for shop... done")
	})

	t.Run("certs:update and domains:update", func(t *testing.T) {
		crt2, key2 := writeCert(t, ca, dir, "api2", "api.example.com", "api2.example.com")
		res := h.ok(t, "certs:update", crt2, key2, "-a", "shop", "--name", name, "--confirm", "shop")
		wantContains(t, res, "stdout", "Updated certificate details:")
		wantMatch(t, res, "stdout", `Common Name\(s\):\s+api\.example\.com\n\s+api2\.example\.com\n`)
		h.ok(t, "domains:add", "api2.example.com", "-a", "shop")
		res = h.ok(t, "domains:update", "api2.example.com", "--cert", name, "-a", "shop")
		wantContains(t, res, "stderr", "Updating api2.example.com to use "+name+" certificate... done")
		res = h.ok(t, "domains", "-a", "shop")
		wantMatch(t, res, "stdout", `api2\.example\.com\s+CNAME\s+\S+\s+`+name)
		res = h.fails(t, "certs:update", crt2, key, "-a", "shop", "--name", name, "--confirm", "shop")
		wantContains(t, res, "stderr", "private_key does not match the first certificate of certificate_chain.")
	})

	must("certs:remove", func(t *testing.T) {
		res := h.ok(t, "certs:remove", "-a", "shop", "--name", name, "--confirm", "shop")
		wantContains(t, res, "stderr", "Removing SSL certificate "+name+" from shop... done")
		res = h.ok(t, "certs", "-a", "shop")
		wantContains(t, res, "stdout", "shop has no SSL certificates.")
		res = h.ok(t, "domains:info", "api.example.com", "-a", "shop")
		wantNotContains(t, res, "stdout", name)
	})

	must("domains:remove", func(t *testing.T) {
		res := h.ok(t, "domains:remove", "www.example.com", "-a", "shop")
		wantContains(t, res, "stderr", "Removing www.example.com from shop... done")
		res = h.ok(t, "domains", "-a", "shop")
		wantNotContains(t, res, "stdout", "www.example.com")
		// Removed, the hostname is free for another app.
		h.ok(t, "domains:add", "www.example.com", "-a", "blog")
	})

	t.Run("certs:add asks which domains to associate", func(t *testing.T) {
		crt, key := writeCert(t, ca, dir, "www", "www.example.com")
		// The checkbox is drawn on stdout: select the one domain, confirm.
		res := answerOnStdout(t, h, "Select domains", " \n", "certs:add", crt, key, "-a", "blog")
		wantContains(t, res, "stdout", "Almost done! Which of these domains on this application would you like this certificate associated with?")
		res = h.ok(t, "domains", "-a", "blog")
		wantMatch(t, res, "stdout", `www\.example\.com\s+CNAME\s+\S+\s+[a-z]+-[0-9]{5}`)
	})

	t.Run("the skiff client", func(t *testing.T) {
		res := srv.skiff(t, srv.AdminToken, "domains:add", "shop.example.org", "-a", "shop")
		wantContains(t, res, "stdout", "shop.example.org")
		res = srv.skiff(t, srv.AdminToken, "domains", "-a", "shop")
		wantContains(t, res, "stdout", "shop.localhost")
		wantMatch(t, res, "stdout", `shop\.example\.org\s+CNAME\s+[a-z]+-[a-z]+-[0-9a-f]{24}\.localhost`)
		srv.skiff(t, srv.AdminToken, "domains:remove", "shop.example.org", "-a", "shop")
		res = srv.skiff(t, srv.AdminToken, "domains", "-a", "shop")
		wantNotContains(t, res, "stdout", "shop.example.org")
	})

	t.Run("domains:clear", func(t *testing.T) {
		res := h.ok(t, "domains:clear", "-a", "shop")
		wantContains(t, res, "stderr", "Removing all domains from shop... done")
		res = h.ok(t, "domains", "-a", "shop")
		wantContains(t, res, "stdout", "shop.localhost")
		wantNotContains(t, res, "stdout", "Custom Domains")
	})
}

// TestHerokuCertsAuto enables Automated Certificate Management with the
// official CLI against a server whose ACME CA is pebble. No router answers
// the HTTP-01 challenges in this test, so validation fails and the CLI
// shows the domain failing with the CA's reason.
func TestHerokuCertsAuto(t *testing.T) {
	t.Parallel()
	// pebble's validation authority dials a port on which nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pebble := pebbletest.Start(t, port)
	srv := startServerIn(t, t.TempDir(), true, "--acme-directory", pebble.Directory, "--acme-roots", pebble.RootsFile)
	h := srv.heroku(t, srv.AdminToken)
	h.ok(t, "apps:create", "acm")
	h.ok(t, "domains:add", "www.acm.example", "-a", "acm")

	res := h.ok(t, "certs:auto", "-a", "acm")
	wantContains(t, res, "stdout", "Automatic Certificate Management is disabled on acm")

	res = h.ok(t, "certs:auto:enable", "-a", "acm")
	wantContains(t, res, "stderr", "Enabling Automatic Certificate Management... starting.")
	var app struct{ ACM bool }
	srv.apiJSON(t, srv.AdminToken, "GET", "/apps/acm", nil, "", 200, &app)
	if !app.ACM {
		t.Fatal("acm is false after certs:auto:enable")
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		res = h.ok(t, "certs:auto", "-a", "acm")
		if strings.Contains(res.Stdout, "Failing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the domain never showed as failing:\n%s", res.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantContains(t, res, "stdout", "Automatic Certificate Management is enabled on acm")
	wantContains(t, res, "stdout", "Some domains are failing validation, please verify that your DNS matches")
	wantMatch(t, res, "stdout", `www\.acm\.example\s+Failing\s+HTTP-01 validation of www\.acm\.example failed: .*`+strconv.Itoa(port))

	var domains []struct {
		Hostname        string
		ACMStatus       *string `json:"acm_status"`
		ACMStatusReason *string `json:"acm_status_reason"`
	}
	srv.apiJSON(t, srv.AdminToken, "GET", "/apps/acm/domains", nil, "", 200, &domains)
	if len(domains) != 2 || domains[1].ACMStatus == nil || *domains[1].ACMStatus != "failing" {
		t.Errorf("domains after a failed validation: %s", show(domains))
	}

	res = h.ok(t, "certs:auto:refresh", "-a", "acm")
	wantContains(t, res, "stderr", "Refreshing Automatic Certificate Management... done")

	res = h.ok(t, "certs:auto:disable", "-a", "acm", "--confirm", "acm")
	wantContains(t, res, "stderr", "Disabling Automatic Certificate Management... done")
	res = h.ok(t, "certs:auto", "-a", "acm")
	wantContains(t, res, "stdout", "Automatic Certificate Management is disabled on acm")
}

// writeCert issues a certificate for names from ca and writes it and its
// key as PEM files, returning their paths.
func writeCert(t *testing.T, ca *pki.CA, dir, base string, names ...string) (crtPath, keyPath string) {
	t.Helper()
	c, err := ca.Issue(names, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	crtPath, keyPath = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(crtPath, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crtPath, keyPath
}

// answerOnStdout runs `heroku args...`, writes input to its stdin once
// prompt has appeared on its stdout (where inquirer's checkbox is drawn),
// and fails the test unless it exits 0.
func answerOnStdout(t *testing.T, h *herokuCLI, prompt, input string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, herokuBinary(t), args...)
	cmd.Env, cmd.Dir = h.env(), t.TempDir()
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stdout.String(), prompt) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(stdin, input)
	stdin.Close()
	err = cmd.Wait()
	res := result{Cmd: "heroku " + strings.Join(args, " "), Stdout: stripANSI(stdout.String()), Stderr: stripANSI(stderr.String())}
	if err != nil {
		t.Fatalf("%s: %v\n--- stdout:\n%s\n--- stderr:\n%s", res.Cmd, err, res.Stdout, res.Stderr)
	}
	return res
}
