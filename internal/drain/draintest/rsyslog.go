// Package draintest runs real syslog receivers (Debian rsyslogd) for the
// tests of log drains.
package draintest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

// Rsyslog is a Debian rsyslogd run by a test: imtcp (with the gtls driver
// when certified) on a port the kernel picks, every message written to a
// file as HOSTNAME|APP-NAME|PROCID|MSGID|SD|PRI|TIMESTAMP|MSG.
type Rsyslog struct {
	Addr string // host:port of its imtcp input
	Out  string // the file it writes
	cmd  *exec.Cmd
}

// Pause stops the rsyslogd process (SIGSTOP): it reads nothing until
// Resume, as a stalled receiver.
func (r *Rsyslog) Pause() error { return r.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused rsyslogd run again (SIGCONT).
func (r *Rsyslog) Resume() error { return r.cmd.Process.Signal(syscall.SIGCONT) }

func StartRsyslog(t *testing.T, cert *tls.Certificate) *Rsyslog {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	portFile := filepath.Join(dir, "port")
	var global, input string
	if cert != nil {
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writePEM(t, certFile, "CERTIFICATE", cert.Certificate[0])
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyFile, "PRIVATE KEY", key)
		global = fmt.Sprintf(` defaultNetstreamDriver="gtls" defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q defaultNetstreamDriverCAFile=%q`,
			certFile, keyFile, certFile)
		input = ` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"`
	}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"%s)
module(load="imtcp"%s)
template(name="t" type="string" string="%%HOSTNAME%%|%%APP-NAME%%|%%PROCID%%|%%MSGID%%|%%STRUCTURED-DATA%%|%%PRI%%|%%TIMESTAMP:::date-rfc3339%%|%%msg%%\n")
ruleset(name="r") { action(type="omfile" file=%q template="t") }
input(type="imtcp" port="0" listenPortFileName=%q ruleset="r")
`, dir, global, input, out, portFile)
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsyslogd", "-n", "-f", confFile, "-i", filepath.Join(dir, "pid"))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", stderr.String())
		}
	})
	for range 500 {
		if b, err := os.ReadFile(portFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return &Rsyslog{Addr: "127.0.0.1:" + strings.TrimSpace(string(b)), Out: out, cmd: cmd}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("rsyslogd did not start:\n%s", stderr.String())
	return nil
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Lines returns what rsyslog wrote so far, waiting until it has n lines.
func (r *Rsyslog) Lines(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = r.Read(); len(got) >= n {
			return got
		}
	}
	t.Fatalf("rsyslog received %d lines, want %d: %q", len(got), n, got)
	return nil
}

// Read returns what rsyslog wrote so far.
func (r *Rsyslog) Read() []string {
	b, _ := os.ReadFile(r.Out)
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// ServeTLS serves h over HTTPS on a kernel-chosen loopback port with a
// certificate for 127.0.0.1 from ca, until the test ends.
func ServeTLS(t *testing.T, h http.Handler, ca *pki.CA) *httptest.Server {
	t.Helper()
	cert, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
