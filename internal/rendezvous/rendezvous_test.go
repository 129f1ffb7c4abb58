package rendezvous

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pki"
)

// start runs a server on a kernel-chosen loopback port with a certificate
// from a fresh local CA, and returns it with a client TLS config that
// trusts only that CA.
func start(t *testing.T, expiry time.Duration) (*Server, *tls.Config) {
	t.Helper()
	ca, err := pki.Open(filepath.Join(t.TempDir(), "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Listener: ln, Expiry: expiry, Handshake: 5 * time.Second,
		Certificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
}

// dial connects as the heroku CLI does and sends line.
func dial(t *testing.T, sess *Session, cfg *tls.Config, line string) *tls.Conn {
	t.Helper()
	u, err := url.Parse(sess.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", u.Host, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	return c
}

// open opens a session and returns it with its secret.
func open(t *testing.T, s *Server) (*Session, string) {
	t.Helper()
	sess, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	return sess, secretOf(t, sess)
}

func secretOf(t *testing.T, sess *Session) string {
	t.Helper()
	u, err := url.Parse(sess.URL)
	if err != nil || u.Scheme != "rendezvous" || len(u.Path) != 33 {
		t.Fatalf("attach URL %q: want rendezvous://HOST:PORT/<32 hex digits> (%v)", sess.URL, err)
	}
	return u.Path[1:]
}

// refused checks that the server closed c without sending anything.
func refused(t *testing.T, c *tls.Conn) {
	t.Helper()
	b, err := io.ReadAll(c)
	if len(b) > 0 || (err != nil && !errors.Is(err, io.EOF) && !isReset(err)) {
		t.Errorf("refused connection read %q, %v; want nothing and a close", b, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func TestAttach(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, time.Minute)
	sess, secret := open(t, s)
	got := make(chan net.Conn, 1)
	go func() {
		c, err := sess.Wait(context.Background())
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		got <- c
	}()
	// The CLI sends the path with the URL's query, if any.
	client := dial(t, sess, cfg, secret+"?tty=1\r\n")
	greeting := make([]byte, len(Greeting))
	if _, err := io.ReadFull(client, greeting); err != nil || string(greeting) != Greeting {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	dyno := <-got
	if dyno == nil {
		t.FailNow()
	}
	defer dyno.Close()
	// Raw bytes both ways from then on, 0x04 included.
	if _, err := io.WriteString(client, "echo hi\n\x04"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 9)
	dyno.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(dyno, b); err != nil || string(b) != "echo hi\n\x04" {
		t.Fatalf("dyno read %q, %v", b, err)
	}
	io.WriteString(dyno, "hi\r\n")
	dyno.Close()
	if rest, _ := io.ReadAll(client); string(rest) != "hi\r\n" {
		t.Errorf("client read %q after the greeting", rest)
	}

	// The secret was good once.
	refused(t, dial(t, sess, cfg, secret+"\r\n"))
}

func TestRefused(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, time.Minute)
	sess, secret := open(t, s)
	for _, line := range []string{
		"0123456789abcdef0123456789abcdef\r\n", // another secret
		secret[:31] + "\r\n",                   // a prefix of it
		"\r\n",
		string(make([]byte, 2000)), // no line at all
	} {
		refused(t, dial(t, sess, cfg, line))
	}
	// Plain TCP (no TLS) gets no greeting either.
	u, _ := url.Parse(sess.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, secret+"\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); len(b) > 0 && string(b) == Greeting {
		t.Errorf("plain TCP got the greeting")
	}
	c.Close()

	// The session still waits for its own client.
	go func() { dial(t, sess, cfg, secret+"\r\n") }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dyno, err := sess.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait after refused attempts: %v", err)
	}
	dyno.Close()
}

func TestExpiryAndClose(t *testing.T) {
	t.Parallel()
	s, cfg := start(t, 50*time.Millisecond)
	expired, _ := open(t, s)
	if _, err := expired.Wait(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("Wait of an expired session: %v, want ErrExpired", err)
	}
	refused(t, dial(t, expired, cfg, secretOf(t, expired)+"\r\n"))

	closed, _ := open(t, s)
	closed.Close()
	if _, err := closed.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait of a closed session: %v, want ErrClosed", err)
	}
	refused(t, dial(t, closed, cfg, secretOf(t, closed)+"\r\n"))

	cancelled, _ := open(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cancelled.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v", err)
	}
	refused(t, dial(t, cancelled, cfg, secretOf(t, cancelled)+"\r\n"))
}

func TestHostInURL(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("none") }
	for _, tc := range []struct{ host, want string }{
		{"", "rendezvous://127.0.0.1:"},
		{"run.example.org", "rendezvous://run.example.org:"},
		{"::1", "rendezvous://[::1]:"},
	} {
		s, err := New(Config{Listener: ln, Host: tc.host, Certificate: cert})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.Open()
		if err != nil {
			t.Fatal(err)
		}
		if u := sess.URL; len(u) < len(tc.want) || u[:len(tc.want)] != tc.want {
			t.Errorf("host %q: URL %q, want prefix %q", tc.host, u, tc.want)
		}
		sess.Close()
	}
}
