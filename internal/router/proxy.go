package router

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var errTooManyFiles = syscall.EMFILE

// Headers the router sends or adds itself; a client's values are dropped.
const (
	viaH1  = "1.1 heroku-router"
	viaH2  = "2.0 heroku-router"
	server = "Heroku"
)

// downstream is the client side of an exchange: an HTTP/1.1 connection
// or an HTTP/2 stream.
type downstream interface {
	// writeHead sends the dyno's response head, filtered; length is the
	// body length or -1 when unknown.
	writeHead(x *exchange, resp *head, status int, length int64) error
	io.Writer
	flush() error
	// end completes the response body (last chunk) and flushes.
	end() error
	// page sends a response the router makes itself.
	page(x *exchange, status int, body string)
	// continue100 tells the client to send its body.
	continue100()
	// hijack hands over the client connection for an upgrade (HTTP/1.1).
	hijack() (net.Conn, *bufio.Reader, bool)
}

// exchange is one request's journey. It is reused across the requests of
// one client connection.
type exchange struct {
	r    *Router
	down downstream
	req  *head
	resp head

	// request
	method, path, host []byte
	body               io.Reader // nil: no body
	bodyLen            int64     // -1: chunked / unknown
	upgrade            []byte    // Upgrade header value when the client asked for one
	secure, h2         bool
	port               string
	clientIP           []byte
	start              time.Time
	// now is the clock as last read during the exchange, and end when
	// it finished: the fast path reads the clock three times per request
	// (start, response head, end) and derives every deadline from those.
	now, end          time.Time
	headOnly          bool
	expect, expectBad bool // Expect: 100-continue / another expectation

	reqIDBuf [36]byte
	reqID    []byte
	fwd      []byte
	via      []byte
	scratch  []byte

	// outcome, for the log line
	route       *route
	code        *hcode
	cause       string
	sock        string
	dyno        string
	connect     time.Duration
	service     time.Duration
	connected   bool
	serviced    bool
	status      int
	bytes       int64
	keepAlive   bool // the client connection may carry another request
	respStarted bool

	respFixed  fixedReader   // response body readers, reused
	respChunks chunkedReader //
	logBuf     []byte
	bodyDone   chan bodyResult // the request body still being sent, full duplex

	cc  net.Conn      // HTTP/1.1 client connection (nil for HTTP/2)
	cbr *bufio.Reader // its reader
}

// bodyReaderEmpty reports whether the client has nothing more buffered,
// so what was read so far should reach the dyno now.
func (x *exchange) bodyReaderEmpty() bool { return x.cbr == nil || x.cbr.Buffered() == 0 }

func (x *exchange) resetOutcome() {
	x.route, x.code, x.cause, x.sock, x.dyno = nil, nil, "", "", ""
	x.connect, x.service, x.connected, x.serviced = 0, 0, false, false
	x.status, x.bytes, x.respStarted = 0, 0, false
	x.upgrade = nil
	x.bodyDone = nil
	x.expect, x.expectBad = false, false
	x.body = nil
	x.bodyLen = 0
	x.now, x.end = x.start, time.Time{}
}

// prepare fills the request id, X-Forwarded-For and Via from the request
// head.
func (x *exchange) prepare() {
	x.reqID = nil
	x.fwd = x.fwd[:0]
	x.via = x.via[:0]
	for i := range x.req.fields {
		n := x.req.name(i)
		switch len(n) {
		case 12:
			if equalFold(n, "x-request-id") && x.reqID == nil && validRequestID(x.req.value(i)) {
				x.reqID = x.req.value(i)
			}
		case 15:
			if equalFold(n, "x-forwarded-for") {
				if len(x.fwd) > 0 {
					x.fwd = append(x.fwd, ", "...)
				}
				x.fwd = append(x.fwd, x.req.value(i)...)
			}
		case 3:
			if equalFold(n, "via") {
				if len(x.via) > 0 {
					x.via = append(x.via, ", "...)
				}
				x.via = append(x.via, x.req.value(i)...)
			}
		}
	}
	if len(x.fwd) > 0 {
		x.fwd = append(x.fwd, ", "...)
	}
	x.fwd = append(x.fwd, x.clientIP...)
	if len(x.via) > 0 {
		x.via = append(x.via, ", "...)
	}
	if x.h2 {
		x.via = append(x.via, viaH2...)
	} else {
		x.via = append(x.via, viaH1...)
	}
	if x.reqID == nil {
		newRequestID(&x.reqIDBuf)
		x.reqID = x.reqIDBuf[:]
	}
}

// validRequestID is Heroku's rule: 20 to 200 characters of [A-Za-z0-9+/=-].
func validRequestID(v []byte) bool {
	if len(v) < 20 || len(v) > 200 {
		return false
	}
	for _, c := range v {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID writes a random UUID v4 without allocating.
func newRequestID(b *[36]byte) {
	const hex = "0123456789abcdef"
	var u [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(c >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	j := 0
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[u[i]>>4], hex[u[i]&15]
		j += 2
	}
}

// fail answers with a router error and records it for the log line.
func (x *exchange) fail(c *hcode, status int, page string) {
	x.code = c
	x.status = status
	if !x.respStarted {
		x.down.page(x, status, page)
	}
}

// run routes and proxies the request whose head is in x.req, then logs.
func (x *exchange) run(t *table) {
	r := x.r
	rt := t.lookup(x.host)
	if rt == nil {
		r.noRoute.Add(1)
		x.status = 404
		x.down.page(x, 404, pageNoSuchApp)
		return
	}
	x.route = rt
	rt.inflight.Add(1)
	if x.expectBad {
		x.cause = "unsupported expect header value"
		x.fail(h26, 417, "Expectation Failed\n")
	} else {
		x.proxy(t, rt)
	}
	x.finish(rt)
}

// finish ends the request's part in the route's counters and writes its
// metrics and log line.
func (x *exchange) finish(rt *route) {
	r := x.r
	rt.inflight.Add(-1)
	now := x.end
	if now.IsZero() {
		now = r.cfg.Now()
		x.end = now
	}
	if !x.serviced && x.code == nil {
		x.service, x.serviced = now.Sub(x.start), true
	}
	rt.metrics.record(x.status, now.Sub(x.start))
	if r.logs != nil {
		x.logBuf = x.appendLine(x.logBuf[:0])
		r.emit(rt.id, rt.name, x.logBuf)
	}
}

func (x *exchange) proxy(t *table, rt *route) { x.proxyFrom(t, rt, nil, nil) }

// proxyFrom proxies the request; with be0 and u0 set, the request was
// already written on u0 (to be0) and its answer is read first.
func (x *exchange) proxyFrom(t *table, rt *route, be0 *backend, u0 *upConn) {
	r := x.r
	if be0 == nil {
		if rt.maintenance {
			x.fail(h80, 503, rt.maintPage)
			return
		}
		if rt.inflight.Load() > rt.maxInflight() {
			x.fail(h11, 503, x.route.errorPage)
			return
		}
	}
	deadline := x.start.Add(r.cfg.BootWait)
	var tried [16]*backend
	ntried := 0
	attempts := 0
	var lastErr *hcode
	backoff := 5 * time.Millisecond
	for iter := 0; ; iter++ {
		be, now := be0, x.now
		be0 = nil
		if be == nil {
			if len(rt.backends) == 0 {
				switch {
				case rt.starting > 0:
					// Hold the request while a web dyno boots (H20 after BootWait).
					if !x.waitChange(t, deadline, 0) {
						x.fail(h20, 503, x.route.errorPage)
						return
					}
					if t, rt = x.reroute(); rt == nil {
						return
					}
					continue
				case rt.crashed > 0:
					x.fail(h10, 503, x.route.errorPage)
				default:
					x.fail(h14, 503, x.route.errorPage)
				}
				return
			}
			now = x.start
			if iter > 0 {
				now = r.cfg.Now()
			}
			be = pick(rt, tried[:ntried], now.UnixNano())
			if be == nil {
				if attempts > 0 && allTried(rt, tried[:ntried]) {
					x.fail(lastErr, 503, x.route.errorPage)
					return
				}
				// Every dyno is quarantined: keep looking until the budget ends.
				if !x.waitChange(t, deadline, backoff) && r.cfg.Now().After(deadline) {
					x.fail(h99, 503, x.route.errorPage)
					return
				}
				backoff = min(2*backoff, 500*time.Millisecond)
				if r.tab.Load() != t {
					if t, rt = x.reroute(); rt == nil {
						return
					}
				}
				continue
			}
		}
		// Only p2c reads the per-dyno count: random balance spares the
		// two atomic adds on a cache line both cores write.
		if rt.p2c {
			be.inflight.Add(1)
		}
		retry, err := x.forwardTo(be, now, u0)
		u0 = nil
		if rt.p2c {
			be.inflight.Add(-1)
		}
		if !retry {
			return
		}
		// Connection failed: quarantine the dyno and try another.
		be.quarUntil.Store(r.cfg.Now().Add(r.cfg.Quarantine).UnixNano())
		lastErr = err
		attempts++
		if ntried < len(tried) {
			tried[ntried] = be
			ntried++
		}
		if attempts >= r.cfg.MaxAttempts {
			x.fail(lastErr, 503, x.route.errorPage)
			return
		}
	}
}

// reroute looks the request's host up again in the newest table. A nil
// route means the app is gone: the 404 page is sent.
func (x *exchange) reroute() (*table, *route) {
	t := x.r.tab.Load()
	rt := t.lookup(x.host)
	if rt == nil {
		x.status = 404
		x.down.page(x, 404, pageNoSuchApp)
		return t, nil
	}
	x.route = rt
	return t, rt
}

// waitChange waits for a new routing table, for d (if > 0), or until
// deadline. It reports false when the deadline passed.
func (x *exchange) waitChange(t *table, deadline time.Time, d time.Duration) bool {
	left := deadline.Sub(x.r.cfg.Now())
	if left <= 0 {
		return false
	}
	if d > 0 && d < left {
		left = d
	}
	tm := time.NewTimer(left)
	defer tm.Stop()
	select {
	case <-t.changed:
		return true
	case <-tm.C:
		return x.r.cfg.Now().Before(deadline)
	case <-x.r.done:
		return false
	}
}

func allTried(rt *route, tried []*backend) bool {
	for _, b := range rt.backends {
		if !slices.Contains(tried, b) {
			return false
		}
	}
	return true
}

// pick chooses an untried, unquarantined backend: uniformly at random, or
// the less busy of two random ones (p2c).
func pick(rt *route, tried []*backend, now int64) *backend {
	bs := rt.backends
	ok := func(b *backend) bool { return !b.quarantined(now) && !slices.Contains(tried, b) }
	n := len(bs)
	if n == 1 {
		if ok(bs[0]) {
			return bs[0]
		}
		return nil
	}
	i := rand.IntN(n)
	a := bs[i]
	if !ok(a) {
		a = nil
		for k := 1; k < n; k++ {
			if b := bs[(i+k)%n]; ok(b) {
				a = b
				break
			}
		}
		if a == nil {
			return nil
		}
	}
	if !rt.p2c {
		return a
	}
	j := rand.IntN(n - 1)
	if bs[j] == a {
		j = n - 1
	}
	if b := bs[j]; ok(b) && b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}

// forwardTo sends the request to one dyno. retry says the connection
// could not be made (err is H19 or H21) and another dyno may be tried.
// With u0 set, an event loop wrote the request on u0 at now: its answer
// is read.
func (x *exchange) forwardTo(be *backend, now time.Time, u0 *upConn) (retry bool, err *hcode) {
	r := x.r
	replays := 0
	for {
		u, written := u0, u0 != nil
		u0 = nil
		if u == nil && replays == 0 { // a replay dials: the other pooled connections may be dead too
			u = be.pool.get(now)
		}
		switch {
		case written: // the loop set connect and dyno
		case u == nil:
			t0 := now
			c, derr := net.DialTimeout("tcp", be.addr, r.cfg.ConnectTimeout)
			now = r.cfg.Now()
			x.now = now
			x.connect, x.connected = now.Sub(t0), true
			if derr != nil {
				var ne net.Error
				if errors.As(derr, &ne) && ne.Timeout() {
					x.connect = r.cfg.ConnectTimeout + time.Millisecond
					return true, h19
				}
				return true, h21
			}
			u = newUpConn(c)
		default:
			x.connected = true
			x.connect = 0
		}
		x.dyno = be.name
		if !x.exchangeWith(be, u, now, written) {
			return false, nil
		}
		// The connection died before any response byte and the request can
		// be replayed: try a fresh connection (a dead dyno then refuses it
		// and the request moves to another).
		replays++
		if replays > 2 {
			x.fail(h13, 503, x.route.errorPage)
			return false, nil
		}
		now = r.cfg.Now()
	}
}

// exchangeWith writes the request on u (unless written: an event loop
// did, without a body) and relays the response. It returns true when a
// reused connection failed harmlessly and the request should be sent
// again on a new one.
func (x *exchange) exchangeWith(be *backend, u *upConn, sent time.Time, written bool) bool {
	r := x.r
	reused := u.reused
	u.reused = false
	if written {
		u.rdl = setDeadlineLazily(u.c, u.rdl, sent.Add(r.cfg.FirstByte), r.cfg.FirstByte)
		return x.receive(be, u, sent, reused, true, nil, nil)
	}
	x.writeRequestHead(u.bw)
	var werr error
	var bodyDone chan bodyResult
	if x.body != nil {
		if x.expect {
			x.expect = false
			x.down.continue100()
		}
		if x.cbr != nil && x.bodyLen > 0 && x.bodyLen <= int64(x.cbr.Buffered()) {
			// The whole body is here already: send it with the head.
			if code, err := x.sendBody(u); code != nil {
				u.discard()
				x.failBody(code)
				return false
			} else {
				werr = err
			}
		} else {
			// Full duplex: the dyno may answer while the client still
			// sends (streaming uploads, long polls).
			werr = u.bw.Flush()
			u.c.SetReadDeadline(time.Time{})
			u.rdl = time.Time{}
			bodyDone = make(chan bodyResult, 1)
			go func() {
				code, err := x.sendBody(u)
				if err == nil {
					err = u.bw.Flush()
				}
				if err == nil {
					// H12's clock starts once the request is all sent.
					u.c.SetReadDeadline(r.cfg.Now().Add(r.cfg.FirstByte))
				} else {
					u.c.Close() // unblocks the response read
				}
				bodyDone <- bodyResult{code, err}
			}()
		}
	}
	if werr == nil && bodyDone == nil {
		werr = u.bw.Flush()
	}
	replayable := x.body == nil
	if bodyDone == nil {
		u.rdl = setDeadlineLazily(u.c, u.rdl, sent.Add(r.cfg.FirstByte), r.cfg.FirstByte)
	}
	return x.receive(be, u, sent, reused, replayable, werr, bodyDone)
}

// receive reads the answer to the request written on u and relays it;
// true asks for the request to be sent again on a new connection.
func (x *exchange) receive(be *backend, u *upConn, sent time.Time, reused, replayable bool, werr error, bodyDone chan bodyResult) bool {
	status, err := x.readResponseHead(u)
	x.now = x.r.cfg.Now() // the dyno may have taken its time
	return x.received(be, u, sent, reused, replayable, werr, bodyDone, status, err)
}

// received handles the outcome of reading the response head: an error
// (H12, H13, H17, H25, or a replay) or the response to relay.
func (x *exchange) received(be *backend, u *upConn, sent time.Time, reused, replayable bool, werr error, bodyDone chan bodyResult, status int, err error) bool {
	r := x.r
	if bodyDone != nil && err != nil {
		if res := <-bodyDone; res.code != nil {
			u.discard()
			x.failBody(res.code)
			return false
		}
	}
	if err != nil {
		u.discard()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			x.service, x.serviced = r.cfg.FirstByte, true
			x.fail(h12, 503, x.route.errorPage)
		case err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || werr != nil:
			// A pooled connection the dyno closed meanwhile, or a dyno that
			// died under an idempotent request: nothing reached the app's
			// response yet, so the request goes again.
			if replayable && (reused || x.idempotent()) {
				return true
			}
			x.fail(h13, 503, x.route.errorPage)
		case err == errOversized || err == errBadLength || err == errCookie:
			x.cause = err.Error()
			x.fail(h25, 502, x.route.errorPage)
		default:
			x.fail(h17, 503, x.route.errorPage)
		}
		return false
	}
	x.bodyDone = bodyDone
	if x.upgrade != nil && status == 101 {
		x.relayUpgrade(u, sent)
	} else {
		x.relayResponse(be, u, status, sent)
	}
	if x.bodyDone != nil {
		<-x.bodyDone // u is closed: the sender ends at the latest after Idle
		x.bodyDone = nil
		x.keepAlive = false
	}
	return false
}

// noBody is a response that has no body whatever its headers say (HEAD,
// 204, 304): its Content-Length, if any, passes through as is.
const noBody = -3

// copyBufs hold response bodies on their way; taken per response, so
// idle connections hold none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type bodyResult struct {
	code *hcode
	err  error
}

// sendBody streams the request body to the dyno. It returns a non-nil
// code when the client is at fault: a client that stops sending for Idle
// is H28, one that hangs up H27, a malformed chunk H26.
func (x *exchange) sendBody(u *upConn) (*hcode, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var last time.Time
	var nb [16]byte
	// The body's bytes must keep moving both ways: the client's reads and
	// the dyno's writes get a rolling Idle deadline, pushed at most every
	// Idle/8, and the dyno's is lifted once the body is through.
	defer u.c.SetWriteDeadline(time.Time{})
	for {
		if now := x.r.cfg.Now(); now.Sub(last) > x.r.cfg.Idle/8 {
			last = now
			u.c.SetWriteDeadline(now.Add(x.r.cfg.Idle))
			if x.cc != nil {
				x.cc.SetReadDeadline(now.Add(x.r.cfg.Idle))
			}
		}
		n, err := x.body.Read(buf)
		if n > 0 {
			if x.bodyLen < 0 {
				u.bw.Write(strconv.AppendInt(nb[:0], int64(n), 16))
				u.bw.WriteString("\r\n")
				u.bw.Write(buf[:n])
				u.bw.WriteString("\r\n")
			} else {
				u.bw.Write(buf[:n])
			}
		}
		if err == io.EOF {
			if x.bodyLen < 0 {
				u.bw.WriteString("0\r\n\r\n")
			}
			return nil, nil
		}
		if err != nil {
			var ne net.Error
			switch {
			case err == errBadChunk:
				return h26, err
			case errors.As(err, &ne) && ne.Timeout():
				return h28, err
			default:
				return h27, err
			}
		}
		if u.bw.Buffered() > 0 && x.bodyReaderEmpty() {
			if err := u.bw.Flush(); err != nil {
				return nil, err
			}
		}
	}
}

// failBody reports a client fault found while reading the request body.
func (x *exchange) failBody(code *hcode) {
	x.keepAlive = false
	switch code {
	case h26:
		x.cause = "bad chunk"
		x.fail(h26, 400, pageBadRequest)
	default:
		x.sock = "client"
		x.fail(code, 499, pageBadRequest)
	}
}

var (
	errOversized = errors.New("oversized header")
	errBadLength = errors.New("invalid content length")
	errCookie    = errors.New("oversized cookie")
	errBadStatus = errors.New("malformed status line")
)

// readResponseHead reads the dyno's response head, skipping interim 1xx
// responses other than 101, and checks it.
func (x *exchange) readResponseHead(u *upConn) (int, error) {
	for {
		if err := x.resp.read(u.br, responseLimits, true); err != nil {
			if err == errLineTooLong || err == errTooMany || err == errHeadTooLarge {
				return 0, errOversized
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, errBadStatus
			}
			if err == io.EOF && len(x.resp.buf) > 0 {
				return 0, errBadStatus
			}
			return 0, err
		}
		p := x.resp.part(0)
		st := x.resp.part(1)
		if len(p) != 8 || string(p[:7]) != "HTTP/1." || (p[7] != '0' && p[7] != '1') || len(st) != 3 {
			return 0, errBadStatus
		}
		status := 0
		for _, c := range st {
			if c < '0' || c > '9' {
				return 0, errBadStatus
			}
			status = status*10 + int(c-'0')
		}
		if status < 100 {
			return 0, errBadStatus
		}
		if status >= 100 && status < 200 && status != 101 {
			continue
		}
		return status, nil
	}
}

// respLength works out the response body framing: n >= 0 bytes, -1
// chunked, -2 until the dyno closes.
func (x *exchange) respLength(status int) (int64, bool, error) {
	if x.headOnly || status == 204 || status == 304 || status < 200 {
		return noBody, true, nil
	}
	var n int64 = -2
	chunked := false
	keep := x.resp.part(0)[7] == '1'
	for i := range x.resp.fields {
		name := x.resp.name(i)
		v := x.resp.value(i)
		switch len(name) {
		case 14:
			if equalFold(name, "content-length") {
				m, ok := parseLength(v)
				if !ok || n >= 0 && m != n {
					return 0, false, errBadLength
				}
				n = m
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				if !hasToken(v, "chunked") {
					return 0, false, errBadLength
				}
				chunked = true
			}
		case 10:
			if equalFold(name, "connection") {
				if hasToken(v, "close") {
					keep = false
				} else if hasToken(v, "keep-alive") {
					keep = true
				}
			} else if equalFold(name, "set-cookie") && len(v) > 8192 {
				return 0, false, errCookie
			}
		}
	}
	if chunked {
		return -1, keep, nil
	}
	if n == -2 {
		keep = false
	}
	return n, keep, nil
}

// relayResponse sends the response head and streams the body to the
// client, then returns the dyno connection to the pool when it can carry
// another request.
func (x *exchange) relayResponse(be *backend, u *upConn, status int, sent time.Time) {
	r := x.r
	n, upKeep, err := x.respLength(status)
	if err != nil {
		u.discard()
		x.cause = err.Error()
		x.fail(h25, 502, x.route.errorPage)
		return
	}
	x.status = status
	length := n
	if n == -2 {
		length = -1
	}
	x.respStarted = true
	if err := x.down.writeHead(x, &x.resp, status, length); err != nil {
		u.discard()
		x.code, x.sock, x.status = h27, "client", 499
		x.keepAlive = false
		return
	}
	var body io.Reader
	switch {
	case n == 0 || n == noBody:
	case n > 0:
		x.respFixed = fixedReader{r: u.br, left: n}
		body = &x.respFixed
	case n == -1:
		x.respChunks.reset(u.br)
		body = &x.respChunks
	default:
		body = u.br
	}
	ok := true
	if body != nil {
		ok = x.copyResponse(u, body, n == -2)
	}
	if ok {
		if err := x.down.end(); err != nil {
			x.code, x.sock, x.status = h27, "client", 499
			x.keepAlive = false
			ok = false
		}
	}
	if x.bodyDone != nil {
		// The response is complete; the dyno connection is reusable only
		// once the request body went through too.
		res := <-x.bodyDone
		x.bodyDone = nil
		if res.err != nil {
			upKeep = false
			x.keepAlive = false
			if res.code != nil && x.code == nil {
				x.code = res.code
				if res.code != h26 {
					x.sock = "client"
				}
			}
		}
	}
	x.end = r.cfg.Now()
	x.service, x.serviced = x.end.Sub(sent), true
	if ok && upKeep && u.br.Buffered() == 0 {
		// Its read deadline may expire while pooled: harmless, nobody
		// reads an idle connection and the next request sets its own.
		u.reused = false
		be.pool.put(u, x.end)
	} else {
		u.discard()
	}
}

// copyResponse streams the body, flushing to the client whenever the
// dyno has nothing more buffered (so streamed responses stay streamed).
// The dyno silent for Idle is H15; a dyno closing mid-body is H18; the
// client going away is H27.
func (x *exchange) copyResponse(u *upConn, body io.Reader, untilClose bool) bool {
	r := x.r
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	last := x.now
	buffered := false
	if fr, ok := body.(*fixedReader); !ok || fr.left > int64(u.br.Buffered()) {
		// More is to come from the dyno: from now on it may pause up to
		// Idle (a body already buffered needs no deadline).
		u.c.SetReadDeadline(last.Add(r.cfg.Idle))
		u.rdl = time.Time{}
	} else {
		buffered = true
	}
	for {
		m, err := body.Read(buf)
		if m > 0 {
			if !buffered {
				// Reading may have waited for the dyno: read the clock.
				last = x.pushIdle(u, last)
			}
			if _, werr := x.down.Write(buf[:m]); werr != nil {
				x.code, x.sock = h27, "client"
				x.keepAlive = false
				return false
			}
			x.bytes += int64(m)
			if u.br.Buffered() == 0 {
				if err := x.down.flush(); err != nil {
					x.code, x.sock = h27, "client"
					x.keepAlive = false
					return false
				}
			}
			if !buffered {
				// So may writing, for the client: the time it took
				// does not count against the dyno.
				last = x.pushIdle(u, last)
			}
		}
		if err == io.EOF && (untilClose || body != u.br) {
			return true
		}
		if err != nil {
			var ne net.Error
			// The client's response is cut short; the log line says 503,
			// as Heroku's does.
			if errors.As(err, &ne) && ne.Timeout() {
				x.code = h15
			} else {
				x.code, x.sock = h18, "backend"
			}
			x.status = 503
			x.keepAlive = false
			return false
		}
	}
}

// pushIdle reads the clock and moves the dyno's read deadline Idle ahead
// if the last move (at last) is more than Idle/8 ago; it returns the
// time of the last move.
func (x *exchange) pushIdle(u *upConn, last time.Time) time.Time {
	r := x.r
	now := r.cfg.Now()
	x.now = now
	if now.Sub(last) > r.cfg.Idle/8 {
		u.c.SetReadDeadline(now.Add(r.cfg.Idle))
		return now
	}
	return last
}

// relayUpgrade joins client and dyno after a 101 until either side
// closes or both are idle for Idle.
func (x *exchange) relayUpgrade(u *upConn, sent time.Time) {
	r := x.r
	x.status = 101
	x.respStarted = true
	if err := x.down.writeHead(x, &x.resp, 101, 0); err != nil {
		u.discard()
		return
	}
	x.down.flush()
	cc, cbr, ok := x.down.hijack()
	if !ok {
		u.discard()
		return
	}
	x.keepAlive = false
	done := make(chan int64, 1)
	go func() {
		n := pipe(u.c, cbr, cc, r.cfg.Idle)
		done <- n
	}()
	n := pipe(cc, u.br, u.c, r.cfg.Idle)
	cc.Close()
	u.c.Close()
	<-done
	x.bytes += n
	x.service, x.serviced = r.cfg.Now().Sub(sent), true
}

// pipe copies src (read through br) to dst until EOF, an error or Idle
// without data, then half-closes dst when it can.
func pipe(dst net.Conn, br *bufio.Reader, src net.Conn, idle time.Duration) int64 {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := br.Read(buf)
		if n > 0 {
			dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total
			}
			total += int64(n)
		}
		if err != nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == io.EOF {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return total
		}
	}
}

// writeRequestHead writes the request line and headers for the dyno:
// the client's headers minus hop-by-hop ones and minus the router's own,
// then the router's.
func (x *exchange) writeRequestHead(w *bufio.Writer) {
	req := x.req
	w.Write(x.method)
	w.WriteByte(' ')
	w.Write(x.path)
	w.WriteString(" HTTP/1.1\r\n")
	var conn []byte
	for i := range req.fields {
		if n := req.name(i); len(n) == 10 && equalFold(n, "connection") {
			conn = req.value(i)
		}
	}
	for i := range req.fields {
		n := req.name(i)
		if skipRequestHeader(n) || len(conn) > 0 && listedIn(conn, n) {
			continue
		}
		w.Write(n)
		w.WriteString(": ")
		w.Write(req.value(i))
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	w.Write(x.fwd)
	if x.secure {
		w.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: ")
	} else {
		w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ")
	}
	w.WriteString(x.port)
	w.WriteString("\r\nX-Request-Start: ")
	x.scratch = strconv.AppendInt(x.scratch[:0], x.start.UnixMilli(), 10)
	w.Write(x.scratch)
	w.WriteString("\r\nX-Request-Id: ")
	w.Write(x.reqID)
	w.WriteString("\r\nVia: ")
	w.Write(x.via)
	w.WriteString("\r\n")
	switch {
	case x.upgrade != nil:
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.Write(x.upgrade)
		w.WriteString("\r\n")
	}
	switch {
	case x.body == nil:
		if x.bodyLen == 0 && methodHasBody(x.method) {
			w.WriteString("Content-Length: 0\r\n")
		}
	case x.bodyLen < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.WriteString("Content-Length: ")
		x.scratch = strconv.AppendInt(x.scratch[:0], x.bodyLen, 10)
		w.Write(x.scratch)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

func (x *exchange) idempotent() bool {
	m := x.method
	return string(m) == "GET" || string(m) == "HEAD" || string(m) == "OPTIONS"
}

func methodHasBody(m []byte) bool {
	return string(m) == "POST" || string(m) == "PUT" || string(m) == "PATCH"
}

// Classes of header names the router treats specially.
const (
	plainHeader  = iota
	hopHeader    // hop-by-hop or framing: never forwarded either way (the router re-frames)
	routerHeader // set by the router on requests (a client's value is replaced) or answered by it (Expect)
)

// headerClass classifies a header name without allocating.
func headerClass(n []byte) int {
	if len(n) < 2 || len(n) > 19 {
		return plainHeader
	}
	var low [19]byte
	for i, c := range n {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	// A switch compiles to length and byte comparisons: no hashing, as a
	// map lookup would do for every header of every message.
	switch string(low[:len(n)]) {
	case "te", "upgrade", "trailer", "connection", "keep-alive", "content-length", "proxy-connection",
		"transfer-encoding", "proxy-authenticate", "proxy-authorization":
		return hopHeader
	case "via", "expect", "x-request-id", "x-forwarded-for", "x-request-start", "x-forwarded-port", "x-forwarded-proto":
		return routerHeader
	}
	return plainHeader
}

func skipRequestHeader(n []byte) bool  { return headerClass(n) != plainHeader }
func skipResponseHeader(n []byte) bool { return headerClass(n) == hopHeader }

// connectionTokens is the value of a head's Connection header, whose
// tokens name more hop-by-hop headers.
func connectionTokens(h *head) []byte {
	for i := range h.fields {
		if n := h.name(i); len(n) == 10 && equalFold(n, "connection") {
			return h.value(i)
		}
	}
	return nil
}

// listedIn reports whether header name n is one of the Connection
// header's tokens (other than close/keep-alive/upgrade).
func listedIn(conn, n []byte) bool {
	for len(conn) > 0 {
		i := 0
		for i < len(conn) && conn[i] != ',' {
			i++
		}
		t := trimOWS(conn[:i])
		if len(t) == len(n) && len(t) > 0 {
			eq := true
			for k := range t {
				a, b := t[k]|0x20, n[k]|0x20
				if a != b {
					eq = false
					break
				}
			}
			if eq {
				return true
			}
		}
		if i == len(conn) {
			break
		}
		conn = conn[i+1:]
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
