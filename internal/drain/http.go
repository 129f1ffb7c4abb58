package drain

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
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
// drain: HTTP/1.1, as Logplex posts, each slot on its own keep-alive
// connection. It speaks the protocol itself (a request head it writes,
// net/http's ReadResponse for the answer) rather than through an
// http.Transport: a batch is then written and its answer read by the one
// goroutine that sends it, without the Transport's two goroutines per
// connection and their hand-offs, which under load made each batch wait
// for the scheduler three times.
type httpSender struct {
	addr   string // host:port to dial
	tls    *tls.Config
	dialer *net.Dialer
	head   []byte // the request head up to the per-batch headers
	conns  [httpConns]*httpConn
}

// httpConn is one slot's connection to the drain.
type httpConn struct {
	c    net.Conn
	br   *bufio.Reader
	used time.Time // when its last answer was read
}

// httpIdle is how long an idle connection is reused: receivers close
// theirs after a minute or two (a batch sent on one closed meanwhile goes
// again at once on a new one).
const httpIdle = 50 * time.Second

func newHTTPSender(d *drain) *httpSender {
	u := d.u
	s := &httpSender{dialer: &net.Dialer{Timeout: d.m.cfg.DialTimeout, KeepAlive: 30 * time.Second}}
	port := u.Port()
	if u.Scheme == "https" {
		s.tls = d.m.tls.Clone()
		if s.tls.ServerName == "" {
			s.tls.ServerName = u.Hostname()
		}
		s.tls.NextProtos = []string{"http/1.1"}
		port = cmp.Or(port, "443")
	}
	s.addr = net.JoinHostPort(u.Hostname(), cmp.Or(port, "80"))
	h := append([]byte(nil), "POST "...)
	h = append(h, cmp.Or(u.EscapedPath(), "/")...)
	if u.RawQuery != "" {
		h = append(h, '?')
		h = append(h, u.RawQuery...)
	}
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, u.Host...)
	h = append(h, "\r\nUser-Agent: "+UserAgent+"\r\nContent-Type: application/logplex-1\r\nLogplex-Drain-Token: "...)
	h = append(h, d.token...)
	h = append(h, "\r\n"...)
	if u.User != nil {
		pass, _ := u.User.Password()
		h = append(h, "Authorization: Basic "...)
		h = base64.StdEncoding.AppendEncode(h, []byte(u.User.Username()+":"+pass))
		h = append(h, "\r\n"...)
	}
	s.head = h
	return s
}

// dial connects to the drain, verifying an https drain's certificate
// against the drains' roots.
func (s *httpSender) dial(ctx context.Context) (*httpConn, error) {
	c, err := s.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls)
		hctx, cancel := context.WithTimeout(ctx, s.dialer.Timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	return &httpConn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

// closeAll closes the slots' connections once the drain has stopped.
func (s *httpSender) closeAll() {
	for i, hc := range s.conns {
		if hc != nil {
			hc.c.Close()
			s.conns[i] = nil
		}
	}
}

// httpConns is how many batches an HTTPS drain has in flight at most,
// each on its own connection, as Logplex sends
// concurrently: one sequential connection of ~100 KB POSTs does not keep
// up with a busy app. Batches may therefore arrive out of order (Logplex
// does not promise order either; a batch's lines are in order), except
// around an L10: see run.
const httpConns = 4

// httpSlot is one batch in flight and its reused buffers.
type httpSlot struct {
	i     int // the buffer's slot
	lines []logplex.Line
	head  []byte
	body  []byte
}

// run takes batches from the buffer and posts each in its own goroutine,
// httpConns at most at once. A batch that starts with an L10 waits for
// the batches in flight and is posted alone, so that the L10 reaches the
// receiver before any line that followed the loss.
func (s *httpSender) run(d *drain) {
	defer s.closeAll() // after the posts in flight
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
		status, err := s.post(d, sl, id)
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

// post sends one batch on the slot's connection; the same frame id on
// every attempt lets the receiver drop a batch it already has. A batch
// that fails on a reused connection before any answer (the receiver
// closed it meanwhile) goes again at once on a new one.
func (s *httpSender) post(d *drain, sl *httpSlot, id string) (int, error) {
	sl.head = append(sl.head[:0], s.head...)
	sl.head = append(sl.head, "Logplex-Msg-Count: "...)
	sl.head = strconv.AppendInt(sl.head, int64(len(sl.lines)), 10)
	sl.head = append(sl.head, "\r\nLogplex-Frame-Id: "...)
	sl.head = append(sl.head, id...)
	sl.head = append(sl.head, "\r\nContent-Length: "...)
	sl.head = strconv.AppendInt(sl.head, int64(len(sl.body)), 10)
	sl.head = append(sl.head, "\r\n\r\n"...)
	for {
		hc := s.conns[sl.i]
		if hc != nil && time.Since(hc.used) > httpIdle {
			hc.c.Close()
			hc = nil
		}
		reused := hc != nil
		if hc == nil {
			var err error
			if hc, err = s.dial(d.ctx); err != nil {
				s.conns[sl.i] = nil
				if badCertificate(err) && d.m.cfg.Logs != nil {
					d.l14()
				}
				return 0, err
			}
		}
		s.conns[sl.i] = hc
		status, keep, err := hc.exchange(d, sl)
		if keep {
			hc.used = time.Now()
		} else {
			hc.c.Close()
			s.conns[sl.i] = nil
		}
		if err == nil || status != 0 || !reused || d.ctx.Err() != nil {
			return status, err
		}
	}
}

// exchange writes the request and reads the answer: its status (0: none
// came) and whether the connection can carry the next one.
func (hc *httpConn) exchange(d *drain, sl *httpSlot) (status int, keep bool, err error) {
	stop := context.AfterFunc(d.ctx, func() { hc.c.Close() }) // a closing drain cuts it off
	defer stop()
	hc.c.SetDeadline(time.Now().Add(d.m.cfg.SendTimeout))
	if _, err := (&net.Buffers{sl.head, sl.body}).WriteTo(hc.c); err != nil {
		return 0, false, err
	}
	var resp *http.Response
	for {
		if resp, err = http.ReadResponse(hc.br, nil); err != nil {
			return 0, false, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		resp.Body.Close() // 1xx: the answer follows
	}
	// The answer's body is read (up to 64 KB: a longer one is not
	// worth reading, and closes the connection).
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer+1))
	keep = err == nil && n <= maxAnswer && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body.Close()
	return resp.StatusCode, keep, nil
}

// maxAnswer bounds the body of a drain's answer read to reuse its
// connection.
const maxAnswer = 64 << 10

// frameID is a new Logplex-Frame-Id: 32 upper-case hex digits.
func frameID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
