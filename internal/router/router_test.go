package router

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logSink collects router log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
	seen  chan struct{}
}

func (s *logSink) log(appID, app, line string) {
	s.mu.Lock()
	s.lines = append(s.lines, app+" "+line)
	s.mu.Unlock()
	select {
	case s.seen <- struct{}{}:
	default:
	}
}

// wait returns the first line containing want, waiting for it to arrive.
func (s *logSink) wait(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, l := range s.lines {
			if strings.Contains(l, want) {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		select {
		case <-s.seen:
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("no log line with %q; have:\n%s", want, strings.Join(s.lines, "\n"))
	return ""
}

type harness struct {
	r    *Router
	addr string // plain HTTP
	logs *logSink
}

// fastConfig is a Config with every timer in milliseconds.
func fastConfig() Config {
	return Config{
		ConnectTimeout: 200 * time.Millisecond,
		Quarantine:     time.Second,
		FirstByte:      300 * time.Millisecond,
		Idle:           300 * time.Millisecond,
		BootWait:       300 * time.Millisecond,
		HeadTimeout:    300 * time.Millisecond,
		KeepAlive:      2 * time.Second,
		PoolIdle:       2 * time.Second,
	}
}

func start(t *testing.T, cfg Config, routes ...Route) *harness {
	t.Helper()
	logs := &logSink{seen: make(chan struct{}, 1)}
	if cfg.Log == nil {
		cfg.Log = logs.log
	}
	r := New(cfg)
	r.SetRoutes(routes)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(l)
	t.Cleanup(func() { r.Close() })
	return &harness{r: r, addr: l.Addr().String(), logs: logs}
}

// backend starts an HTTP server for a test dyno.
func dyno(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// rawBackend accepts connections and hands each to fn.
func rawBackend(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return l.Addr().String()
}

// readHead reads a raw request head from a backend connection.
func readHead(br *bufio.Reader) string {
	var b strings.Builder
	for {
		l, err := br.ReadString('\n')
		b.WriteString(l)
		if err != nil || l == "\r\n" {
			return b.String()
		}
	}
}

func app(name string, addrs ...string) Route {
	r := Route{AppID: "id-" + name, App: name, Hosts: []string{name + ".skiff.test"}}
	for i, a := range addrs {
		r.Backends = append(r.Backends, Backend{Name: fmt.Sprintf("web.%d", i+1), Addr: a})
	}
	return r
}

// raw sends a raw request and returns the whole response (until close or
// a short read timeout).
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(req))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// send writes a raw request on a new connection and reads the response
// head; the connection stays open for the test.
func send(t *testing.T, addr, req string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, req)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

func get(t *testing.T, h *harness, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+h.addr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func TestRouting(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a "+r.URL.RequestURI()) })
	b := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	ra := app("alpha", a)
	ra.Hosts = append(ra.Hosts, "www.Example.COM", "*.wild.example.com")
	rb := app("beta", b)
	rb.Hosts = append(rb.Hosts, "exact.wild.example.com")
	h := start(t, fastConfig(), ra, rb)
	for _, tc := range []struct {
		host, path, want string
		status           int
	}{
		{"alpha.skiff.test", "/x?y=1", "a /x?y=1", 200},
		{"ALPHA.skiff.test:8080", "/", "a /", 200},
		{"www.example.com.", "/", "a /", 200},
		{"beta.skiff.test", "/", "b", 200},
		{"nope.skiff.test", "/", "There's nothing here", 404},
		{"A.Wild.example.com:80", "/", "a /", 200},         // a wildcard domain
		{"exact.wild.example.com", "/", "b", 200},          // an exact one wins
		{"a.b.wild.example.com", "/", "nothing here", 404}, // one label only
		{"wild.example.com", "/", "nothing here", 404},     // not the parent
	} {
		res, body := get(t, h, tc.host, tc.path)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, res.StatusCode, body, tc.status, tc.want)
		}
	}
	line := h.logs.wait(t, `path="/x?y=1"`)
	re := regexp.MustCompile(`^alpha at=info method=GET path="/x\?y=1" host=alpha\.skiff\.test request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=http$`)
	if !re.MatchString(line) {
		t.Errorf("log line %q", line)
	}
}

func TestRequestHeaders(t *testing.T) {
	seen := make(chan http.Header, 10)
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		hd := r.Header.Clone()
		hd.Set("X-Proto", r.Proto)
		seen <- hd
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "s")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Connection", "keep-alive")
	})
	h := start(t, fastConfig(), app("alpha", a))
	before := time.Now().UnixMilli()
	validID := "abcdefghij0123456789+/=-"
	res, _ := get(t, h, "alpha.skiff.test", "/", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-Proto", "https",
		"X-Forwarded-Port", "443", "X-Request-Start", "1", "X-Request-Id", validID, "Via", "1.0 upstream",
		"Connection", "X-Hop", "X-Hop", "h", "Te", "trailers", "Proxy-Connection", "x", "Keep-Alive", "1", "X-Keep", "k")
	hd := <-seen
	after := time.Now().UnixMilli()
	for name, want := range map[string]string{
		"X-Forwarded-For":   "1.2.3.4, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Port":  strings.Split(h.addr, ":")[1],
		"X-Request-Id":      validID,
		"Via":               "1.0 upstream, 1.1 heroku-router",
		"X-Keep":            "k",
		"X-Hop":             "",
		"Te":                "",
		"Proxy-Connection":  "",
		"Keep-Alive":        "",
		"X-Proto":           "HTTP/1.1",
	} {
		if got := strings.Join(hd.Values(name), ","); got != want {
			t.Errorf("dyno got %s %q, want %q", name, got, want)
		}
	}
	var ms int64
	fmt.Sscan(hd.Get("X-Request-Start"), &ms)
	if ms < before || ms > after {
		t.Errorf("X-Request-Start %d not within [%d, %d]", ms, before, after)
	}
	if res.Header.Get("Via") != "1.1 heroku-router" || res.Header.Get("Server") != "Heroku" {
		t.Errorf("response Via %q Server %q", res.Header.Get("Via"), res.Header.Get("Server"))
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection"} {
		if res.Header.Get(k) != "" {
			t.Errorf("hop-by-hop response header %s reached the client", k)
		}
	}
	// Invalid request ids are replaced by a generated UUID.
	for _, bad := range []string{"short", strings.Repeat("a", 201), "has spaces in it 1234567890", "bad_char_0123456789abc"} {
		get(t, h, "alpha.skiff.test", "/", "X-Request-Id", bad)
		got := (<-seen).Get("X-Request-Id")
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got) {
			t.Errorf("request id %q replaced by %q, want a UUID v4", bad, got)
		}
	}
}

// TestHCodes drives every router error path and checks status, page and
// log line.
func TestHCodes(t *testing.T) {
	slow := dyno(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Second) })
	closer := rawBackend(t, func(c net.Conn) { readHead(bufio.NewReader(c)) })
	canned := func(resp string, hold time.Duration) string {
		return rawBackend(t, func(c net.Conn) {
			readHead(bufio.NewReader(c))
			io.WriteString(c, resp)
			time.Sleep(hold)
		})
	}
	badStatus := canned("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0)
	badLength := canned("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0)
	bigCookie := canned("HTTP/1.1 200 OK\r\nSet-Cookie: a="+strings.Repeat("x", 9000)+"\r\nContent-Length: 0\r\n\r\n", 0)
	partial := canned("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0)
	idle := canned("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 2*time.Second)
	refused := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		a := l.Addr().String()
		l.Close()
		return a
	}()
	crashed := app("crashed")
	crashed.Crashed = 1
	starting := app("starting")
	starting.Starting = 1
	maint := app("maint", slow)
	maint.Maintenance = true
	h := start(t, fastConfig(), app("none"), crashed, starting, maint, app("slow", slow), app("closer", closer),
		app("badstatus", badStatus), app("badlength", badLength), app("bigcookie", bigCookie), app("partial", partial),
		app("idle", idle), app("refused", refused))
	for _, tc := range []struct {
		app, code, status, page string
	}{
		{"none", `at=error code=H14 desc="No web processes running"`, "503", "Application error"},
		{"crashed", `at=error code=H10 desc="App crashed"`, "503", "Application error"},
		{"starting", `at=error code=H20 desc="App boot timeout"`, "503", "Application error"},
		{"maint", `at=info code=H80 desc="Maintenance mode"`, "503", "Offline for maintenance"},
		{"slow", `at=error code=H12 desc="Request timeout"`, "503", "Application error"},
		{"closer", `at=error code=H13 desc="Connection closed without response"`, "503", "Application error"},
		{"badstatus", `at=error code=H17 desc="Poorly formatted HTTP response"`, "503", "Application error"},
		{"badlength", `at=error code=H25 desc="HTTP restriction" cause="invalid content length"`, "502", "Application error"},
		{"bigcookie", `at=error code=H25 desc="HTTP restriction" cause="oversized cookie"`, "502", "Application error"},
		{"partial", `at=error code=H18 desc="Server Request Interrupted" sock=backend`, "200", "0123456789"},
		{"idle", `at=error code=H15 desc="Idle connection"`, "200", "0123456789"},
		{"refused", `at=error code=H21 desc="Backend connection refused"`, "503", "Application error"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			resp := raw(t, h.addr, "GET /p HTTP/1.1\r\nHost: "+tc.app+".skiff.test\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(resp, "HTTP/1.1 "+tc.status+" ") || !strings.Contains(resp, tc.page) {
				t.Errorf("response %.300q, want %s with %q", resp, tc.status, tc.page)
			}
			line := h.logs.wait(t, tc.app+" "+tc.code)
			if !strings.Contains(line, `method=GET path="/p" host=`+tc.app+".skiff.test") {
				t.Errorf("log line %q", line)
			}
		})
	}
	if line := h.logs.wait(t, "partial at=error code=H18"); !strings.Contains(line, "status=503 bytes=10 ") {
		t.Errorf("H18 line %q, want status=503 and the bytes sent", line)
	}
	line := h.logs.wait(t, "slow at=error code=H12")
	if !strings.Contains(line, "service=300ms status=503 bytes=0") {
		t.Errorf("H12 line %q, want service=FirstByte", line)
	}
}

// TestBacklog: more than 200 requests in flight per up dyno is H11.
func TestBacklog(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(200)
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
	})
	cfg := fastConfig()
	cfg.FirstByte = 10 * time.Second
	h := start(t, cfg, app("alpha", a))
	var done sync.WaitGroup
	for i := 0; i < 200; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			raw(t, h.addr, "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\nConnection: close\r\n\r\n")
		}()
	}
	arrived.Wait()
	resp := raw(t, h.addr, "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\nConnection: close\r\n\r\n")
	close(release)
	done.Wait()
	if !strings.HasPrefix(resp, "HTTP/1.1 503 ") {
		t.Errorf("request 201: %.100q", resp)
	}
	h.logs.wait(t, `at=error code=H11 desc="Backlog too deep"`)
}

// TestConnectFailures: refused dynos are quarantined and the request is
// retried on another; all dynos quarantined ends in H99.
func TestConnectFailures(t *testing.T) {
	good := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	refused := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		a := l.Addr().String()
		l.Close()
		return a
	}()
	cfg := fastConfig()
	cfg.Quarantine = 5 * time.Second
	h := start(t, cfg, app("mixed", refused, good), app("dead", refused))
	for i := 0; i < 20; i++ {
		if res, body := get(t, h, "mixed.skiff.test", "/"); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if res, _ := get(t, h, "dead.skiff.test", "/"); res.StatusCode != 503 {
		t.Fatalf("first request to a dead app: %d", res.StatusCode)
	}
	h.logs.wait(t, "dead at=error code=H21")
	if res, _ := get(t, h, "dead.skiff.test", "/"); res.StatusCode != 503 {
		t.Fatalf("second request: %d", res.StatusCode)
	}
	h.logs.wait(t, "dead at=error code=H99")
}

// TestConnectTimeout: a dyno that never completes the handshake is H19
// with connect= the timeout. A listening socket with a full accept queue
// drops SYNs, so connections to it hang.
func TestConnectTimeout(t *testing.T) {
	addr := fullListener(t)
	h := start(t, fastConfig(), app("hang", addr))
	resp := raw(t, h.addr, "GET / HTTP/1.1\r\nHost: hang.skiff.test\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 503 ") {
		t.Fatalf("response %q", resp)
	}
	line := h.logs.wait(t, "code=H19")
	if !strings.Contains(line, "connect=201ms") {
		t.Errorf("H19 line %q", line)
	}
}

// fullListener returns the address of a socket listening with a backlog
// of 0 whose queue is already full.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full: SYNs are dropped now
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("could not fill the accept queue")
	return ""
}

func TestClientErrors(t *testing.T) {
	got := make(chan int, 10)
	sink := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- int(n)
		w.Write(bytes.Repeat([]byte("z"), 4<<20))
	})
	h := start(t, fastConfig(), app("sink", sink))

	// H28: the client stops sending its body.
	c, _ := net.Dial("tcp", h.addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: sink.skiff.test\r\nContent-Length: 10\r\n\r\n12345")
	h.logs.wait(t, `sink at=warning code=H28 desc="Client Connection Idle" sock=client`)
	c.Close()

	// H27: the client hangs up while the response is sent.
	c, _ = net.Dial("tcp", h.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: sink.skiff.test\r\n\r\n")
	<-got
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	h.logs.wait(t, `sink at=warning code=H27 desc="Client Request Interrupted" sock=client`)

	// H26: a bad chunk, and an unsupported expectation.
	resp := raw(t, h.addr, "POST / HTTP/1.1\r\nHost: sink.skiff.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 400 ") {
		t.Errorf("bad chunk: %.100q", resp)
	}
	h.logs.wait(t, `code=H26 desc="Request Error" cause="bad chunk"`)
	resp = raw(t, h.addr, "POST / HTTP/1.1\r\nHost: sink.skiff.test\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx")
	if !strings.HasPrefix(resp, "HTTP/1.1 417 ") {
		t.Errorf("bad expectation: %.100q", resp)
	}
	h.logs.wait(t, `code=H26 desc="Request Error" cause="unsupported expect header value"`)
}

// TestSmuggling sends ambiguous or malformed requests over raw TCP: each
// gets 400 and nothing reaches the dyno.
func TestSmuggling(t *testing.T) {
	hits := make(chan string, 100)
	a := rawBackend(t, func(c net.Conn) {
		hits <- readHead(bufio.NewReader(c))
	})
	h := start(t, fastConfig(), app("alpha", a))
	host := "Host: alpha.skiff.test\r\n"
	for name, req := range map[string]string{
		"CL and TE":          "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE and CL":          "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
		"conflicting CL":     "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"CL list":            "POST / HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\nx",
		"signed CL":          "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\nx",
		"TE twice":           "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE gzip":            "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"TE xchunked":        "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
		"TE on HTTP/1.0":     "POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"space before colon": "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		"obs-fold":           "GET / HTTP/1.1\r\n" + host + "X-A: b\r\n c\r\n\r\n",
		"obs-fold TE":        "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		"bare LF":            "GET / HTTP/1.1\n" + host + "\n",
		"bare LF header":     "GET / HTTP/1.1\r\nHost: alpha.skiff.test\nX: y\r\n\r\n",
		"two hosts":          "GET / HTTP/1.1\r\n" + host + host + "\r\n",
		"no host":            "GET / HTTP/1.1\r\n\r\n",
		"double space":       "GET  / HTTP/1.1\r\n" + host + "\r\n",
		"bad version":        "GET / HTTP/2.0\r\n" + host + "\r\n",
		"CONNECT":            "CONNECT alpha.skiff.test:443 HTTP/1.1\r\n" + host + "\r\n",
		"NUL in header":      "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n",
		"long request line":  "GET /" + strings.Repeat("a", 8200) + " HTTP/1.1\r\n" + host + "\r\n",
		"long header line":   "GET / HTTP/1.1\r\n" + host + "X: " + strings.Repeat("a", 8200) + "\r\n\r\n",
		"long header name":   "GET / HTTP/1.1\r\n" + host + strings.Repeat("a", 1001) + ": b\r\n\r\n",
		"too many headers":   "GET / HTTP/1.1\r\n" + host + strings.Repeat("X: y\r\n", 1001) + "\r\n",
		"long method":        strings.Repeat("G", 128) + " / HTTP/1.1\r\n" + host + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp := raw(t, h.addr, req)
			if !strings.HasPrefix(resp, "HTTP/1.1 400 ") {
				t.Errorf("response %.200q, want 400", resp)
			}
		})
	}
	select {
	case head := <-hits:
		t.Errorf("a refused request reached the dyno: %q", head)
	case <-time.After(50 * time.Millisecond):
	}
	// Limits at the edge are accepted.
	go func() { <-hits }()
	_ = raw
}

func TestSlowloris(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := start(t, fastConfig(), app("alpha", a))
	var slow []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha")
		slow = append(slow, c)
	}
	// Meanwhile other clients are served.
	for i := 0; i < 20; i++ {
		if res, body := get(t, h, "alpha.skiff.test", "/"); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
	}
	// And the slow ones are cut off after HeadTimeout even if they trickle.
	for _, c := range slow {
		io.WriteString(c, ".")
	}
	for _, c := range slow {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("slow connection not closed by the router: %v", err)
		}
	}
}

func TestKeepAliveAndPool(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	h := start(t, fastConfig(), app("alpha", a))
	c, _ := net.Dial("tcp", h.addr)
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 50; i++ {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if len(conns) != 1 {
		t.Errorf("50 sequential requests used %d dyno connections, want 1", len(conns))
	}
	// Pipelined requests are answered in order on one connection.
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n")
	for i := 0; i < 2; i++ {
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatal(res, err)
		}
		io.Copy(io.Discard, res.Body)
	}
	// HTTP/1.0 without keep-alive is closed after the response.
	resp := raw(t, h.addr, "GET / HTTP/1.0\r\nHost: alpha.skiff.test\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK") || !strings.HasSuffix(resp, "ok") {
		t.Errorf("HTTP/1.0: %q", resp)
	}
}

func TestStreaming(t *testing.T) {
	step := make(chan struct{})
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			http.NewResponseController(w).EnableFullDuplex()
			br := bufio.NewReader(r.Body)
			l, _ := br.ReadString('\n')
			io.WriteString(w, "got "+l)
			w.(http.Flusher).Flush()
			rest, _ := io.ReadAll(br)
			io.WriteString(w, "then "+string(rest))
			return
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-step
		io.WriteString(w, "second\n")
	})
	h := start(t, fastConfig(), app("alpha", a))
	// Response streaming: the first part arrives before the dyno writes the second.
	_, res := send(t, h.addr, "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n")
	rb := bufio.NewReader(res.Body)
	if l, _ := rb.ReadString('\n'); l != "first\n" {
		t.Fatalf("first part %q", l)
	}
	close(step)
	if l, _ := rb.ReadString('\n'); l != "second\n" {
		t.Fatalf("second part %q", l)
	}
	// Request streaming: the dyno answers the first line before the
	// client sends the rest.
	c2, res2 := send(t, h.addr, "POST / HTTP/1.1\r\nHost: alpha.skiff.test\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n")
	rb2 := bufio.NewReader(res2.Body)
	if l, _ := rb2.ReadString('\n'); l != "got hello\n" {
		t.Fatalf("streamed request: %q", l)
	}
	io.WriteString(c2, "5\r\nworld\r\n0\r\n\r\n")
	if rest, _ := io.ReadAll(rb2); string(rest) != "then world" {
		t.Fatalf("rest %q", rest)
	}
}

func TestLargeBodies(t *testing.T) {
	const size = 32 << 20
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			s := sha256.New()
			n, _ := io.Copy(s, r.Body)
			fmt.Fprintf(w, "%d %x", n, s.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, io.LimitReader(zeros{}, size))
	})
	// 32 MB each way under -race on a busy machine may pause longer than
	// fastConfig's timeouts: this test is about the bytes, not timeouts.
	cfg := fastConfig()
	cfg.Idle, cfg.FirstByte = 10*time.Second, 10*time.Second
	h := start(t, cfg, app("alpha", a))
	res, body := get(t, h, "alpha.skiff.test", "/")
	if res.StatusCode != 200 || len(body) != size {
		t.Fatalf("download: %d, %d bytes", res.StatusCode, len(body))
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	want := fmt.Sprintf("%d %x", len(payload), sha256.Sum256(payload))
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(payload)
		if chunked {
			rd = io.MultiReader(rd) // unknown length: sent chunked
		}
		req, _ := http.NewRequest("POST", "http://"+h.addr+"/", rd)
		req.Host = "alpha.skiff.test"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(got) != want {
			t.Errorf("upload (chunked %v): %q, want %q", chunked, got, want)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestExpectContinue(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "expect=%q body=%q", r.Header.Get("Expect"), b)
	})
	h := start(t, fastConfig(), app("alpha", a))
	c, _ := net.Dial("tcp", h.addr)
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: alpha.skiff.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if l, _ := br.ReadString('\n'); l != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q", l)
	}
	br.ReadString('\n')
	io.WriteString(c, "data")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != `expect="" body="data"` {
		t.Errorf("dyno saw %s", b)
	}
}

func TestWebSocket(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
			http.Error(w, "not an upgrade", 400)
			return
		}
		c, brw, _ := w.(http.Hijacker).Hijack()
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, brw) // echo
	})
	h := start(t, fastConfig(), app("alpha", a))
	c, _ := net.Dial("tcp", h.addr)
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: alpha.skiff.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 || res.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("%v %v", res, err)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		io.WriteString(c, msg)
		if l, _ := br.ReadString('\n'); l != msg {
			t.Fatalf("echo %q, want %q", l, msg)
		}
	}
	c.Close()
	line := h.logs.wait(t, "status=101")
	if !strings.Contains(line, `path="/ws"`) {
		t.Errorf("line %q", line)
	}
}

func TestMaintenanceAndTableSwap(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") })
	b := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	h := start(t, fastConfig(), app("alpha", a))
	if _, body := get(t, h, "alpha.skiff.test", "/"); body != "a" {
		t.Fatal(body)
	}
	m := app("alpha", a)
	m.Maintenance = true
	h.r.SetRoutes([]Route{m})
	if res, body := get(t, h, "alpha.skiff.test", "/"); res.StatusCode != 503 || !strings.Contains(body, "maintenance") {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	h.r.SetRoutes([]Route{app("alpha", b)})
	if _, body := get(t, h, "alpha.skiff.test", "/"); body != "b" {
		t.Fatal(body)
	}
	// A request held for a booting dyno goes through once it is up.
	s := app("alpha")
	s.Starting = 1
	cfg := fastConfig()
	cfg.BootWait = 5 * time.Second
	h2 := start(t, cfg, s)
	go func() {
		time.Sleep(50 * time.Millisecond)
		h2.r.SetRoutes([]Route{app("alpha", a)})
	}()
	if res, body := get(t, h2, "alpha.skiff.test", "/"); res.StatusCode != 200 || body != "a" {
		t.Fatalf("held request: %d %q", res.StatusCode, body)
	}
}

func TestBalance(t *testing.T) {
	for _, mode := range []string{BalanceRandom, BalanceP2C} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			count := map[string]int{}
			var addrs []string
			for i := 0; i < 4; i++ {
				name := fmt.Sprint(i)
				addrs = append(addrs, dyno(t, func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					count[name]++
					mu.Unlock()
				}))
			}
			rt := app("alpha", addrs...)
			rt.Balance = mode
			h := start(t, fastConfig(), rt)
			for i := 0; i < 200; i++ {
				get(t, h, "alpha.skiff.test", "/")
			}
			if len(count) != 4 {
				t.Errorf("requests reached %d of 4 dynos: %v", len(count), count)
			}
		})
	}
}

func TestHTTP2AndTLS(t *testing.T) {
	seen := make(chan string, 4)
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Proto + " " + r.Header.Get("X-Forwarded-Proto") + " " + r.Header.Get("X-Forwarded-Port") + " " + r.Header.Get("Via")
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "hello "+string(b))
	})
	cert, pool := testCert(t, "*.skiff.test")
	cfg := fastConfig()
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	h := start(t, cfg, app("alpha", a))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.r.ServeTLS(l)
	dial := func(network, _ string) (net.Conn, error) { return net.Dial(network, l.Addr().String()) }
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{Dial: dial, TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		cl := &http.Client{Transport: tr}
		res, err := cl.Post("https://alpha.skiff.test/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantProto, wantVia := 1, "1.1 heroku-router"
		if h2 {
			wantProto, wantVia = 2, "2.0 heroku-router"
		}
		if res.ProtoMajor != wantProto || string(b) != "hello body" {
			t.Errorf("h2=%v: %s %q", h2, res.Proto, b)
		}
		if got, want := <-seen, "HTTP/1.1 https "+strconv.Itoa(l.Addr().(*net.TCPAddr).Port)+" "+wantVia; got != want {
			t.Errorf("dyno saw %q, want %q", got, want)
		}
		tr.CloseIdleConnections()
	}
	// TLS 1.1 is refused.
	_, err = tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "alpha.skiff.test", MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}
}

func TestLogSinkNeverBlocks(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {})
	block := make(chan struct{})
	cfg := fastConfig()
	cfg.LogQueue = 4
	cfg.Log = func(appID, app, line string) { <-block }
	h := start(t, cfg, app("alpha", a))
	for i := 0; i < 50; i++ {
		get(t, h, "alpha.skiff.test", "/")
	}
	if d := h.r.DroppedLogLines(); d < 40 {
		t.Errorf("dropped %d lines, want ≥ 40", d)
	}
	close(block)
}

func TestMetrics(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/err" {
			w.WriteHeader(500)
		}
	})
	h := start(t, fastConfig(), app("alpha", a))
	for i := 0; i < 10; i++ {
		get(t, h, "alpha.skiff.test", "/")
	}
	get(t, h, "alpha.skiff.test", "/err")
	get(t, h, "nowhere.skiff.test", "/")
	var b bytes.Buffer
	h.r.WriteMetrics(&b)
	for _, want := range []string{
		`skiff_router_requests_total{app="alpha",class="2xx"} 10`,
		`skiff_router_requests_total{app="alpha",class="5xx"} 1`,
		`skiff_router_response_seconds{app="alpha",quantile="0.99"} `,
		`skiff_router_response_seconds_count{app="alpha"} 11`,
		`skiff_router_unknown_host_total 1`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	st := h.r.Stats()
	if len(st) != 1 || st[0].Requests != 11 || st[0].Status5xx != 1 || st[0].P50 <= 0 || st[0].P99 < st[0].P50 {
		t.Errorf("stats %+v", st)
	}
}

func TestACMEChallenge(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") })
	cfg := fastConfig()
	cfg.ACME = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/unknown") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "token for "+r.Host+r.URL.Path)
	})
	h := start(t, cfg, app("alpha", a))
	for _, tc := range []struct{ host, path, want string }{
		{"custom.example.org", "/.well-known/acme-challenge/abc", "token for custom.example.org/.well-known/acme-challenge/abc"},
		{"alpha.skiff.test", "/", "app"},
		// A token the handler does not know: the app answers (its own ACME client).
		{"alpha.skiff.test", "/.well-known/acme-challenge/unknown", "app"},
	} {
		if _, body := get(t, h, tc.host, tc.path); body != tc.want {
			t.Errorf("%s%s: %q", tc.host, tc.path, body)
		}
	}
}

// An app's ERROR_PAGE_URL and MAINTENANCE_PAGE_URL replace the router's
// pages (in an iframe, with the router's status); anything but an
// absolute http(s) URL is ignored, and the URL cannot break out of the
// attribute it is written in.
func TestCustomPages(t *testing.T) {
	none := app("none")
	none.ErrorPage = "https://pages.example/error.html?a=1&b=2"
	maint := app("maint")
	maint.Maintenance = true
	maint.ErrorPage = "https://pages.example/error.html"
	maint.MaintenancePage = "https://pages.example/maint.html"
	bad := app("bad")
	bad.ErrorPage = "javascript:alert(1)"
	quote := app("quote")
	quote.ErrorPage = `https://pages.example/"><script>x</script>`
	h := start(t, fastConfig(), none, maint, bad, quote)
	for _, tc := range []struct {
		app, status, want, not string
	}{
		{"none", "503", `<iframe src="https://pages.example/error.html?a=1&amp;b=2"`, "Application error"},
		{"maint", "503", `<iframe src="https://pages.example/maint.html"`, "error.html"},
		{"bad", "503", "Application error", "iframe"},
		{"quote", "503", `<iframe src="https://pages.example/%22%3E%3Cscript%3Ex%3C/script%3E"`, "<script>"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			res, body := get(t, h, tc.app+".skiff.test", "/")
			if want, _ := strconv.Atoi(tc.status); res.StatusCode != want || !strings.Contains(body, tc.want) || strings.Contains(body, tc.not) {
				t.Errorf("%d %q, want %s with %q and without %q", res.StatusCode, body, tc.status, tc.want, tc.not)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
