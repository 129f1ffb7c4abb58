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
func appendSyslog(b []byte, ln *logplex.Line, token string) []byte {
	return appendFrame(b, ln, token, "- - ")
}

// appendHTTP appends ln as one frame of an application/logplex-1 body:
// HOSTNAME is "host" and there is no STRUCTURED-DATA field, as in Logplex's
// HTTPS drains:
//
//	<PRI>1 TIMESTAMP host SOURCE DYNO - MESSAGE
func appendHTTP(b []byte, ln *logplex.Line) []byte {
	return appendFrame(b, ln, "host", "- ")
}

func appendFrame(b []byte, ln *logplex.Line, host, nil_ string) []byte {
	// Render the message after room for the octet count, then move it.
	const room = 6 // MaxLineBytes + header < 1e6
	start := len(b)
	b = append(b, "000000 <"...)
	b = strconv.AppendInt(b, int64(priority(ln)), 10)
	b = append(b, ">1 "...)
	b = logplex.AppendTimestamp(b, ln.Time)
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, ln.Source...)
	b = append(b, ' ')
	b = append(b, ln.Dyno...)
	b = append(b, ' ')
	b = append(b, nil_...)
	b = append(b, ln.Message...)
	n := len(b) - start - room - 1
	var num [8]byte
	digits := strconv.AppendInt(num[:0], int64(n), 10)
	shift := room - len(digits)
	copy(b[start+shift:], digits)
	copy(b[start:], b[start+shift:]) // move count+rest left over the padding
	return b[:len(b)-shift]
}
