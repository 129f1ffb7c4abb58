package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/drain/draintest"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/pki"
)

// TestDrains adds, lists and removes drains with the official CLI, then
// sends a burst of 10 000 lines through the log-input endpoint into an app
// with three drains: rsyslog over TCP, an HTTPS receiver (certificate from
// a CA the server trusts through --drain-ca-file) and a syslog receiver
// that accepts a connection and never reads. The burst is taken whole, the
// healthy drains get every line or an L10 that counts it, the stuck one
// drops and counts, and the metrics endpoint says so.
func TestDrains(t *testing.T) {
	t.Parallel()
	caDir := t.TempDir()
	ca, err := pki.Open(caDir, "Drains test CA")
	if err != nil {
		t.Fatal(err)
	}
	s := startServerIn(t, t.TempDir(), true, "--drain-ca-file", filepath.Join(caDir, pki.CertFile), "--metrics-addr", "127.0.0.1:0")
	h := s.heroku(t, s.AdminToken)
	const app = "drainy"
	h.ok(t, "apps:create", app)

	rs := draintest.StartRsyslog(t, nil)
	hr := &httpsReceiver{}
	srv := draintest.ServeTLS(t, hr, ca)
	stuck := stuckReceiver(t)

	syslogURL := "syslog://" + rs.Addr
	httpsURL := "https://user:pa%3Ass@" + srv.Listener.Addr().String() + "/ingest?x=1"
	stuckURL := "syslog://" + stuck
	for _, u := range []string{syslogURL, httpsURL, stuckURL} {
		wantContains(t, h.ok(t, "drains:add", u, "-a", app), "stdout", u)
	}
	list := h.ok(t, "drains", "-a", app)
	wantMatchAll(t, list.stream("stdout"), `d\.[0-9a-f-]{36}`, 3)
	m := regexp.MustCompile(regexp.QuoteMeta(stuckURL) + `\W+(d\.[0-9a-f-]{36})`).FindStringSubmatch(list.stream("stdout"))
	if m == nil {
		t.Fatalf("heroku drains names no token for %s", stuckURL)
	}
	stuckToken := m[1]
	for _, u := range []string{syslogURL, httpsURL, stuckURL} {
		wantContains(t, list, "stdout", u)
	}
	h.fails(t, "drains:add", "ftp://nope.example.com", "-a", app)

	// The burst: 100 batches of 100 lines of 1 KB (10 MB: more than the
	// stuck receiver's socket buffers hold), as fast as the client can:
	// the first 50 one request each, the other 50 in one chunked request
	// (a stream, taken as it arrives).
	const total = 10000
	pad := strings.Repeat(".", 1000)
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(name string, body io.Reader) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL+"/apps/"+app+"/log-input", body)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		req.Header.Set("Content-Type", "application/logplex-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("log-input %s: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("log-input %s: status %d", name, resp.StatusCode)
		}
	}
	var stream []io.Reader
	for b := 0; b < total/100; b++ {
		var body bytes.Buffer
		for i := b * 100; i < (b+1)*100; i++ {
			msg := "<190>1 2026-11-23T10:00:00.000000+00:00 host app worker.1 - " + pad + " burst " + strconv.Itoa(i)
			fmt.Fprintf(&body, "%d %s", len(msg), msg)
		}
		if b < total/200 {
			post("batch "+strconv.Itoa(b), &body)
		} else {
			stream = append(stream, &body)
		}
	}
	post("stream", io.MultiReader(stream...)) // of unknown length: chunked
	// The app's own log has the whole burst, whatever the drains do (lines
	// are committed asynchronously: the last may need a moment).
	for try := 0; ; try++ {
		out := h.ok(t, "logs", "-n", "1", "-a", app)
		if strings.Contains(out.stream("stdout"), " burst 9999") {
			break
		}
		if try == 20 {
			t.Fatalf("%s", out.describe("the burst's last line"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	burst := regexp.MustCompile(`burst (\d+)$`)
	l10 := regexp.MustCompile(`Error L10 \(output buffer overflow\): (\d+) messages dropped since`)
	tally := func(msgs []string) (got, reported int) {
		for _, m := range msgs {
			if burst.MatchString(m) {
				got++
			} else if mm := l10.FindStringSubmatch(m); mm != nil {
				n, _ := strconv.Atoi(mm[1])
				reported += n
			}
		}
		return got, reported
	}
	for name, read := range map[string]func() []string{"rsyslog": rs.Read, "https": hr.messages} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, reported := tally(read())
			if got+reported == total {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s drain: %d lines + %d reported by L10, want %d", name, got, reported, total)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, l := range rs.Read()[:3] {
		if !strings.HasPrefix(l, "d.") || !strings.Contains(l, "|app|worker.1|-|-|190|") {
			t.Errorf("rsyslog line %q: want the drain token as host, app and worker.1", l)
		}
	}

	// Metrics: the stuck drain dropped, and says so.
	metrics := scrape(t, s)
	if !regexp.MustCompile(`skiff_drain_lines_dropped_total\{[^}]*drain="` + regexp.QuoteMeta(stuckToken) + `"[^}]*\} [1-9]`).MatchString(metrics) {
		t.Errorf("the stuck drain reports no dropped lines in the metrics:\n%s", metrics)
	}
	for _, want := range []string{"skiff_logplex_lines_in_total ", "skiff_drains 3", "# TYPE skiff_drain_lines_delivered_total counter"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Removal by URL (the CLI percent-encodes it) and by token.
	h.ok(t, "drains:remove", httpsURL, "-a", app)
	h.ok(t, "drains:remove", stuckToken, "-a", app)
	list = h.ok(t, "drains", "-a", app)
	wantContains(t, list, "stdout", syslogURL)
	wantNotContains(t, list, "stdout", httpsURL)
	wantNotContains(t, list, "stdout", stuckToken)
	h.fails(t, "drains:remove", stuckToken, "-a", app)

	// The same with the skiff client.
	sk := func(args ...string) result {
		t.Helper()
		r := s.skiff(t, s.AdminToken, append(args, "-a", app)...)
		if r.Code != 0 {
			t.Fatalf("%s", r.describe("0"))
		}
		return r
	}
	const extra = "https://u:p@127.0.0.1:1/x?y=%2F"
	wantContains(t, sk("drains:add", extra), "stdout", "Successfully added drain "+extra)
	wantContains(t, sk("drains"), "stdout", extra+" (d.")
	wantContains(t, sk("drains:remove", extra), "stdout", "Successfully removed drain "+extra)
	wantNotContains(t, sk("drains"), "stdout", extra)
	if r := s.skiff(t, s.AdminToken, "drains:remove", extra, "-a", app); r.Code == 0 {
		t.Errorf("%s", r.describe("a failure"))
	}
}

// wantMatchAll returns the distinct matches of re in s, failing unless
// there are n.
func wantMatchAll(t *testing.T, s, re string, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllString(s, -1) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	if len(out) != n {
		t.Fatalf("%d distinct matches of %s, want %d, in:\n%s", len(out), re, n, s)
	}
	return out
}

// httpsReceiver keeps the messages of application/logplex-1 batches, each
// frame id once.
type httpsReceiver struct {
	mu   sync.Mutex
	ids  map[string]bool
	msgs []string
}

func (r *httpsReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	frames, err := logplex.ParseFrames(b)
	if user, pass, _ := req.BasicAuth(); err != nil || user != "user" || pass != "pa:ss" {
		http.Error(w, "bad batch or credentials", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	if id := req.Header.Get("Logplex-Frame-Id"); !r.ids[id] {
		r.ids[id] = true
		for _, f := range frames {
			r.msgs = append(r.msgs, f.Message)
		}
	}
}

func (r *httpsReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// stuckReceiver accepts connections and never reads from them.
func stuckReceiver(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096)
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// scrape reads the server's metrics endpoint, whose address the server
// logs at start.
func scrape(t *testing.T, s *server) string {
	t.Helper()
	m := regexp.MustCompile(`msg=metrics url=(http://\S+/metrics)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("the server logged no metrics URL:\n%s", s.stderr.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", m[1], resp.StatusCode, b)
	}
	return string(b)
}
