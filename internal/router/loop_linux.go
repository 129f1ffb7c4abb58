//go:build linux

package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops serve plain HTTP/1.1 keep-alive connections the way
// nginx and HAProxy do: one loop per core, each with its own
// edge-triggered epoll set that its thread waits on, and non-blocking
// reads and writes made directly (no goroutine parks and wakes per
// request, no read that returns EAGAIN per request).
// A loop handles the common request end to end: a whole head without a
// body for a routed host, answered by a dyno with a plain response
// (Content-Length, or none for HEAD/204/304) on a pooled connection.
// Everything else goes to the goroutine code at a defined point (see
// handOff) and the connection comes back once that request is done, so
// one code path owns each unusual case.

// errAgain is a loop-owned socket's EAGAIN: nothing to read now.
var errAgain = errors.New("would block")

// fdConn is a socket an event loop owns: non-blocking system calls on fd
// and no deadlines (the loop keeps the time); or, while a goroutine
// serves it, the net.Conn made from it (nc).
type fdConn struct {
	fd           int
	nc           net.Conn
	l            *evloop
	readable     bool   // an edge came since a read last drained the socket
	hup          bool   // the peer closed or reset: reads go on until they say so
	writable     bool   // no write has filled the socket buffer since the last edge
	out          []byte // accepted by Write while the socket was full
	werr         error
	laddr, raddr net.Addr
}

// newFDConn moves c's socket to a new fdConn and closes c.
func newFDConn(c net.Conn) (*fdConn, error) {
	f := &fdConn{fd: -1, nc: c, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	if err := f.attach(); err != nil {
		return nil, err
	}
	return f, nil
}

// attach takes the socket back from the net.Conn, for a loop.
func (c *fdConn) attach() error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		c.nc.Close()
		return errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	fd := -1
	if err == nil {
		cerr := rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
		if cerr != nil {
			err = cerr
		}
	}
	c.nc.Close()
	c.nc = nil
	if err != nil {
		return err
	}
	c.fd = fd
	c.readable, c.writable, c.hup = false, true, false // adding fd to epoll reports what is ready
	c.out, c.werr = c.out[:0], nil
	return nil
}

// detach hands the socket to a net.Conn, for a goroutine; the loop
// forgets it.
func (c *fdConn) detach() error {
	c.l.forget(c.fd)
	unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	c.fd = -1
	if err != nil {
		return err
	}
	c.nc = nc
	return nil
}

// sendPending writes, in a goroutine, what the loop could not send yet.
func (c *fdConn) sendPending() error {
	if len(c.out) == 0 || c.nc == nil {
		return nil
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *fdConn) Read(p []byte) (int, error) {
	if c.nc != nil {
		return c.nc.Read(p)
	}
	if !c.readable || len(p) == 0 {
		return 0, errAgain
	}
	n, e := rawIO(unix.SYS_READ, c.fd, p)
	switch {
	case e == unix.EAGAIN:
		c.readable = false
		return 0, errAgain
	case e != 0:
		return 0, e
	case n == 0:
		return 0, io.EOF
	case n < len(p) && !c.hup:
		// A short read emptied the socket: the next data brings an edge.
		// (Not so an end of stream that came with the data: no edge
		// follows it, so the next read must see it.)
		c.readable = false
	}
	return n, nil
}

// rawIO is read(2) or write(2) without telling the runtime (the socket
// does not block, and the loop owns its thread).
func rawIO(trap uintptr, fd int, p []byte) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// Write sends p now if the socket takes it, else keeps the rest for the
// loop to send when the socket is writable again.
func (c *fdConn) Write(p []byte) (int, error) {
	if c.nc != nil {
		return c.nc.Write(p)
	}
	if c.werr != nil {
		return 0, c.werr
	}
	n := len(p)
	if len(c.out) == 0 {
		if err := c.send(&p); err != nil {
			return 0, err
		}
	}
	c.out = append(c.out, p...)
	return n, nil
}

// send writes as much of *p as the socket takes.
func (c *fdConn) send(p *[]byte) error {
	for len(*p) > 0 && c.writable {
		n, e := rawIO(unix.SYS_WRITE, c.fd, *p)
		switch e {
		case 0:
		case unix.EAGAIN:
			c.writable = false
			return nil
		default:
			c.werr = e
			return e
		}
		*p = (*p)[n:]
		if len(*p) > 0 {
			c.writable = false // the socket buffer is full
		}
	}
	return nil
}

// flush sends what Write kept.
func (c *fdConn) flush() error {
	if c.werr != nil {
		return c.werr
	}
	if len(c.out) == 0 {
		return nil
	}
	p := c.out
	if err := c.send(&p); err != nil {
		return err
	}
	c.out = c.out[:copy(c.out, p)]
	if len(c.out) == 0 && cap(c.out) > 64<<10 {
		c.out = nil // an idle connection keeps no large buffer
	}
	return nil
}

func (c *fdConn) Close() error {
	if c.nc != nil {
		return c.nc.Close()
	}
	if c.fd < 0 {
		return net.ErrClosed
	}
	if c.l != nil {
		c.l.forget(c.fd)
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

func (c *fdConn) LocalAddr() net.Addr  { return c.laddr }
func (c *fdConn) RemoteAddr() net.Addr { return c.raddr }

func (c *fdConn) SetDeadline(t time.Time) error {
	if c.nc != nil {
		return c.nc.SetDeadline(t)
	}
	return nil
}

func (c *fdConn) SetReadDeadline(t time.Time) error {
	if c.nc != nil {
		return c.nc.SetReadDeadline(t)
	}
	return nil
}

func (c *fdConn) SetWriteDeadline(t time.Time) error {
	if c.nc != nil {
		return c.nc.SetWriteDeadline(t)
	}
	return nil
}

func (c *fdConn) CloseWrite() error {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("not a TCP connection")
}

// States of a client connection in a loop.
const (
	stRequest  = iota // waiting for or reading a request head
	stResponse        // the request is at the dyno: reading the response head
	stBody            // relaying the response body
	stFlush           // the dyno's part is done: the client's copy is going out
)

// lclient is a client connection in a loop and its exchange.
type lclient struct {
	fc      *fdConn
	h       *h1
	state   int
	started bool      // a head is coming; x.start is its first byte's time
	due     time.Time // when the current wait times out

	// the exchange in progress
	rt     *route
	t      *table
	be     *backend
	u      *upConn
	left   int64 // response body bytes still to come
	upKeep bool
}

// ent is what a loop knows about one of its descriptors.
type ent struct {
	fc *fdConn
	c  *lclient // the client, or the client waiting on this dyno connection
	u  *upConn  // a dyno connection (c nil: idle, in the loop's pool)
	be *backend
}

// evloop is one event loop: an epoll set and the goroutine that runs it.
type evloop struct {
	r      *Router
	epfd   int
	efd    int // eventfd: new connections in the inbox, or Close
	now    time.Time
	ents   []ent // by descriptor
	conns  map[*lclient]struct{}
	idle   map[*backend]*idleConns
	events []unix.EpollEvent
	posted []*lclient // to step again after the next poll: a long body yields

	mu    sync.Mutex
	inbox []*lclient
	shut  bool

	served atomic.Uint64    // requests the loop saw through
	handed [4]atomic.Uint64 // requests handed to a goroutine, by point
}

// loopCounts sums the loops' counters (for tests).
func (r *Router) loopCounts() (served uint64, handed [4]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.loops {
		served += l.served.Load()
		for i := range handed {
			handed[i] += l.handed[i].Load()
		}
	}
	return served, handed
}

// startLoops starts the event loops unless the config says none; r.mu
// is held and the router is open.
func (r *Router) startLoops() {
	if r.loops != nil || r.cfg.Loops < 0 || r.cfg.Loops == 0 && !loopsByDefault {
		return
	}
	n := r.cfg.Loops
	if n == 0 {
		n = baseProcs()
	}
	for range n {
		l, err := newLoop(r)
		if err != nil {
			break // the goroutine path serves
		}
		r.loops = append(r.loops, l)
		r.wg.Add(1)
		go l.run()
	}
}

func newLoop(r *Router) (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(efd)}
	err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev)
	if err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	return &evloop{r: r, epfd: epfd, efd: efd, conns: map[*lclient]struct{}{},
		idle: map[*backend]*idleConns{}, events: make([]unix.EpollEvent, 256)}, nil
}

// dispatch gives an accepted plain-HTTP connection to a loop; false
// means there is none and the goroutine path serves it.
func (r *Router) dispatch(c net.Conn, port string) bool {
	r.mu.Lock()
	loops := r.loops
	r.mu.Unlock()
	if len(loops) == 0 {
		return false
	}
	fc, err := newFDConn(c)
	if err != nil {
		return true // c is closed
	}
	lc := &lclient{fc: fc, h: r.newH1(fc, false, port)}
	i := r.nextLoop.Add(1)
	if !loops[i%uint32(len(loops))].post(lc) {
		lc.h.release()
	}
	return true
}

// post queues a client connection for the loop; false if it is shut.
func (l *evloop) post(lc *lclient) bool {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return false
	}
	if len(l.inbox) == 0 {
		l.signal()
	}
	l.inbox = append(l.inbox, lc)
	l.mu.Unlock()
	return true
}

// wake interrupts the loop's wait; l.mu orders it with shutdown, which
// closes efd.
func (l *evloop) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.shut {
		l.signal()
	}
}

// signal makes the loop's eventfd readable. Called with l.mu held.
func (l *evloop) signal() {
	one := [8]byte{1}
	unix.Write(l.efd, one[:])
}

// poll returns the events ready now or within wait. The loop's thread
// blocks in epoll_pwait itself, as nginx's and HAProxy's do: an event
// wakes it directly. While busy it does so without telling the runtime
// (RawSyscall), so it keeps its P and no other thread is woken to make
// up for it; the loops therefore add one P each to GOMAXPROCS
// (loopProcs), and the rest of the process keeps as many as it had. A
// quiet wait tells the runtime (Syscall): the P goes to other work, and
// the runtime's preemption, which would interrupt a RawSyscall every
// 10 ms, leaves the thread alone.
func (l *evloop) poll(wait time.Duration, quiet bool) int {
	ev := l.events
	call := unix.RawSyscall6
	if quiet {
		call = unix.Syscall6
	}
	r, _, e := call(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&ev[0])), uintptr(len(ev)), uintptr(wait/time.Millisecond), 0, 0)
	if e != 0 {
		return 0 // EINTR: a signal, such as the runtime's preemption
	}
	return int(r)
}

// busyWait is how long a loop waits for its next event before its wait
// becomes a quiet one.
const busyWait = 5 * time.Millisecond

// run is the loop. Waiting in the loop's own epoll_pwait, rather than
// parking the goroutine on Go's netpoller, was worth 4-17 % of a busy
// router's throughput on two cores in A/B runs: through the netpoller, each
// wake-up goes from the runtime's polling thread to a P to the loop, and
// the extra hand-offs between threads leave the CPUs idle for moments
// while requests wait (bench/README.md, session 6). The quiet wait ends
// every 100 ms for the timeouts.
func (l *evloop) run() {
	defer l.r.wg.Done()
	loopProcs(1)
	defer loopProcs(-1)
	tick := l.r.cfg.Now()
	for {
		var n int
		if len(l.posted) > 0 {
			n = l.poll(0, false)
		} else if n = l.poll(busyWait, false); n == 0 {
			n = l.poll(100*time.Millisecond, true)
		}
		l.now = l.r.cfg.Now()
		for i := range n {
			l.event(l.events[i])
		}
		if posted := l.posted; len(posted) > 0 {
			l.posted = nil
			for _, lc := range posted {
				if _, ok := l.conns[lc]; ok {
					l.step(lc)
				}
			}
			clear(posted)
			if l.posted == nil {
				l.posted = posted[:0]
			}
		}
		select {
		case <-l.r.done:
			l.shutdown()
			return
		default:
		}
		if l.now.Sub(tick) >= 100*time.Millisecond {
			tick = l.now
			l.sweep()
		}
	}
}

// procs is what the running loops added to GOMAXPROCS.
var procs struct {
	sync.Mutex
	held int
}

// loopProcs changes GOMAXPROCS by d as a loop starts (1) or ends (-1):
// a loop's thread keeps its P while it waits in epoll, so each loop
// brings its own.
func loopProcs(d int) {
	procs.Lock()
	defer procs.Unlock()
	procs.held += d
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + d)
}

// baseProcs is GOMAXPROCS without the loops' own Ps.
func baseProcs() int {
	procs.Lock()
	defer procs.Unlock()
	return runtime.GOMAXPROCS(0) - procs.held
}

func (l *evloop) event(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == l.efd {
		var b [8]byte
		unix.Read(l.efd, b[:])
		l.mu.Lock()
		in := l.inbox
		l.inbox = nil
		l.mu.Unlock()
		for _, lc := range in {
			l.adopt(lc)
		}
		return
	}
	if fd >= len(l.ents) || l.ents[fd].fc == nil {
		return
	}
	e := l.ents[fd]
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.fc.readable = true
	}
	if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.fc.hup = true
	}
	if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.fc.writable = true
	}
	if e.c != nil {
		l.step(e.c)
		return
	}
	// An idle pooled dyno connection: the dyno closed it, or sent what
	// nobody asked for.
	if !e.fc.readable {
		return
	}
	if _, err := e.u.br.Peek(1); err == errAgain {
		return
	}
	if s := l.idle[e.be]; s != nil {
		*s = slices.DeleteFunc(*s, func(u *upConn) bool { return u == e.u })
	}
	e.u.discard()
}

// add puts fc in the loop's epoll set.
func (l *evloop) add(fc *fdConn, e ent) bool {
	fc.l = l
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fc.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fc.fd, &ev); err != nil {
		return false
	}
	for fc.fd >= len(l.ents) {
		l.ents = append(l.ents, make([]ent, len(l.ents)+64)...)
	}
	e.fc = fc
	l.ents[fc.fd] = e
	return true
}

// forget drops fd, about to be closed, from the loop's table (a closed
// descriptor leaves the epoll set by itself).
func (l *evloop) forget(fd int) {
	if fd < len(l.ents) {
		l.ents[fd] = ent{}
	}
}

// adopt takes a client connection from the inbox.
func (l *evloop) adopt(lc *lclient) {
	if !l.add(lc.fc, ent{c: lc}) {
		lc.fc.l = nil
		lc.h.release()
		return
	}
	l.conns[lc] = struct{}{}
	lc.state, lc.started = stRequest, false
	lc.due = l.now.Add(l.r.cfg.KeepAlive)
	l.step(lc)
}

// step moves a client connection on as far as it can go without waiting.
func (l *evloop) step(lc *lclient) {
	for {
		var more bool
		switch lc.state {
		case stRequest:
			more = l.request(lc)
		case stResponse:
			more = l.response(lc)
		case stBody:
			more = l.body(lc)
		default:
			more = l.flushed(lc)
		}
		if !more {
			return
		}
	}
}

// buffered is what br holds, without reading.
func buffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// headComplete reports whether b holds a whole head (after the empty
// lines a request may start with), or a line ended by a bare LF, which
// head.read refuses without reading further.
func headComplete(b []byte, request bool) bool {
	for request && len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
		b = b[2:]
	}
	if bytes.Contains(b, []byte("\r\n\r\n")) {
		return true
	}
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// request reads a request head and, if the loop can serve it, sends it.
func (l *evloop) request(lc *lclient) bool {
	r := l.r
	h := lc.h
	x := &h.x
	br := h.br
	for !headComplete(buffered(br), true) {
		n := br.Buffered()
		if n == br.Size() {
			l.handOff(lc, atHead, 0) // longer than the loop's buffer
			return false
		}
		_, err := br.Peek(n + 1)
		if br.Buffered() > 0 && !lc.started {
			lc.started = true
			x.start = l.now
			lc.due = x.start.Add(r.cfg.HeadTimeout)
		}
		if err == errAgain {
			return false
		}
		if err != nil {
			if br.Buffered() == 0 {
				l.closeClient(lc) // the client left between requests
			} else {
				l.handOff(lc, atHead, 0) // the goroutine path answers a cut head
			}
			return false
		}
	}
	if !lc.started {
		x.start = l.now
	}
	lc.started = false
	x.resetOutcome()
	if err := h.req.read(br, requestLimits, false); err != nil || !h.parseRequest() {
		h.badRequest()
		x.keepAlive = false
		lc.state = stFlush
		return true
	}
	if x.body != nil || x.upgrade != nil || x.expect || x.expectBad ||
		r.cfg.ACME != nil && bytes.HasPrefix(x.path, []byte(acmePrefix)) {
		l.handOff(lc, atParsed, 0)
		return false
	}
	t := r.tab.Load()
	rt := t.lookup(x.host)
	if rt == nil || rt.maintenance || len(rt.backends) == 0 || rt.inflight.Load() >= rt.maxInflight() {
		l.handOff(lc, atParsed, 0)
		return false
	}
	be := pick(rt, nil, x.start.UnixNano())
	var u *upConn
	if be != nil {
		u = l.take(be, x.start)
	}
	if u == nil {
		l.handOff(lc, atParsed, 0) // the goroutine path dials, waits or fails
		return false
	}
	x.prepare()
	h.chunked = false
	x.route = rt
	rt.inflight.Add(1)
	if rt.p2c {
		be.inflight.Add(1)
	}
	x.connected, x.connect, x.dyno = true, 0, be.name
	lc.rt, lc.t, lc.be, lc.u = rt, t, be, u
	ufc := u.c.(*fdConn)
	l.ents[ufc.fd].c = lc
	x.writeRequestHead(u.bw)
	if err := u.bw.Flush(); err != nil {
		l.handOff(lc, atSent, 0) // the goroutine path replays or fails it
		return false
	}
	lc.state = stResponse
	lc.due = x.start.Add(r.cfg.FirstByte) // the request was sent at x.start
	return true
}

// take returns an idle connection to be: the loop's own, else one from
// the shared pool, moved into the loop.
func (l *evloop) take(be *backend, now time.Time) *upConn {
	if s := l.idle[be]; s != nil {
		if u := s.get(now, l.r.cfg.PoolIdle); u != nil {
			return u
		}
	}
	for {
		u := be.pool.get(now)
		if u == nil {
			return nil
		}
		fc, ok := u.c.(*fdConn)
		if ok {
			if err := fc.attach(); err != nil {
				u.discard()
				continue
			}
		} else {
			var err error
			if fc, err = newFDConn(u.c); err != nil {
				u.discard()
				continue
			}
			u.c = fc
			u.br.Reset(fc)
			u.bw.Reset(fc)
		}
		if !l.add(fc, ent{u: u, be: be}) {
			u.discard()
			continue
		}
		return u
	}
}

// response reads the response head and starts relaying a plain one.
func (l *evloop) response(lc *lclient) bool {
	h := lc.h
	x := &h.x
	u := lc.u
	if err := u.c.(*fdConn).flush(); err != nil {
		l.handOff(lc, atSent, 0)
		return false
	}
	for !headComplete(buffered(u.br), false) {
		n := u.br.Buffered()
		if n == u.br.Size() {
			l.handOff(lc, atSent, 0) // a head longer than the loop's buffer
			return false
		}
		if _, err := u.br.Peek(n + 1); err == errAgain {
			return false
		} else if err != nil {
			l.handOff(lc, atSent, 0) // closed or reset: a replay, or H13
			return false
		}
	}
	if b := buffered(u.br); len(b) > 9 && b[9] == '1' {
		l.handOff(lc, atSent, 0) // interim responses and 101
		return false
	}
	x.now = l.now
	status, err := x.readResponseHead(u)
	if err != nil {
		l.unpick(lc)
		x.received(lc.be, u, x.start, true, true, nil, nil, 0, err) // H17 or H25; u is closed
		lc.u = nil
		lc.state = stFlush
		return true
	}
	n, upKeep, err := x.respLength(status)
	if err != nil || n == -1 || n == -2 {
		l.handOff(lc, atResp, status) // chunked or until close: streamed by a goroutine
		return false
	}
	x.status = status
	x.respStarted = true
	lc.upKeep = upKeep
	lc.left = max(n, 0)
	h.writeHead(x, &x.resp, status, n)
	lc.state = stBody
	return true
}

// body relays the response body, reading the dyno only while the client
// keeps up.
func (l *evloop) body(lc *lclient) bool {
	h := lc.h
	x := &h.x
	u := lc.u
	var broken *hcode // H27 (the client) or H18 (the dyno) cut the relay
	for chunks := 0; lc.left > 0; chunks++ {
		if chunks == 8 {
			// Let the loop's other connections (and its clock) move.
			l.posted = append(l.posted, lc)
			return false
		}
		if len(lc.fc.out) > 0 {
			if err := lc.fc.flush(); err != nil {
				broken = h27
				break
			}
			if len(lc.fc.out) > 0 {
				lc.due = l.now.Add(l.r.cfg.Idle)
				return false
			}
		}
		if u.br.Buffered() == 0 {
			if err := h.bw.Flush(); err != nil {
				broken = h27
				break
			}
			if _, err := u.br.Peek(1); err == errAgain {
				lc.due = l.now.Add(l.r.cfg.Idle)
				return false
			} else if err != nil {
				broken = h18
				break
			}
		}
		m := min(int64(u.br.Buffered()), lc.left)
		p, _ := u.br.Peek(int(m))
		if _, err := h.bw.Write(p); err != nil {
			broken = h27
			break
		}
		u.br.Discard(int(m))
		x.bytes += m
		lc.left -= m
	}
	switch broken {
	case h27:
		x.code, x.sock, x.keepAlive = h27, "client", false
	case h18:
		x.code, x.sock, x.status, x.keepAlive = h18, "backend", 503, false
	}
	l.release(lc, broken == nil)
	lc.state = stFlush
	return true
}

// unpick ends the dyno's part in the p2c count and detaches the dyno
// connection from the client.
func (l *evloop) unpick(lc *lclient) {
	if lc.rt.p2c {
		lc.be.inflight.Add(-1)
	}
	if fc, ok := lc.u.c.(*fdConn); ok && fc.nc == nil && fc.fd >= 0 {
		l.ents[fc.fd].c = nil
	}
}

// release ends the exchange with the dyno: its connection goes back to
// the loop's idle list when it can carry another request.
func (l *evloop) release(lc *lclient, ok bool) {
	l.unpick(lc)
	u, be := lc.u, lc.be
	lc.u = nil
	x := &lc.h.x
	x.now = l.now
	if ok && lc.upKeep && u.br.Buffered() == 0 && l.idleOf(be).put(u, l.now) {
		u.reused = true
		return
	}
	u.discard()
}

// idleOf is the loop's stack of be's idle connections.
func (l *evloop) idleOf(be *backend) *idleConns {
	s := l.idle[be]
	if s == nil {
		s = new(idleConns)
		l.idle[be] = s
	}
	return s
}

// flushed sends the rest of the response; once the client has it all
// the request is logged and the connection waits for the next one.
func (l *evloop) flushed(lc *lclient) bool {
	h := lc.h
	x := &h.x
	err := h.bw.Flush()
	if err == nil {
		err = lc.fc.flush()
	}
	if err != nil {
		if x.respStarted && x.code == nil {
			x.code, x.sock = h27, "client"
		}
		x.keepAlive = false
	} else if len(lc.fc.out) > 0 {
		lc.due = l.now.Add(l.r.cfg.Idle)
		return false
	}
	l.done(lc)
	if !x.keepAlive {
		l.closeClient(lc)
		return false
	}
	lc.state = stRequest
	lc.due = l.now.Add(l.r.cfg.KeepAlive)
	return true
}

// done logs the request and counts it.
func (l *evloop) done(lc *lclient) {
	if lc.rt == nil {
		return
	}
	x := &lc.h.x
	x.end = l.now
	if x.respStarted {
		x.service, x.serviced = x.end.Sub(x.start), true
	}
	x.finish(lc.rt)
	l.served.Add(1)
	lc.rt, lc.t, lc.be = nil, nil, nil
}

// closeClient closes a client connection and whatever it was using.
func (l *evloop) closeClient(lc *lclient) {
	if lc.u != nil {
		l.unpick(lc)
		lc.u.discard()
		lc.u = nil
	}
	delete(l.conns, lc)
	lc.h.release()
}

// handOff gives the request to a goroutine at the given point; the
// connection comes back to a loop when that request is done.
func (l *evloop) handOff(lc *lclient, at, status int) {
	r := l.r
	h := lc.h
	x := &h.x
	l.handed[at].Add(1)
	delete(l.conns, lc)
	if lc.u != nil {
		l.unpick(lc)
	}
	u, be, rt, t, sent := lc.u, lc.be, lc.rt, lc.t, x.start
	lc.u, lc.be, lc.rt, lc.t = nil, nil, nil, nil
	if u != nil {
		if err := u.c.(*fdConn).detach(); err != nil {
			u.discard()
			u = nil
		} else {
			u.rdl = time.Time{}
		}
	}
	if err := lc.fc.detach(); err != nil || u == nil && at >= atSent || !r.trackConn(lc.fc, true) {
		if u != nil {
			u.discard()
		}
		if rt != nil {
			x.finish(rt)
		}
		lc.h.release()
		return
	}
	h.rdl, h.lastW = time.Time{}, time.Time{}
	if at >= atSent {
		x.now = sent
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// What the loop could not send yet goes first; a failure shows
		// in what follows (the client's writes, the dyno's answer).
		lc.fc.sendPending()
		if u != nil {
			u.c.(*fdConn).sendPending()
		}
		var keep bool
		switch at {
		case atHead:
			keep = h.serveHead()
		case atParsed:
			keep = h.serveParsed()
		case atSent:
			x.proxyFrom(t, rt, be, u)
			x.finish(rt)
			keep = h.afterRun()
		case atResp:
			x.received(be, u, sent, true, true, nil, nil, status, nil)
			x.finish(rt)
			keep = h.afterRun()
		}
		r.trackConn(lc.fc, false)
		if keep && !h.hijacked && lc.fc.attach() == nil {
			// Back to the same loop: its idle dyno connections are there.
			if l.post(lc) {
				return
			}
			unix.Close(lc.fc.fd)
			lc.fc.fd = -1
		}
		h.release()
	}()
}

// sweep enforces the timeouts (every 100 ms: a timeout may fire that much
// late) and drops idle dyno connections past PoolIdle or of dynos gone.
func (l *evloop) sweep() {
	r := l.r
	for lc := range l.conns {
		if l.now.Before(lc.due) {
			continue
		}
		x := &lc.h.x
		switch lc.state {
		case stRequest:
			l.closeClient(lc) // idle past KeepAlive, or a head slower than HeadTimeout
		case stResponse:
			l.handOff(lc, atSent, 0) // the goroutine path reports H12
		case stBody:
			if len(lc.fc.out) > 0 {
				x.code, x.sock = h27, "client"
			} else {
				x.code, x.status = h15, 503
			}
			x.keepAlive = false
			l.release(lc, false)
			l.done(lc)
			if lc.h.bw.Flush() == nil {
				lc.fc.flush() // what came, as the goroutine path sends it
			}
			l.closeClient(lc)
		default:
			if x.respStarted && x.code == nil {
				x.code, x.sock = h27, "client"
			}
			l.done(lc)
			l.closeClient(lc)
		}
	}
	for be, s := range l.idle {
		closed := be.pool.isClosed()
		*s = slices.DeleteFunc(*s, func(u *upConn) bool {
			if closed || l.now.Sub(u.idle) >= r.cfg.PoolIdle {
				u.discard()
				return true
			}
			return false
		})
		if len(*s) == 0 {
			delete(l.idle, be) // a backend gone for good leaves no entry
		}
	}
}

// shutdown closes every connection of the loop (Router.Close).
func (l *evloop) shutdown() {
	l.mu.Lock()
	l.shut = true
	in := l.inbox
	l.inbox = nil
	unix.Close(l.efd)
	l.mu.Unlock()
	for _, lc := range in {
		lc.h.release()
	}
	for lc := range l.conns {
		l.closeClient(lc)
	}
	for be, s := range l.idle {
		for _, u := range *s {
			u.discard()
		}
		delete(l.idle, be)
	}
	unix.Close(l.epfd)
}
