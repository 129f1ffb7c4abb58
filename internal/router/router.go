// Package router is Skiff's HTTP(S) router: it maps a request's Host to an
// app and proxies it to one of the app's up web dynos with Heroku's
// semantics (headers, timeouts, H-codes, router log lines).
//
// HTTP/1.1 is parsed by the router itself, strictly, so that ambiguous
// messages (the request-smuggling shapes) are refused rather than
// normalised, and so that the hot path does not allocate per request.
// HTTP/2 (over TLS) goes through golang.org/x/net/http2 and then the same
// forwarding code. Dynos always receive HTTP/1.1 over pooled keep-alive
// connections.
package router

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Config configures a Router. Zero durations take Heroku's values; tests
// set milliseconds.
type Config struct {
	// Log receives one router log line per request (source heroku, dyno
	// router). It is called from a single goroutine fed by a bounded
	// queue (batches handed over every few milliseconds): when the queue
	// is full lines are dropped and counted.
	Log func(appID, app, line string)
	// GetCertificate chooses the certificate for a TLS client hello.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ACME, if set, answers plain-HTTP requests to
	// /.well-known/acme-challenge/ before routing.
	ACME http.Handler

	ConnectTimeout time.Duration // 5 s: then the dyno is quarantined and another tried (H19)
	Quarantine     time.Duration // 5 s
	FirstByte      time.Duration // 30 s from request sent to first response byte (H12)
	Idle           time.Duration // 55 s rolling idle on either side (H15/H28)
	BootWait       time.Duration // 75 s waiting for a starting dyno (H20) or an unquarantined one (H99)
	HeadTimeout    time.Duration // 10 s for a client to send a whole request head (slowloris)
	KeepAlive      time.Duration // 60 s idle client connection between requests
	PoolIdle       time.Duration // 90 s idle pooled connection to a dyno
	MaxAttempts    int           // 10 connection attempts over different dynos
	LogQueue       int           // 8192 lines
	// Loops is the number of event loops serving plain HTTP/1.1 (Linux;
	// see loop_linux.go): 0 is one per GOMAXPROCS, < 0 none, every
	// connection then has its own goroutine.
	Loops int
	Now   func() time.Time
}

// Router routes requests by Host to web dynos.
type Router struct {
	cfg    Config
	tab    atomic.Pointer[table]
	states states
	logs   *logQueue
	drops  atomic.Uint64
	h2     http2.Server

	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[net.Conn]bool
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
	loops     []*evloop
	nextLoop  atomic.Uint32

	noRoute atomic.Uint64 // requests for unknown hosts
}

// New returns a router with an empty table.
func New(cfg Config) *Router {
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 5*time.Second)
	cfg.Quarantine = cmp.Or(cfg.Quarantine, 5*time.Second)
	cfg.FirstByte = cmp.Or(cfg.FirstByte, 30*time.Second)
	cfg.Idle = cmp.Or(cfg.Idle, 55*time.Second)
	cfg.BootWait = cmp.Or(cfg.BootWait, 75*time.Second)
	cfg.HeadTimeout = cmp.Or(cfg.HeadTimeout, 10*time.Second)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, 60*time.Second)
	cfg.PoolIdle = cmp.Or(cfg.PoolIdle, 90*time.Second)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 10)
	cfg.LogQueue = cmp.Or(cfg.LogQueue, 8192)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Router{cfg: cfg, listeners: map[net.Listener]bool{}, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	r.tab.Store(r.states.build(nil, cfg.PoolIdle))
	r.h2.IdleTimeout = cfg.KeepAlive
	if cfg.Log != nil {
		r.logs = newLogQueue(cfg.LogQueue)
		r.wg.Add(1)
		go r.logLoop()
	}
	return r
}

// SetRoutes replaces the routing table. Requests in flight keep the table
// they started with; requests waiting for a dyno to boot look again.
func (r *Router) SetRoutes(routes []Route) {
	t := r.states.build(routes, r.cfg.PoolIdle)
	old := r.tab.Swap(t)
	close(old.changed)
}

// TLSConfig is the server TLS configuration: TLS 1.2 and 1.3, AEAD
// ciphers with forward secrecy, h2 and http/1.1 by ALPN.
func (r *Router) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.cfg.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
}

// Serve accepts plain HTTP connections on l until Close.
func (r *Router) Serve(l net.Listener) error { return r.serve(l, false) }

// ServeTLS accepts TLS connections on l (a plain TCP listener) until Close.
func (r *Router) ServeTLS(l net.Listener) error { return r.serve(l, true) }

var errClosed = errors.New("router closed")

func (r *Router) serve(l net.Listener, secure bool) error {
	if !r.track(l, true) {
		return errClosed
	}
	defer r.track(l, false)
	if !secure {
		r.mu.Lock()
		if !r.closed {
			r.startLoops()
		}
		r.mu.Unlock()
	}
	var tc *tls.Config
	if secure {
		tc = r.TLSConfig()
	}
	port := "80"
	if secure {
		port = "443"
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if r.isClosed() {
				return errClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !secure && r.dispatch(c, port) {
			continue
		}
		if !r.trackConn(c, true) {
			c.Close()
			return errClosed
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.trackConn(c, false)
			if secure {
				r.serveTLSConn(c, tc, port)
			} else {
				r.serveConn(c, false, port)
			}
		}()
	}
}

func (r *Router) serveTLSConn(c net.Conn, tc *tls.Config, port string) {
	t := tls.Server(c, tc)
	c.SetDeadline(r.cfg.Now().Add(r.cfg.HeadTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.HeadTimeout)
	err := t.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	if t.ConnectionState().NegotiatedProtocol == "h2" {
		h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serveH2(w, req, port) })
		r.h2.ServeConn(t, &http2.ServeConnOpts{Handler: h, BaseConfig: &http.Server{}})
		t.Close()
		return
	}
	r.serveConn(t, true, port)
}

func (r *Router) track(l net.Listener, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		if r.closed {
			return false
		}
		r.listeners[l] = true
	} else {
		delete(r.listeners, l)
	}
	return true
}

func (r *Router) trackConn(c net.Conn, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		if r.closed {
			return false
		}
		r.conns[c] = true
	} else {
		delete(r.conns, c)
	}
	return true
}

func (r *Router) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops the listeners, closes every client connection and pooled
// dyno connection, flushes the log queue and returns when all is done.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for l := range r.listeners {
		l.Close()
	}
	for c := range r.conns {
		c.Close()
	}
	loops := r.loops
	r.mu.Unlock()
	close(r.done)
	for _, l := range loops {
		l.wake()
	}
	r.SetRoutes(nil)
	r.wg.Wait()
	return nil
}

// DroppedLogLines is how many router log lines were dropped because the
// log sink did not keep up.
func (r *Router) DroppedLogLines() uint64 { return r.drops.Load() }
