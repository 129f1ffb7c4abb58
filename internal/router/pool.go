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

// pool holds a backend's idle connections, most recently used first.
type pool struct {
	mu          sync.Mutex
	idle        []*upConn
	closed      bool
	idleTimeout time.Duration
}

const maxIdlePerBackend = 512

func (p *pool) get(now time.Time) *upConn {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		u := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(u.idle) < p.idleTimeout {
			p.mu.Unlock()
			u.reused = true
			return u
		}
		u.discard()
	}
	p.mu.Unlock()
	return nil
}

func (p *pool) put(u *upConn, now time.Time) {
	u.idle = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerBackend {
		p.mu.Unlock()
		u.discard()
		return
	}
	p.idle = append(p.idle, u)
	p.mu.Unlock()
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
