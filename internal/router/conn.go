package router

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// h1 is an HTTP/1.1 client connection and the downstream of its
// exchanges.
type h1 struct {
	r        *Router
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	x        exchange
	req      head
	fixed    fixedReader
	chunks   chunkedReader
	http10   bool
	chunked  bool // the response body is being chunk-encoded
	lastW    time.Time
	rdl      time.Time // the client read deadline last set; zero: unknown
	hijacked bool
}

var h1Pool = sync.Pool{New: func() any {
	// Small buffers: an idle keep-alive connection costs ~10 KB. Longer
	// lines (up to Heroku's 8 KB limits) are assembled piecewise.
	h := &h1{br: bufio.NewReaderSize(nil, 4096), bw: bufio.NewWriterSize(nil, 4096)}
	h.x.scratch = make([]byte, 0, 32)
	return h
}}

func (r *Router) serveConn(c net.Conn, secure bool, port string) {
	h := r.newH1(c, secure, port)
	for h.serveOne() {
	}
	h.release()
}

// newH1 takes a client connection's state from the pool.
func (r *Router) newH1(c net.Conn, secure bool, port string) *h1 {
	h := h1Pool.Get().(*h1)
	h.r, h.c = r, c
	h.br.Reset(c)
	h.bw.Reset(c)
	h.hijacked = false
	h.lastW, h.rdl = time.Time{}, time.Time{}
	x := &h.x
	x.end = time.Time{}
	x.r, x.down, x.req, x.secure, x.h2, x.port = r, h, &h.req, secure, false, port
	x.cc, x.cbr = c, h.br
	x.clientIP = x.clientIP[:0]
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		x.clientIP, _ = a.IP.AppendText(x.clientIP) // never fails for an IP
	} else if a := c.RemoteAddr(); a != nil {
		host, _, _ := net.SplitHostPort(a.String())
		x.clientIP = append(x.clientIP, host...)
	}
	return h
}

// release closes the connection (unless an upgrade took it) and gives
// the state back to the pool.
func (h *h1) release() {
	x := &h.x
	if !h.hijacked {
		h.c.Close()
	}
	h.r, h.c = nil, nil
	h.br.Reset(nil)
	h.bw.Reset(nil)
	x.route, x.down, x.cc, x.cbr = nil, nil, nil, nil
	h1Pool.Put(h)
}

// serveOne reads and serves one request; false ends the connection.
func (h *h1) serveOne() bool {
	r := h.r
	x := &h.x
	// Wait for the next request for up to KeepAlive, then give the whole
	// head HeadTimeout: a slow client cannot hold the connection longer.
	if h.br.Buffered() == 0 {
		now := x.end // the previous request's end, if any
		if now.IsZero() {
			now = r.cfg.Now()
		}
		h.rdl = setDeadlineLazily(h.c, h.rdl, now.Add(r.cfg.KeepAlive), r.cfg.KeepAlive)
		if _, err := h.br.Peek(1); err != nil {
			return false
		}
	}
	x.start = r.cfg.Now()
	return h.serveHead()
}

// serveHead reads the head of a request whose first byte came at
// x.start, then serves it.
func (h *h1) serveHead() bool {
	r := h.r
	x := &h.x
	if !h.headBuffered() {
		// The rest of the head must come within HeadTimeout (slowloris).
		h.rdl = x.start.Add(r.cfg.HeadTimeout)
		h.c.SetReadDeadline(h.rdl)
	}
	x.resetOutcome()
	if err := h.req.read(h.br, requestLimits, false); err != nil {
		if err == io.EOF && len(h.req.buf) == 0 {
			return false
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		h.badRequest()
		return false
	}
	if !h.parseRequest() {
		h.badRequest()
		return false
	}
	return h.serveParsed()
}

// serveParsed serves the request whose head parseRequest accepted.
func (h *h1) serveParsed() bool {
	r := h.r
	x := &h.x
	t := r.tab.Load()
	if !x.secure && r.cfg.ACME != nil && bytes.HasPrefix(x.path, []byte(acmePrefix)) && h.serveACME() {
		return false
	}
	x.prepare()
	h.chunked = false
	x.run(t)
	return h.afterRun()
}

const acmePrefix = "/.well-known/acme-challenge/"

// afterRun completes a request on the connection once the exchange is
// done, and reports whether the connection may carry another.
func (h *h1) afterRun() bool {
	x := &h.x
	if x.body != nil {
		h.rdl = time.Time{} // sendBody moved the read deadline
	}
	if h.hijacked {
		return false
	}
	if err := h.bw.Flush(); err != nil || !x.keepAlive {
		return false
	}
	// Any unread request body (the dyno answered early) must not be
	// taken for the next request.
	if x.body != nil {
		if _, err := io.Copy(io.Discard, io.LimitReader(x.body, 1<<20)); err != nil {
			return false
		}
		if _, err := x.body.Read(x.scratch[:1]); err != io.EOF {
			return false
		}
	}
	return x.keepAlive
}

// headBuffered reports whether a whole request head is already read.
func (h *h1) headBuffered() bool {
	b, _ := h.br.Peek(h.br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

// parseRequest checks the request head and sets the exchange's request
// fields. The framing rules refuse every ambiguity instead of resolving it.
func (h *h1) parseRequest() bool {
	x := &h.x
	req := &h.req
	x.method, x.path = req.part(0), req.part(1)
	proto := req.part(2)
	switch string(proto) {
	case "HTTP/1.1":
		h.http10 = false
	case "HTTP/1.0":
		h.http10 = true
	default:
		return false
	}
	if len(x.method) > 127 || string(x.method) == "CONNECT" {
		return false
	}
	for _, c := range x.method {
		if !isToken(c) {
			return false
		}
	}
	if len(x.path) == 0 || x.path[0] != '/' && string(x.path) != "*" && !bytes.HasPrefix(x.path, []byte("http")) {
		return false
	}
	x.headOnly = string(x.method) == "HEAD"
	x.keepAlive = !h.http10
	hosts := 0
	var cl int64 = -1
	te := false
	var upgrade []byte
	connUpgrade := false
	for i := range req.fields {
		n := req.name(i)
		v := req.value(i)
		switch len(n) {
		case 4:
			if equalFold(n, "host") {
				hosts++
				x.host = v
			}
		case 6:
			if equalFold(n, "expect") {
				if !equalFold(v, "100-continue") {
					x.expectBad = true
				} else {
					x.expect = true
				}
			}
		case 7:
			if equalFold(n, "upgrade") {
				upgrade = v
			}
		case 10:
			if equalFold(n, "connection") {
				if hasToken(v, "close") {
					x.keepAlive = false
				} else if h.http10 && hasToken(v, "keep-alive") {
					x.keepAlive = true
				}
				if hasToken(v, "upgrade") {
					connUpgrade = true
				}
			}
		case 14:
			if equalFold(n, "content-length") {
				m, ok := parseLength(v)
				if !ok || cl >= 0 && m != cl {
					return false
				}
				cl = m
			}
		case 17:
			if equalFold(n, "transfer-encoding") {
				if te || h.http10 || !equalFold(v, "chunked") {
					return false
				}
				te = true
			}
		}
	}
	if hosts != 1 || len(x.host) == 0 || te && cl >= 0 {
		return false
	}
	if connUpgrade && len(upgrade) > 0 && !h.http10 {
		x.upgrade = upgrade
	}
	switch {
	case te:
		h.chunks.reset(h.br)
		x.body, x.bodyLen = &h.chunks, -1
	case cl > 0:
		h.fixed = fixedReader{r: h.br, left: cl}
		x.body, x.bodyLen = &h.fixed, cl
	}
	return true
}

// badRequest answers a request the router refuses to parse and closes.
func (h *h1) badRequest() {
	h.bw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(pageBadRequest)) + "\r\nConnection: close\r\n\r\n" + pageBadRequest)
	h.bw.Flush()
}

// serveACME hands an HTTP-01 challenge request to the ACME handler and
// reports whether it answered. A 404 from the handler (a token it does not
// know) is not sent: the request goes to the app, which may run its own
// ACME client.
func (h *h1) serveACME() bool {
	x := &h.x
	req, err := http.NewRequest(string(x.method), "http://"+string(x.host)+string(x.path), nil)
	if err != nil {
		h.badRequest()
		return true
	}
	req.Host = string(x.host)
	rec := httptest.NewRecorder()
	h.r.cfg.ACME.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode == http.StatusNotFound {
		return false
	}
	h.bw.WriteString("HTTP/1.1 " + strconv.Itoa(res.StatusCode) + " " + http.StatusText(res.StatusCode) + "\r\n")
	res.Header.Del("Content-Length")
	res.Header.Set("Connection", "close")
	res.Header.Write(h.bw)
	body := rec.Body.Bytes()
	h.bw.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	if !x.headOnly {
		h.bw.Write(body)
	}
	h.bw.Flush()
	return true
}

func (h *h1) writeHead(x *exchange, resp *head, status int, length int64) error {
	w := h.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(resp.part(1))
	w.WriteByte(' ')
	w.Write(resp.part(2))
	w.WriteString("\r\n")
	hasServer := false
	var via []byte
	conn := connectionTokens(resp)
	for i := range resp.fields {
		n := resp.name(i)
		if status != 101 && len(conn) > 0 && listedIn(conn, n) {
			continue
		}
		if status == 101 {
			if len(n) == 7 && equalFold(n, "upgrade") || len(n) == 10 && equalFold(n, "connection") {
				w.Write(n)
				w.WriteString(": ")
				w.Write(resp.value(i))
				w.WriteString("\r\n")
				continue
			}
		}
		if length == noBody && len(n) == 14 && equalFold(n, "content-length") {
			// passes through below
		} else if skipResponseHeader(n) {
			continue
		}
		if len(n) == 3 && equalFold(n, "via") {
			via = resp.value(i)
			continue
		}
		if len(n) == 6 && equalFold(n, "server") {
			hasServer = true
		}
		w.Write(n)
		w.WriteString(": ")
		w.Write(resp.value(i))
		w.WriteString("\r\n")
	}
	w.WriteString("Via: ")
	if len(via) > 0 {
		w.Write(via)
		w.WriteString(", ")
	}
	w.WriteString(viaH1)
	w.WriteString("\r\n")
	if !hasServer {
		w.WriteString("Server: " + server + "\r\n")
	}
	h.chunked = false
	switch {
	case status == 101 || length == noBody:
	case length >= 0:
		w.WriteString("Content-Length: ")
		x.scratch = strconv.AppendInt(x.scratch[:0], length, 10)
		w.Write(x.scratch)
		w.WriteString("\r\n")
	case h.http10:
		x.keepAlive = false
	default:
		h.chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if status != 101 {
		if !x.keepAlive {
			w.WriteString("Connection: close\r\n")
		} else if h.http10 {
			w.WriteString("Connection: keep-alive\r\n")
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// touch pushes the client write deadline Idle ahead, at most every Idle/8.
// It goes by the exchange's clock, read after every wait for the dyno.
func (h *h1) touch() {
	now := h.x.now
	if now.IsZero() {
		now = h.r.cfg.Now()
	}
	if now.Sub(h.lastW) > h.r.cfg.Idle/8 {
		h.lastW = now
		h.c.SetWriteDeadline(now.Add(h.r.cfg.Idle))
	}
}

func (h *h1) Write(p []byte) (int, error) {
	h.touch()
	if !h.chunked {
		return h.bw.Write(p)
	}
	h.x.scratch = strconv.AppendInt(h.x.scratch[:0], int64(len(p)), 16)
	h.bw.Write(h.x.scratch)
	h.bw.WriteString("\r\n")
	n, err := h.bw.Write(p)
	h.bw.WriteString("\r\n")
	return n, err
}

func (h *h1) flush() error {
	h.touch()
	return h.bw.Flush()
}

func (h *h1) end() error {
	if h.chunked {
		h.bw.WriteString("0\r\n\r\n")
		h.chunked = false
	}
	if h.bw.Buffered() > 0 && h.br.Buffered() == 0 {
		return h.bw.Flush()
	}
	return nil
}

func (h *h1) page(x *exchange, status int, body string) {
	// The write deadline an earlier response set may be past by now (an
	// H12 comes FirstByte after the request, an H99 after BootWait).
	x.now = h.r.cfg.Now()
	h.touch()
	w := h.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(status))
	w.WriteByte(' ')
	w.WriteString(statusText(status))
	w.WriteString("\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\nServer: " + server + "\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	if x.body != nil {
		x.keepAlive = false // the body was not read: the connection cannot carry another request
	}
	if !x.keepAlive {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	if !x.headOnly {
		w.WriteString(body)
	}
}

func (h *h1) continue100() {
	h.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	h.bw.Flush()
}

func (h *h1) hijack() (net.Conn, *bufio.Reader, bool) {
	h.hijacked = true
	h.bw.Flush()
	h.c.SetDeadline(time.Time{})
	return h.c, h.br, true
}

func statusText(code int) string {
	if code == 499 {
		return "Client Closed Request"
	}
	return http.StatusText(code)
}
