package drain

import (
	"strconv"
	"strings"

	"github.com/skiffhq/skiff/internal/logplex"
)

// Syslog priorities (facility×8 + severity) of drained lines, as Heroku
// uses them: app lines local7.info, router lines local3.info, L10 notices
// local5.warning, the platform's other lines syslog.notice.
const (
	priApp    = 190
	priRouter = 158
	priL10    = 172
	priHeroku = 45
)

func priority(ln *logplex.Line) int {
	switch {
	case ln.Source == "app":
		return priApp
	case ln.Dyno == "router":
		return priRouter
	case ln.Dyno == "logplex" && strings.HasPrefix(ln.Message, "Error L10 "):
		return priL10
	}
	return priHeroku
}

// appendSyslog appends ln as one RFC 6587 octet-counted RFC 5424 message,
// as Logplex writes it to a syslog drain:
//
//	<PRI>1 TIMESTAMP TOKEN SOURCE DYNO - - MESSAGE
//
// (HOSTNAME is the drain token; MSGID and STRUCTURED-DATA are NILVALUE).
func appendSyslog(b []byte, ln *logplex.Line, token string, st *stamp) []byte {
	return appendFrame(b, ln, token, "- - ", st)
}

// appendHTTP appends ln as one frame of an application/logplex-1 body:
// HOSTNAME is "host" and there is no STRUCTURED-DATA field, as in Logplex's
// HTTPS drains:
//
//	<PRI>1 TIMESTAMP host SOURCE DYNO - MESSAGE
func appendHTTP(b []byte, ln *logplex.Line, st *stamp) []byte {
	return appendFrame(b, ln, "host", "- ", st)
}

// stamp keeps the last timestamp a sender rendered: the lines of a batch
// mostly share theirs (a log-input batch is stamped once), and rendering
// it was most of a frame's cost. The zero stamp is ready to use.
type stamp struct {
	us int64
	b  [40]byte
	n  int // 0: none rendered yet (a timestamp is never empty)
}

func (st *stamp) append(b []byte, us int64) []byte {
	if st.n == 0 || st.us != us {
		st.n = len(logplex.AppendTimestamp(st.b[:0], us))
		st.us = us
	}
	return append(b, st.b[:st.n]...)
}

// appendFrame renders the header on the stack first, so that the octet
// count is known before anything is appended: the message is copied once.
func appendFrame(b []byte, ln *logplex.Line, host, nil_ string, st *stamp) []byte {
	var stack [160]byte
	h := append(stack[:0], '<')
	h = strconv.AppendInt(h, int64(priority(ln)), 10)
	h = append(h, ">1 "...)
	h = st.append(h, ln.Time)
	h = append(h, ' ')
	h = append(h, host...)
	h = append(h, ' ')
	h = append(h, ln.Source...)
	h = append(h, ' ')
	h = append(h, ln.Dyno...)
	h = append(h, ' ')
	h = append(h, nil_...)
	b = strconv.AppendInt(b, int64(len(h)+len(ln.Message)), 10)
	b = append(b, ' ')
	b = append(b, h...)
	return append(b, ln.Message...)
}
