package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain runs every test twice: with the event loops serving plain
// HTTP/1.1 (the default on Linux), then with a goroutine per connection.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		fmt.Println("--- again without event loops")
		loopsByDefault = false
		code = m.Run()
	}
	os.Exit(code)
}

// loopsOn says whether this run's routers have event loops.
func loopsOn() bool { return loopsByDefault && runtime.GOOS == "linux" }

// roundTrip writes req on c and reads the response (its body as far as it
// comes).
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, readBody(res)
}

// readBody reads a response body as far as it comes.
func readBody(res *http.Response) string {
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// dial opens a client connection to the router.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestLoopKeepAliveAndPipelining(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	h := start(t, fastConfig(), app("alpha", a))
	c, br := dial(t, h.addr)
	for i := range 20 {
		path := fmt.Sprintf("/%d", i)
		if res, body := roundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n"); res.StatusCode != 200 || body != "ok "+path {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	// Three requests in one segment are answered in order.
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\nHEAD /b HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\nGET /c HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n")
	for _, tc := range []struct{ method, body string }{{"GET", "ok /a"}, {"HEAD", ""}, {"GET", "ok /c"}} {
		res, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(b) != tc.body {
			t.Errorf("pipelined %s: %d %q, want %q", tc.method, res.StatusCode, b, tc.body)
		}
	}
	h.logs.wait(t, `path="/c"`)
	if !loopsOn() {
		return
	}
	// The first request found no pooled dyno connection: a goroutine
	// dialled one, and the loop served every other request with it.
	served, handed := h.r.loopCounts()
	if served != 22 || handed != [4]uint64{atParsed: 1} {
		t.Errorf("served by the loop %d, handed over %v; want 22 and one at atParsed", served, handed)
	}
}

// TestLoopDynoOutcomes sends two requests on one client connection: the
// first is answered normally (the dyno connection is then pooled, and the
// loop takes it), the second gets the case's answer on that connection.
func TestLoopDynoOutcomes(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		name   string
		second string        // the dyno's answer to the second request on its connection; "" : it closes
		hold   time.Duration // before the dyno closes the connection
		status int
		body   string
		line   string
		at     int // where the loop hands the request over; -1: it does not
	}{
		{"plain", ok, 0, 200, "ok", "at=info", -1},
		{"head only", "HTTP/1.1 204 No Content\r\n\r\n", 0, 204, "", "at=info", -1},
		{"bad status", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, 503, "Application error", "code=H17", -1},
		{"partial body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0, 200, "0123456789", "code=H18", -1},
		{"idle body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 2 * time.Second, 200, "0123456789", "code=H15", -1},
		{"slow", "", 2 * time.Second, 503, "Application error", "code=H12", atSent},
		{"closed", "", 0, 200, "ok", "at=info", atSent}, // replayed on a new connection
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0, 200, "hi", "at=info", atSent},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3\r\n yo\r\n0\r\n\r\n", 0, 200, "hi yo", "at=info", atResp},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0, 502, "Application error", "code=H25", atResp},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", 0, 200, "all of it", "at=info", atResp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rawBackend(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				readHead(br)
				io.WriteString(c, ok)
				if readHead(br) == "" {
					return
				}
				io.WriteString(c, tc.second)
				time.Sleep(tc.hold)
			})
			h := start(t, fastConfig(), app("alpha", d))
			c, br := dial(t, h.addr)
			if res, body := roundTrip(t, c, br, "GET /1 HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n"); res.StatusCode != 200 || body != "ok" {
				t.Fatalf("first request: %d %q", res.StatusCode, body)
			}
			h.logs.wait(t, `path="/1"`)
			res, body := roundTrip(t, c, br, "GET /2 HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n")
			if res.StatusCode != tc.status || !strings.Contains(body, tc.body) || tc.body == "" && body != "" {
				t.Errorf("second request: %d %q, want %d %q", res.StatusCode, body, tc.status, tc.body)
			}
			if line := h.logs.wait(t, `path="/2"`); !strings.Contains(line, tc.line) {
				t.Errorf("log line %q, want %q", line, tc.line)
			}
			if !loopsOn() {
				return
			}
			_, handed := h.r.loopCounts()
			want := [4]uint64{atParsed: 1} // the first request: no pooled connection yet
			if tc.at >= 0 {
				want[tc.at]++
			}
			if handed != want {
				t.Errorf("handed over %v, want %v", handed, want)
			}
		})
	}
}

// A connection handed to a goroutine comes back to a loop afterwards.
func TestLoopHandBack(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "part one ")
			w.(http.Flusher).Flush()
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	h := start(t, fastConfig(), app("alpha", a))
	c, br := dial(t, h.addr)
	for i, tc := range []struct{ req, body string }{
		{"GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n", "GET "},
		{"POST / HTTP/1.1\r\nHost: alpha.skiff.test\r\nContent-Length: 4\r\n\r\nbody", "POST body"},
		{"GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n", "GET "},
		{"GET /chunked HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n", "part one GET "},
		{"GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n", "GET "},
		{"GET / HTTP/1.1\r\nHost: nosuch.skiff.test\r\n\r\n", "No such app"},
		{"GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n", "GET "},
	} {
		if _, body := roundTrip(t, c, br, tc.req); !strings.Contains(body, tc.body) {
			t.Errorf("request %d: %q, want %q", i, body, tc.body)
		}
	}
	h.logs.wait(t, "/chunked")
	if !loopsOn() {
		return
	}
	served, handed := h.r.loopCounts()
	if served != 3 || handed != [4]uint64{atParsed: 3, atResp: 1} {
		t.Errorf("served by the loop %d, handed over %v; want 3, and 3 at atParsed, 1 at atResp", served, handed)
	}
}

func TestLoopHeadTimeout(t *testing.T) {
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := start(t, fastConfig(), app("alpha", a))
	for _, partial := range []string{"GET / HTTP/1.1\r\nHost: alp", "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n"} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, partial)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || len(b) > 0 {
			t.Errorf("after %q: %q, %v; want the connection closed without an answer", partial, b, err)
		}
	}
	// A head cut by the client's close gets a 400, as on the goroutine path.
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
		t.Errorf("cut head: %q", b)
	}
}

func TestLoopClose(t *testing.T) {
	slow := make(chan struct{})
	a := dyno(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slow)
			time.Sleep(time.Second)
		}
		io.WriteString(w, "ok")
	})
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	fds0, gs0 := fds(), runtime.NumGoroutine()
	cfg := fastConfig()
	cfg.Log = func(appID, app, line string) {}
	r := New(cfg)
	r.SetRoutes([]Route{app("alpha", a)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(l) }()
	var conns []net.Conn
	for i := range 6 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		br := bufio.NewReader(c)
		for range 3 {
			if res, body := roundTrip(t, c, br, "GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n"); res.StatusCode != 200 || body != "ok" {
				t.Fatalf("connection %d: %d %q", i, res.StatusCode, body)
			}
		}
		if i == 5 {
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: alpha.skiff.test\r\n\r\n") // in flight at Close
		}
	}
	<-slow // in flight at the dyno
	r.Close()
	if err := <-served; err != errClosed {
		t.Errorf("Serve: %v", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("connection %d not closed: %v", i, err)
		}
		c.Close()
	}
	// Nothing the router opened or started outlives Close (the dyno's
	// side of its connections closes a little later).
	deadline := time.Now().Add(5 * time.Second)
	for fds() > fds0 || runtime.NumGoroutine() > gs0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d descriptors (%d before), %d goroutines (%d before):\n%s", fds(), fds0, runtime.NumGoroutine(), gs0, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
