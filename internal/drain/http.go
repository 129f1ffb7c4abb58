package drain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/logplex"
)

// UserAgent is what Skiff's HTTPS drains send, in Logplex's form.
const UserAgent = "Logplex/skiff"

// httpLines bounds the lines of one HTTPS batch (besides BatchBytes).
const httpLines = 2048

// httpSender posts application/logplex-1 batches to an https (or http)
// drain.
type httpSender struct {
	client     *http.Client
	endpoint   string // the URL without its userinfo
	user, pass string
	auth       bool
}

func newHTTPSender(d *drain) *httpSender {
	u := *d.u
	s := &httpSender{}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		s.auth = true
		u.User = nil
	}
	s.endpoint = u.String()
	dialer := &net.Dialer{Timeout: d.m.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: dialer.DialContext,
		// HTTP/1.1 over TLS, as Logplex posts: the connection is ours
		// (tlsConn) so that bodies are copied through a pooled buffer.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, dialer, d.m.tls, network, addr)
		},
		MaxIdleConnsPerHost: httpConns,
		IdleConnTimeout:     144 * time.Second,
	}
	s.client = &http.Client{Transport: tr, Timeout: d.m.cfg.SendTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s
}

// dialTLS connects to an HTTPS drain, verifying its certificate against
// cfg (the drains' roots) for the host of addr.
func dialTLS(ctx context.Context, dialer *net.Dialer, cfg *tls.Config, network, addr string) (net.Conn, error) {
	c, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, dialer.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, err
	}
	return tlsConn{tc}, nil
}

// tlsConn gives a TLS connection a ReadFrom that copies through a pooled
// buffer: net/http's Transport hands each request body to the
// connection's ReadFrom, and without one io.Copy allocates 32 KB per
// batch.
type tlsConn struct{ *tls.Conn }

func (c tlsConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{c.Conn}, r, *bp)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// httpConns is how many batches an HTTPS drain has in flight at most,
// each on its own connection (or HTTP/2 stream), as Logplex sends
// concurrently: one sequential connection of ~100 KB POSTs does not keep
// up with a busy app. Batches may therefore arrive out of order (Logplex
// does not promise order either; a batch's lines are in order), except
// around an L10: see run.
const httpConns = 4

// httpSlot is one batch in flight and its reused buffers.
type httpSlot struct {
	i     int // the buffer's slot
	lines []logplex.Line
	body  []byte
}

// run takes batches from the buffer and posts each in its own goroutine,
// httpConns at most at once. A batch that starts with an L10 waits for
// the batches in flight and is posted alone, so that the L10 reaches the
// receiver before any line that followed the loss.
func (s *httpSender) run(d *drain) {
	defer s.client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait() // the posts in flight end: d.ctx is done
	var st stamp    // the batches are rendered here, one at a time
	free := make(chan *httpSlot, httpConns)
	for i := range httpConns {
		free <- &httpSlot{i: i}
	}
	for {
		if !d.buf.pending() {
			if !d.wait() {
				return
			}
			if !s.gather(d) {
				return
			}
			continue
		}
		var sl *httpSlot
		select {
		case <-d.ctx.Done():
			return
		case sl = <-free:
		}
		var l10 loss
		sl.lines, l10 = d.buf.take(sl.i, sl.lines[:0], httpLines, d.m.cfg.BatchBytes, d.now())
		if len(sl.lines) == 0 { // nothing after all
			d.buf.lost(sl.i, loss{}, 0, 0)
			free <- sl
			continue
		}
		sl.body = sl.body[:0]
		for i := range sl.lines {
			sl.body = appendHTTP(sl.body, &sl.lines[i], &st)
		}
		if l10.n == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.deliver(d, sl, l10)
				free <- sl
			}()
			continue
		}
		held := []*httpSlot{sl}
		for len(held) < httpConns {
			select {
			case <-d.ctx.Done():
				return
			case x := <-free:
				held = append(held, x)
			}
		}
		if !s.deliver(d, sl, l10) {
			return
		}
		for _, x := range held {
			free <- x
		}
	}
}

// deliver posts a slot's batch, retrying as Logplex does; false when the
// drain closed meanwhile.
func (s *httpSender) deliver(d *drain, sl *httpSlot, l10 loss) bool {
	defer clear(sl.lines)
	id := frameID()
	for attempt := 1; ; attempt++ {
		status, err := s.post(d, sl.body, len(sl.lines), id)
		if err == nil && status/100 == 2 {
			d.sent(sl.i, sl.lines, l10)
			return true
		}
		if err == nil && status/100 == 4 && status != http.StatusTooManyRequests {
			// Refused for good: Logplex drops the frame.
			d.m.log.Debug("drains: HTTPS drain refused a batch", "drain", d.token, "status", status)
			d.c.errors.Add(1)
			d.lost(sl.i, sl.lines, l10)
			return true
		}
		d.m.log.Debug("drains: HTTPS delivery failed", "drain", d.token, "status", status, "err", err, "attempt", attempt)
		if !d.failed(sl.i) {
			d.lost(sl.i, sl.lines, l10)
			return false
		}
		if attempt >= d.m.cfg.Attempts {
			d.lost(sl.i, sl.lines, l10)
			return true
		}
	}
}

// gather waits up to FlushInterval for more lines, for fewer and fuller
// batches, but no longer than until half the buffer is full: a burst is
// sent at once rather than dropped. It returns false when the drain closes.
func (s *httpSender) gather(d *drain) bool {
	t := time.NewTimer(d.m.cfg.FlushInterval)
	defer t.Stop()
	for d.buf.len() < d.m.cfg.Buffer/2 {
		select {
		case <-d.ctx.Done():
			return false
		case <-t.C:
			return true
		case <-d.buf.wake:
		}
	}
	return true
}

// post sends one batch; the same frame id on every attempt lets the
// receiver drop a batch it already has.
func (s *httpSender) post(d *drain, body []byte, n int, id string) (int, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Msg-Count", strconv.Itoa(n))
	req.Header.Set("Logplex-Frame-Id", id)
	req.Header.Set("Logplex-Drain-Token", d.token)
	req.Header.Set("User-Agent", UserAgent)
	if s.auth {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if badCertificate(err) && d.m.cfg.Logs != nil {
			d.l14()
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// frameID is a new Logplex-Frame-Id: 32 upper-case hex digits.
func frameID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
