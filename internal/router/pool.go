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
		u.c.Close()
	}
	p.mu.Unlock()
	return nil
}

func (p *pool) put(u *upConn, now time.Time) {
	u.idle = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerBackend {
		p.mu.Unlock()
		u.c.Close()
		return
	}
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, u := range idle {
		u.c.Close()
	}
}

var (
	upReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8192) }}
	upWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8192) }}
)

func newUpConn(c net.Conn) *upConn {
	br := upReaders.Get().(*bufio.Reader)
	br.Reset(c)
	bw := upWriters.Get().(*bufio.Writer)
	bw.Reset(c)
	return &upConn{c: c, br: br, bw: bw}
}

// discard closes a connection that cannot be reused.
func (u *upConn) discard() {
	u.c.Close()
	u.br.Reset(nil)
	u.bw.Reset(nil)
	upReaders.Put(u.br)
	upWriters.Put(u.bw)
}
