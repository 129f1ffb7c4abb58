// Package pebbletest runs pebble, the ACME test CA, with pebble-challtestsrv
// as its DNS resolver, for tests that obtain real certificates over the
// real protocol. Both run on ports from the kernel with a generated
// configuration; every name resolves to 127.0.0.1 unless told otherwise,
// and pebble's validation authority dials HTTP-01 challenges on the port
// of the listener the test hands in.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

// CA is a running pebble.
type CA struct {
	Directory string         // the ACME directory URL
	Roots     *x509.CertPool // trusts pebble's HTTPS endpoint
	RootsFile string         // the same roots, PEM, for other processes
	mgmt      string         // challtestsrv management URL
	pmgmt     string         // pebble's management URL (its issuing roots)
}

// Option changes pebble's configuration.
type Option func(cfg map[string]any)

// Validity makes pebble issue certificates valid for d (whole seconds),
// for tests of renewal.
func Validity(d time.Duration) Option {
	return func(cfg map[string]any) { cfg["certificateValidityPeriod"] = uint64(d / time.Second) }
}

// Start runs pebble and pebble-challtestsrv until the test ends. httpPort
// is the port pebble's validation authority dials for HTTP-01 challenges.
func Start(t testing.TB, httpPort int, opts ...Option) *CA {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.Open(filepath.Join(dir, "pki"), "pebbletest CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"localhost", "127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	keyFile := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	rootsFile := write("roots.pem", ca.CertPEM)

	dnsPort, mgmtPort := freePort(t, true), freePort(t, false)
	start(t, "pebble-challtestsrv", nil, "-dns01", "127.0.0.1:"+strconv.Itoa(dnsPort), "-http01", "", "-https01", "",
		"-tlsalpn01", "", "-management", "127.0.0.1:"+strconv.Itoa(mgmtPort), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	acmePort, pmgmtPort := freePort(t, false), freePort(t, false)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(acmePort),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(pmgmtPort),
		"certificate":             certFile, "privateKey": keyFile,
		"httpPort": httpPort, "tlsPort": freePort(t, false),
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	for _, o := range opts {
		o(cfg["pebble"].(map[string]any))
	}
	b, _ := json.Marshal(cfg)
	cfgFile := write("pebble.json", b)
	start(t, "pebble", []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, "-config", cfgFile, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort))

	c := &CA{Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort), Roots: ca.Pool(), RootsFile: rootsFile,
		mgmt: fmt.Sprintf("http://127.0.0.1:%d", mgmtPort), pmgmt: fmt.Sprintf("https://127.0.0.1:%d", pmgmtPort)}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Roots}}, Timeout: time.Second}
	waitUp(t, hc, c.Directory)
	waitUp(t, http.DefaultClient, c.mgmt+"/")
	return c
}

// IssuerRoots returns the root pebble issues certificates under, fetched
// from its management API: pebble makes a new one at each start.
func (c *CA) IssuerRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Roots}}, Timeout: 10 * time.Second}
	resp, err := hc.Get(c.pmgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble's root: %v %s %s", err, resp.Status, b)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root is not PEM: %s", b)
	}
	return pool
}

// Resolve makes host resolve to addr (an IPv4 address) for pebble.
func (c *CA) Resolve(t testing.TB, host, addr string) {
	t.Helper()
	c.manage(t, "clear-a", map[string]any{"host": host + "."})
	c.manage(t, "add-a", map[string]any{"host": host + ".", "addresses": []string{addr}})
}

func (c *CA) manage(t testing.TB, op string, v any) {
	t.Helper()
	body, _ := json.Marshal(v)
	resp, err := http.Post(c.mgmt+"/"+op, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv %s %s: %s", op, body, resp.Status)
	}
}

func start(t testing.TB, bin string, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, out.String())
		}
	})
}

func waitUp(t testing.TB, hc *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for a free port (TCP, and UDP too when udp).
func freePort(t testing.TB, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if udp {
			u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				l.Close()
				continue
			}
			u.Close()
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}
