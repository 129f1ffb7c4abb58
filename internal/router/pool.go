package router

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// upConn is a keep-alive HTTP/1.1 connection to a dyno.
type upConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idle   time.Time
	reused bool
	rdl    time.Time // the read deadline last set; zero: unknown
}

// idleConns is a stack of a backend's idle connections, the most
// recently used last: the pool's (under its mutex) and each event loop's.
type idleConns []*upConn

const maxIdlePerBackend = 512

// get pops the most recently used connection idle for less than ttl,
// discarding the older ones it passes on the way; nil if none.
func (s *idleConns) get(now time.Time, ttl time.Duration) *upConn {
	for n := len(*s); n > 0; n = len(*s) {
		u := (*s)[n-1]
		(*s)[n-1] = nil
		*s = (*s)[:n-1]
		if now.Sub(u.idle) < ttl {
			return u
		}
		u.discard()
	}
	return nil
}

// put pushes u, idle since now, unless the stack is full: then it is the
// caller's to discard.
func (s *idleConns) put(u *upConn, now time.Time) bool {
	if len(*s) >= maxIdlePerBackend {
		return false
	}
	u.idle = now
	*s = append(*s, u)
	return true
}

// pool holds a backend's idle connections for the goroutine path.
type pool struct {
	mu          sync.Mutex
	idle        idleConns
	closed      bool
	idleTimeout time.Duration
}

func (p *pool) get(now time.Time) *upConn {
	p.mu.Lock()
	u := p.idle.get(now, p.idleTimeout)
	p.mu.Unlock()
	if u != nil {
		u.reused = true
	}
	return u
}

func (p *pool) put(u *upConn, now time.Time) {
	p.mu.Lock()
	ok := !p.closed && p.idle.put(u, now)
	p.mu.Unlock()
	if !ok {
		u.discard()
	}
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, u := range idle {
		u.discard()
	}
}

var (
	upReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8192) }}
	upWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8192) }}
)

func newUpConn(c net.Conn) *upConn {
	u := &upConn{c: c}
	u.br = upReaders.Get().(*bufio.Reader)
	u.br.Reset(c)
	u.bw = upWriters.Get().(*bufio.Writer)
	u.bw.Reset(c)
	return u
}

// setDeadlineLazily sets c's read deadline to d unless the one set last
// (cur) is already within timeout/64 (at most 100 ms) before d: on a busy
// keep-alive connection the deadline then moves a few times a second
// instead of twice per request (each move reprograms a runtime timer). A
// timeout may thus fire up to that much early. It returns the deadline
// in force.
func setDeadlineLazily(c net.Conn, cur, d time.Time, timeout time.Duration) time.Time {
	slack := min(timeout/64, 100*time.Millisecond)
	if !cur.IsZero() && !cur.After(d) && d.Sub(cur) <= slack {
		return cur
	}
	c.SetReadDeadline(d)
	return d
}

// discard closes a connection that cannot be reused.
func (u *upConn) discard() {
	u.c.Close()
	u.br.Reset(nil)
	u.bw.Reset(nil)
	upReaders.Put(u.br)
	upWriters.Put(u.bw)
}
