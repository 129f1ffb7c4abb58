package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// h2 is the downstream of an HTTP/2 stream: x/net/http2 has parsed the
// request; the router rebuilds an HTTP/1.1 head from it and runs the
// same exchange as for HTTP/1.1 clients.
type h2 struct {
	w   http.ResponseWriter
	x   exchange
	req head
}

var h2Pool = sync.Pool{New: func() any {
	return &h2{}
}}

func (r *Router) serveH2(w http.ResponseWriter, req *http.Request, port string) {
	h := h2Pool.Get().(*h2)
	defer func() {
		h.w = nil
		h.x.down, h.x.route, h.x.body = nil, nil, nil
		h2Pool.Put(h)
	}()
	h.w = w
	x := &h.x
	x.r, x.down, x.req, x.secure, x.h2 = r, h, &h.req, true, true
	x.start = r.cfg.Now()
	x.resetOutcome()
	x.cc, x.cbr = nil, nil
	x.port = port
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	x.clientIP = append(x.clientIP[:0], host...)
	// Rebuild the head so the forwarding code sees one shape.
	hd := &h.req
	hd.reset()
	hd.buf = append(hd.buf, req.Method...)
	hd.first[0] = [2]int32{0, int32(len(hd.buf))}
	hd.buf = append(hd.buf, ' ')
	s := len(hd.buf)
	hd.buf = append(hd.buf, req.URL.RequestURI()...)
	hd.first[1] = [2]int32{int32(s), int32(len(hd.buf))}
	hd.buf = append(hd.buf, " HTTP/1.1"...)
	hd.first[2] = [2]int32{int32(len(hd.buf) - 8), int32(len(hd.buf))}
	add := func(name, value string) {
		ns := int32(len(hd.buf))
		hd.buf = append(hd.buf, name...)
		ne := int32(len(hd.buf))
		hd.buf = append(hd.buf, value...)
		hd.fields = append(hd.fields, field{ns, ne, ne, int32(len(hd.buf))})
	}
	add("Host", req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			add(k, v)
		}
	}
	x.method, x.path, x.host = hd.part(0), hd.part(1), hd.value(0)
	x.headOnly = req.Method == http.MethodHead
	x.keepAlive = true
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		x.body, x.bodyLen = req.Body, req.ContentLength
		if x.bodyLen < 0 {
			x.bodyLen = -1
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !equalFold([]byte(e), "100-continue") {
		x.expectBad = true
	}
	x.prepare()
	x.run(r.tab.Load())
}

func (h *h2) writeHead(x *exchange, resp *head, status int, length int64) error {
	hdr := h.w.Header()
	var via string
	conn := connectionTokens(resp)
	for i := range resp.fields {
		n := resp.name(i)
		if len(conn) > 0 && listedIn(conn, n) {
			continue
		}
		if skipResponseHeader(n) && !(length == noBody && len(n) == 14 && equalFold(n, "content-length")) {
			continue
		}
		if len(n) == 3 && equalFold(n, "via") {
			via = string(resp.value(i)) + ", "
			continue
		}
		k := http.CanonicalHeaderKey(string(n))
		hdr[k] = append(hdr[k], string(resp.value(i)))
	}
	hdr.Set("Via", via+viaH2)
	if hdr.Get("Server") == "" {
		hdr.Set("Server", server)
	}
	if length >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	h.w.WriteHeader(status)
	return nil
}

func (h *h2) Write(p []byte) (int, error) { return h.w.Write(p) }

func (h *h2) flush() error {
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (h *h2) end() error { return nil }

func (h *h2) continue100() {}

func (h *h2) page(x *exchange, status int, body string) {
	hdr := h.w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache, no-store")
	hdr.Set("Server", server)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	h.w.WriteHeader(status)
	if !x.headOnly {
		io.WriteString(h.w, body)
	}
}

func (h *h2) hijack() (net.Conn, *bufio.Reader, bool) { return nil, nil, false }
