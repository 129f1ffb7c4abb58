package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSkiffRouterCommand runs `skiff router` over a table file: it routes
// by Host, prints router lines, reloads the file when it changes and on
// SIGHUP, and keeps the old table when the new one is bad.
func TestSkiffRouterCommand(t *testing.T) {
	t.Parallel()
	backend := func(name string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return l.Addr().String()
	}
	one, two := backend("one"), backend("two")
	dir := t.TempDir()
	table := filepath.Join(dir, "table.json")
	write := func(body string) {
		t.Helper()
		// Replace atomically, as an editor or a deploy tool would.
		if err := os.WriteFile(table+".tmp", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(table+".tmp", table); err != nil {
			t.Fatal(err)
		}
	}
	route := func(addr string) string {
		return fmt.Sprintf(`{"routes":[{"app":"shop","hosts":["shop.example.com"],"backends":[{"name":"web.1","addr":%q}]}]}`, addr)
	}
	write(route(one))

	rp := startRouterProcess(t, nil, "--table", table, "--http-addr", "127.0.0.1:0")
	cmd, stdout := rp.cmd, &rp.stdout
	waitLog := func(re string) []string {
		t.Helper()
		return rp.waitLog(t, re)
	}
	addr := waitLog(`msg="router listening" addr=(\S+)`)[1]
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "shop.example.com"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	if got := get(); got != "200 one" {
		t.Fatalf("first table: %q", got)
	}

	write(route(two)) // picked up by the file watch
	waitLog(`msg="routing table reloaded" on=change`)
	if got := get(); got != "200 two" {
		t.Fatalf("after the change: %q", got)
	}

	write(`{"routes":[{"app":"shop","hosts":["shop.example.com"],"backends":[{"addr":"nowhere"}]}]}`)
	waitLog(`routing table not reloaded; the previous one stays.*address \\"nowhere\\"`)
	if got := get(); got != "200 two" {
		t.Fatalf("after a bad table: %q", got)
	}

	write(route(one))
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`msg="routing table reloaded" on=(SIGHUP|change)`)
	if got := get(); got != "200 one" {
		t.Fatalf("after SIGHUP: %q", got)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if !regexp.MustCompile(`(?m)^\S+ heroku\[router\]: at=info method=GET path="/" host=shop\.example\.com request_id=\S+ fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=3 protocol=http$`).MatchString(stdout.String()) {
		t.Errorf("router lines on stdout:\n%s", stdout.String())
	}
	if strings.Count(stdout.String(), "heroku[router]") != 4 {
		t.Errorf("want 4 router lines:\n%s", stdout.String())
	}
}

// routerProcess is a `skiff router` the test started.
type routerProcess struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	logs   chan string
}

// startRouterProcess starts `skiff router` with args and env (besides
// PATH); it is stopped at the test's cleanup.
func startRouterProcess(t *testing.T, env []string, args ...string) *routerProcess {
	t.Helper()
	rp := &routerProcess{logs: make(chan string, 100)}
	rp.cmd = exec.Command(skiffBinary(t), append([]string{"router"}, args...)...)
	rp.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stderr, _ := rp.cmd.StderrPipe()
	rp.cmd.Stdout = &rp.stdout
	if err := rp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rp.cmd.Process.Signal(syscall.SIGTERM)
		rp.cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("skiff router: " + sc.Text())
			select {
			case rp.logs <- sc.Text():
			default:
			}
		}
	}()
	return rp
}

// waitLog waits for a line of the router's log matching re and returns
// its submatches.
func (rp *routerProcess) waitLog(t *testing.T, re string) []string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-rp.logs:
			if m := regexp.MustCompile(re).FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("skiff router logged no line matching %s", re)
		}
	}
}

// startAPIRouter starts `skiff router --api` against s with token and
// returns its plain HTTP and HTTPS addresses.
func startAPIRouter(t *testing.T, s *server, token string) (rp *routerProcess, httpAddr, httpsAddr string) {
	t.Helper()
	rp = startRouterProcess(t, []string{"SKIFF_ROUTER_TOKEN=" + token},
		"--api", s.URL, "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0")
	rp.waitLog(t, `msg="routing table reloaded" on=start`)
	httpAddr = rp.waitLog(t, `msg="router listening" addr=(\S+)`)[1]
	httpsAddr = rp.waitLog(t, `msg="router listening" addr=(\S+)`)[1]
	return rp, httpAddr, httpsAddr
}

// TestSkiffRouterFedByAPI runs `skiff router --api` against a server: the
// table, its changes (custom domains, maintenance) and the platform's
// certificate come from the API, router lines go to the app's log, and
// only an admin's token is accepted.
func TestSkiffRouterFedByAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "shop")

	bob := s.createAccount(t, "bob@example.com", "")
	refused := startRouterProcess(t, []string{"SKIFF_ROUTER_TOKEN=" + bob}, "--api", s.URL, "--http-addr", "127.0.0.1:0")
	refused.waitLog(t, `no routing table yet.*403 Forbidden: Only an admin may run a router`)

	_, addr, tlsAddr := startAPIRouter(t, s, s.AdminToken)
	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// waitFor polls until host answers with status and a body holding want:
	// changes reach the router by the API's long poll.
	waitFor := func(host string, status int, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(host, "/")
			if code == status && strings.Contains(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d %.200q, want %d with %q", host, code, body, status, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("shop.localhost", 503, "Application error") // H14: the app is in the table, without dynos
	if code, body := get("nope.localhost", "/"); code != 404 || !strings.Contains(body, "nothing here") {
		t.Errorf("unknown host: %d %.100q", code, body)
	}
	// An ACME challenge the server does not know goes through to the app.
	if code, _ := get("shop.localhost", "/.well-known/acme-challenge/unknown-token"); code != 503 {
		t.Errorf("unknown ACME token: %d, want the app's 503", code)
	}

	h.ok(t, "domains:add", "www.shop.example", "-a", "shop")
	waitFor("www.shop.example", 503, "Application error")
	h.ok(t, "maintenance:on", "-a", "shop")
	waitFor("shop.localhost", 503, "Offline for maintenance")
	h.ok(t, "maintenance:off", "-a", "shop")
	waitFor("shop.localhost", 503, "Application error")

	// HTTPS with the platform's certificate, from the server's local CA.
	caPEM, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "shop.localhost"})
	if err != nil {
		t.Fatalf("HTTPS with the platform's certificate: %v", err)
	}
	conn.Close()

	// The router's lines reach the app's log through the API.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := h.ok(t, "logs", "-a", "shop", "-n", "50", "--source", "heroku", "--dyno", "router")
		if regexp.MustCompile(`heroku\[router\]: at=info code=H80 desc="Maintenance mode" method=GET path="/" host=shop\.localhost`).MatchString(out.stream("stdout")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no H80 router line in the app's log:\n%s", out.stream("stdout"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A router waiting for changes does not hold up the server's shutdown.
	if err := s.stop(); err != nil {
		t.Errorf("server stop with a router attached: %v\n%s", err, s.stderr.String())
	}
}
