// Package rendezvous is the service `heroku run` attaches to: the meeting
// point of a client and the one-off dyno started for it.
//
// The Platform API answers `POST /apps/{app}/dynos` with attach:true with
// an attach_url, rendezvous://HOST:PORT/SECRET. The client connects to
// HOST:PORT with TLS (it always verifies the certificate), writes the
// secret and "\r\n", and discards the first chunk the server sends. The
// server sends "rendezvous\r\n" alone, pauses so that no output can share
// that chunk, and from then on the connection carries the dyno's terminal,
// raw bytes both ways. A secret is good for one connection, and only until
// its session expires; a connection with any other first line is closed
// without a byte written.
package rendezvous

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Greeting is the line the server sends, alone, once a client's secret
// matched.
const Greeting = "rendezvous\r\n"

// Config configures a Server.
type Config struct {
	// Listener accepts the clients' TCP connections.
	Listener net.Listener
	// Host is the host name (or address) in attach URLs; the certificate
	// must be valid for it. Default: the listener's host (loopback when it
	// listens on every address).
	Host string
	// Certificate returns the server's certificate for each handshake
	// (tls.Config.GetCertificate).
	Certificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Expiry is how long a session waits for its client (default 60 s).
	Expiry time.Duration
	// Handshake bounds the TLS handshake and the secret line (default 10 s).
	Handshake time.Duration
	// Pause is how long the server waits after the greeting before the
	// session's connection carries anything else (default 50 ms): the
	// heroku CLI throws away its whole first read, whatever it holds.
	Pause time.Duration
	Log   *slog.Logger
}

// Errors a session's Wait returns.
var (
	ErrExpired = errors.New("rendezvous: nobody attached in time")
	ErrClosed  = errors.New("rendezvous: session closed")
)

// maxLine bounds the secret line a client sends: 32 hex digits, an
// optional query and "\r\n" fit easily.
const maxLine = 512

// Server accepts rendezvous connections and hands each to its session.
type Server struct {
	cfg  Config
	tls  *tls.Config
	port string

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*Session // by the SHA-256 of the secret
	closed   bool
	wg       sync.WaitGroup
}

// New returns a server on cfg.Listener; Serve runs it.
func New(cfg Config) (*Server, error) {
	if cfg.Listener == nil || cfg.Certificate == nil {
		return nil, errors.New("rendezvous: a listener and a certificate are required")
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 60 * time.Second
	}
	if cfg.Handshake <= 0 {
		cfg.Handshake = 10 * time.Second
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 50 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	host, port, err := net.SplitHostPort(cfg.Listener.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("rendezvous: listener address: %w", err)
	}
	if cfg.Host == "" {
		cfg.Host = host
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			cfg.Host = "127.0.0.1"
		}
	}
	return &Server{cfg: cfg, port: port, sessions: map[[sha256.Size]byte]*Session{},
		tls: &tls.Config{GetCertificate: cfg.Certificate, MinVersion: tls.VersionTLS12}}, nil
}

// Host is the host name attach URLs carry.
func (s *Server) Host() string { return s.cfg.Host }

// Serve accepts connections until ctx is done or the listener fails, then
// closes the listener, ends every session and waits for the connections
// being handled.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.cfg.Listener.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = s.cfg.Listener.Accept()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
	s.cfg.Listener.Close()
	s.mu.Lock()
	s.closed = true
	for k, sess := range s.sessions {
		delete(s.sessions, k)
		sess.end(ErrClosed)
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("rendezvous: %w", err)
}

// Session is one attach_url waiting for its client.
type Session struct {
	// URL is the attach_url: rendezvous://HOST:PORT/SECRET.
	URL string

	srv   *Server
	key   [sha256.Size]byte
	timer *time.Timer
	ch    chan net.Conn // the greeted connection, once
	done  chan struct{} // closed when the session ended without one
	err   error         // why, once done is closed
	once  sync.Once
}

// Open makes a new single-use secret and the session that waits for it.
func (s *Server) Open() (*Session, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	secret := hex.EncodeToString(b)
	host := s.cfg.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	sess := &Session{URL: "rendezvous://" + host + ":" + s.port + "/" + secret, srv: s,
		key: sha256.Sum256([]byte(secret)), ch: make(chan net.Conn, 1), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.sessions[sess.key] = sess
	sess.timer = time.AfterFunc(s.cfg.Expiry, func() { sess.forget(ErrExpired) })
	return sess, nil
}

// Wait blocks until the client has connected and been greeted, and returns
// its connection (the caller closes it); or until the session expired,
// was closed, or ctx is done.
func (sess *Session) Wait(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-sess.ch:
		return c, nil
	case <-sess.done:
		return nil, sess.err
	case <-ctx.Done():
		sess.forget(ctx.Err())
		// A client that matched just before may be being greeted: it
		// is not wanted any more.
		select {
		case c := <-sess.ch:
			c.Close()
			return nil, ctx.Err()
		case <-sess.done:
			return nil, sess.err
		}
	}
}

// Close forgets the secret: no client can attach with it any more.
func (sess *Session) Close() { sess.forget(ErrClosed) }

// forget removes the session if no client has claimed it yet; it then
// ends with err.
func (sess *Session) forget(err error) {
	s := sess.srv
	s.mu.Lock()
	mine := s.sessions[sess.key] == sess
	if mine {
		delete(s.sessions, sess.key)
	}
	s.mu.Unlock()
	if mine {
		sess.end(err)
	}
}

func (sess *Session) end(err error) {
	sess.once.Do(func() {
		if sess.timer != nil {
			sess.timer.Stop()
		}
		sess.err = err
		close(sess.done)
	})
}

// claim removes and returns the session for secret, if one waits for it:
// a secret is good for one connection.
func (s *Server) claim(secret string) *Session {
	key := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[key]
	if sess != nil {
		delete(s.sessions, key)
		sess.timer.Stop()
	}
	return sess
}

// handle runs the handshake of one connection: TLS, the secret line, the
// greeting. A connection whose secret matches no session is closed without
// a byte written, whatever it sent.
func (s *Server) handle(raw net.Conn) {
	c := tls.Server(raw, s.tls)
	c.SetDeadline(time.Now().Add(s.cfg.Handshake))
	secret, err := readSecret(c)
	if err != nil {
		s.cfg.Log.Debug("rendezvous: refused", "remote", raw.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	sess := s.claim(secret)
	if sess == nil {
		s.cfg.Log.Info("rendezvous: refused a connection with an unknown or used secret", "remote", raw.RemoteAddr().String())
		c.Close()
		return
	}
	if _, err := c.Write([]byte(Greeting)); err != nil {
		sess.end(fmt.Errorf("rendezvous: greeting the client: %w", err))
		c.Close()
		return
	}
	time.Sleep(s.cfg.Pause)
	c.SetDeadline(time.Time{})
	sess.ch <- c
}

// readSecret reads the client's first line, the URL's path without its
// "/" and with its query, and returns the secret (the path).
func readSecret(c *tls.Conn) (string, error) {
	if err := c.Handshake(); err != nil {
		return "", err
	}
	// Read byte by byte, so that nothing the client sends after its line
	// is consumed here (the TLS record stays buffered in c).
	var line []byte
	var b [1]byte
	for len(line) <= maxLine {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			secret, _, _ := strings.Cut(strings.TrimSuffix(string(line), "\r"), "?")
			return secret, nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("first line longer than " + strconv.Itoa(maxLine) + " bytes")
}
