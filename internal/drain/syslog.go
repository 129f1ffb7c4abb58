package drain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/skiffhq/skiff/internal/logplex"
)

// syslogWrite bounds the lines of one write to a syslog drain.
const (
	syslogLines = 1024
	syslogBytes = 256 << 10
)

// syslogSender writes octet-counted RFC 5424 messages to a syslog or
// syslog+tls drain over one long-lived connection.
type syslogSender struct {
	conn    net.Conn
	dead    chan struct{} // closed when the receiver closes the connection
	unwatch func() bool   // stops cutting conn off when the drain closes
}

func (s *syslogSender) run(d *drain) {
	defer s.hangUp()
	var lines []logplex.Line
	var out []byte
	var st stamp
	for {
		if !d.buf.pending() {
			if !d.wait() {
				return
			}
			continue
		}
		if s.conn != nil {
			select {
			case <-s.dead:
				s.hangUp()
			default:
			}
		}
		if s.conn == nil {
			if err := s.dial(d); err != nil {
				if !d.failed(0) {
					return
				}
				continue
			}
		}
		var l10 loss
		lines, l10 = d.buf.take(0, lines[:0], syslogLines, syslogBytes, d.now())
		out = out[:0]
		for i := range lines {
			out = appendSyslog(out, &lines[i], d.token, &st)
		}
		s.conn.SetWriteDeadline(time.Now().Add(d.m.cfg.SendTimeout))
		if _, err := s.conn.Write(out); err != nil {
			d.m.log.Debug("drains: syslog write failed", "drain", d.token, "err", err)
			s.hangUp()
			d.lost(0, lines, l10)
			if !d.failed(0) {
				return
			}
			continue
		}
		d.sent(0, lines, l10)
		clear(lines)
	}
}

// dial connects (and for syslog+tls verifies the receiver's certificate;
// a certificate that does not verify becomes an L14 line in the app's log).
func (s *syslogSender) dial(d *drain) error {
	dl := &net.Dialer{Timeout: d.m.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if d.u.Scheme == "syslog+tls" {
		cfg := d.m.tls.Clone()
		cfg.ServerName = d.u.Hostname()
		conn, err = (&tls.Dialer{NetDialer: dl, Config: cfg}).DialContext(d.ctx, "tcp", d.u.Host)
		if err != nil && badCertificate(err) && d.m.cfg.Logs != nil {
			d.l14()
		}
	} else {
		conn, err = dl.DialContext(d.ctx, "tcp", d.u.Host)
	}
	if err != nil {
		d.m.log.Debug("drains: cannot connect", "drain", d.token, "uri", d.redacted(), "err", err)
		return err
	}
	s.conn, s.dead = conn, make(chan struct{})
	// A write blocked on a stuck receiver ends when the drain is removed.
	s.unwatch = context.AfterFunc(d.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	go func(c net.Conn, dead chan struct{}) {
		// A syslog receiver never writes; a read returns when it hangs up.
		var b [256]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				close(dead)
				return
			}
		}
	}(conn, s.dead)
	return nil
}

func (s *syslogSender) hangUp() {
	if s.conn != nil {
		s.unwatch()
		s.conn.Close()
		s.conn = nil
	}
}

// badCertificate reports whether a TLS handshake failed because the
// receiver's certificate does not verify.
func badCertificate(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &host) || errors.As(err, &inv)
}
