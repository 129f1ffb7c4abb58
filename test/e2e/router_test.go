package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

// routedApp answers with its dyno name, so the test sees which dyno served.
const routedApp = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", os.Getenv("DYNO"), r.Header.Get("X-Forwarded-Proto"), r.Proto)
	})
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`

// load sends requests through the router from a few clients until stop,
// counting those that did not get a 200 from a dyno.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	dynos      map[string]int
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, url, host string, clients int) *load {
	t.Helper()
	l := &load{dynos: map[string]int{}, stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				res, err := c.Do(req)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					l.fail(fmt.Sprintf("%d %.80q", res.StatusCode, b))
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.dynos[strings.Fields(string(b))[0]]++
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) fail(s string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, s)
	}
	l.mu.Unlock()
}

func (l *load) end(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if f := l.failed.Load(); f > 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d requests failed, %d succeeded; first errors: %q", what, f, l.ok.Load(), l.errs)
	}
	t.Logf("%s: %d requests, by dyno %v", what, l.ok.Load(), l.dynos)
}

func TestRouterWithDynos(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	img := importImageOf(t, dataDir, routedApp)
	const bridge, subnet = "skro1", "10.213.252.0/24"
	s := startDynoServer(t, dataDir, true, bridge, subnet)
	if s.RouterURL == "" || s.RouterTLSURL == "" {
		t.Fatalf("no router URLs in the banner:\n%s", s.stdout.String())
	}
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "routed")
	host := "routed.localhost"

	// Before any dyno: H14; an unknown host: the no-such-app page.
	for _, tc := range []struct {
		host   string
		status int
		body   string
	}{{host, 503, "Application error"}, {"nope.localhost", 404, "nothing here"}} {
		req, _ := http.NewRequest("GET", s.RouterURL+"/", nil)
		req.Host = tc.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !bytes.Contains(b, []byte(tc.body)) {
			t.Errorf("%s: %d %.100q", tc.host, res.StatusCode, b)
		}
	}

	// Every request leaves a router line in the app's log.
	out := h.ok(t, "logs", "-a", "routed", "-n", "10", "--source", "heroku", "--dyno", "router")
	wantMatch(t, out, "stdout", `(?m)^\S+ heroku\[router\]: at=error code=H14 desc="No web processes running" method=GET path="/" host=routed\.localhost request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno= connect= service= status=503 bytes=0 protocol=http$`)

	// The app's own error and maintenance pages, from its config vars,
	// replace the router's: shown in an iframe, with the router's 503.
	h.ok(t, "config:set", "ERROR_PAGE_URL=https://pages.example/error.html",
		"MAINTENANCE_PAGE_URL=https://pages.example/maint.html", "-a", "routed")
	pollRouter(t, s.RouterURL, host, 503, `<iframe src="https://pages.example/error.html"`)
	h.ok(t, "maintenance:on", "-a", "routed")
	pollRouter(t, s.RouterURL, host, 503, `<iframe src="https://pages.example/maint.html"`)
	h.ok(t, "maintenance:off", "-a", "routed")
	h.ok(t, "config:unset", "ERROR_PAGE_URL", "MAINTENANCE_PAGE_URL", "-a", "routed")

	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/routed/formation",
		map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": img}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	waitPS(t, h, "routed", "web.1=up")

	// HTTPS with the local CA's certificate, HTTP/2 to the client.
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "pki", pki.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	port := s.RouterTLSURL[strings.LastIndex(s.RouterTLSURL, ":")+1:]
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
		DialTLSContext: nil}
	tr.TLSClientConfig.ServerName = host
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+"/", nil)
	req.Host = host
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(b) != "web.1 https HTTP/1.1" {
		t.Errorf("HTTPS: %s %q", res.Proto, b)
	}

	// A router apart from the server, fed by its API, reaches the dyno too.
	_, apiRouter, _ := startAPIRouter(t, s, s.AdminToken)
	req, _ = http.NewRequest("GET", "http://"+apiRouter+"/", nil)
	req.Host = host
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "web.1 http HTTP/1.1" {
		t.Errorf("through skiff router --api: %d %q", res.StatusCode, b)
	}

	// Scale 1 → 4 under load: no request fails, all four serve.
	l := startLoad(t, s.RouterURL+"/", host, 4)
	time.Sleep(300 * time.Millisecond)
	h.ok(t, "ps:scale", "web=4", "-a", "routed")
	waitPS(t, h, "routed", "web.1=up web.2=up web.3=up web.4=up")
	time.Sleep(500 * time.Millisecond)
	l.end(t, "scale 1→4")
	if len(l.dynos) != 4 {
		t.Errorf("requests reached %v, want all four dynos", l.dynos)
	}

	// A dyno killed mid-load: the others take its requests.
	l = startLoad(t, s.RouterURL+"/", host, 4)
	time.Sleep(300 * time.Millisecond)
	killDyno(t, bridge, "web.2")
	time.Sleep(time.Second)
	l.end(t, "web.2 killed")
	routerErrors(t, h, "routed")

	// Scale down under load.
	l = startLoad(t, s.RouterURL+"/", host, 4)
	h.ok(t, "ps:scale", "web=2", "-a", "routed")
	waitPS(t, h, "routed", "web.1=up web.2=up")
	time.Sleep(300 * time.Millisecond)
	l.end(t, "scale 4→2")

	// Preboot: a release swaps the dynos under continuous requests.
	h.ok(t, "features:enable", "preboot", "-a", "routed")
	l = startLoad(t, s.RouterURL+"/", host, 4)
	time.Sleep(300 * time.Millisecond)
	var rels []struct{ Version int }
	s.apiJSON(t, s.AdminToken, "GET", "/apps/routed/releases", nil, "", 200, &rels)
	h.ok(t, "config:set", "V=2", "-a", "routed")
	waitRelease(t, s, "routed", rels[len(rels)-1].Version+1, 2)
	time.Sleep(500 * time.Millisecond)
	l.end(t, "preboot release")

	out = h.ok(t, "logs", "-a", "routed", "-n", "100", "--source", "heroku", "--dyno", "router")
	wantMatch(t, out, "stdout", `(?m)^\S+ heroku\[router\]: at=info method=GET path="/" host=routed\.localhost request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.\d connect=\d+ms service=\d+ms status=200 bytes=19 protocol=http$`)
	routerErrors(t, h, "routed")
}

// routerErrors logs the router's error lines when the test failed.
func routerErrors(t *testing.T, h *herokuCLI, app string) {
	t.Helper()
	if !t.Failed() {
		return
	}
	out := h.ok(t, "logs", "-a", app, "-n", "1500", "--source", "heroku")
	for _, line := range strings.Split(out.Stdout, "\n") {
		if strings.Contains(line, "at=error") || !strings.Contains(line, "router") {
			t.Log(line)
		}
	}
}

// waitRelease waits until n web dynos are up on release version v.
func waitRelease(t *testing.T, s *server, app string, v, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var dynos []struct {
			Type, State string
			Release     struct{ Version int }
		}
		s.apiJSON(t, s.AdminToken, "GET", "/apps/"+app+"/dynos", nil, "", 200, &dynos)
		on := 0
		for _, d := range dynos {
			if d.Type == "web" && d.State == "up" && d.Release.Version == v {
				on++
			}
		}
		if on == n && len(dynos) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("web dynos not all up on v%d: %+v", v, dynos)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killDyno sends SIGKILL to the processes of one of this server's dynos
// (found by their environment and by their cgroup, under the server's
// bridge name), as a crash would end them.
func killDyno(t *testing.T, bridge, name string) {
	t.Helper()
	procs, _ := os.ReadDir("/proc")
	killed := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00DYNO="+name+"\x00")) {
			continue
		}
		if cg, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cgroup")); err != nil || !bytes.Contains(cg, []byte("/"+bridge)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no process of dyno %s in cgroup %s", name, bridge)
	}
}
