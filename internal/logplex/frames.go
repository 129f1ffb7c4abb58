package logplex

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Frame is one log line as an application/logplex-1 batch carries it.
type Frame struct {
	Source  string // the syslog APP-NAME: "app" or "heroku"
	Dyno    string // the syslog PROCID: "web.1", "worker.3", …
	Message string

	msg, end int32 // while parsing: where Message is in the body
}

// maxFrame bounds one frame's declared length.
const maxFrame = 64 * 1024

// ParseFrames reads an application/logplex-1 body: syslog messages framed
// by octet counting (RFC 6587), each
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID MSG
//
// as Heroku's Logplex writes them (RFC 5424's header without structured
// data). The whole batch is refused, naming the frame, if any frame is
// malformed: a batch is taken completely or not at all.
func ParseFrames(b []byte) ([]Frame, error) { return AppendFrames(nil, b) }

// AppendFrames is ParseFrames appending to dst, for a caller that reuses
// its slice: on error dst is returned as it was. The frames share nothing
// with b, which the caller may reuse. It is the log-input endpoint's hot
// path: one allocation per batch, a string of the batch's messages they
// are slices of, and none per line: the source is one of two constants
// and a dyno name repeated from the previous frame is shared. A message
// kept (in the history, a drain's buffer) keeps its batch's string alive;
// the lines kept are the newest, which came in the newest batches, so
// that costs at most one partly kept batch per channel.
func AppendFrames(dst []Frame, b []byte) ([]Frame, error) {
	dst, _, err := appendFrames(dst, b, 1, false) // no rest outside a stream
	return dst, err
}

// AppendStreamFrames is AppendFrames for a body that arrives in pieces (a
// streamed log-input request): it parses the complete frames at the start
// of b and returns the rest, the start of a frame still to come, which the
// caller keeps and completes with what it reads next. first is the number
// of the first frame in b, for error messages. The rest is never longer
// than MaxFrameBytes. On error, the frames before the bad one are returned:
// a stream is taken up to its first malformed frame.
func AppendStreamFrames(dst []Frame, b []byte, first int) ([]Frame, []byte, error) {
	return appendFrames(dst, b, first, true)
}

// MaxFrameBytes bounds one frame with its octet count: a stream reader's
// buffer of at least this size always holds a whole frame.
const MaxFrameBytes = maxFrame + 7

func appendFrames(dst []Frame, b []byte, first int, stream bool) ([]Frame, []byte, error) {
	body, from := b, len(dst)
	fail := func(err error) ([]Frame, []byte, error) {
		if stream {
			return setMessages(dst, from, body), nil, err // taken up to the bad frame
		}
		return dst[:from], nil, err // a batch is all or nothing
	}
	var dyno string // the previous frame's
	for n := first; len(b) > 0; n++ {
		sp := bytes.IndexByte(b[:min(len(b), 7)], ' ')
		if sp < 0 && stream && len(b) < 7 {
			if _, ok := digits(b); ok {
				return setMessages(dst, from, body), b, nil // the octet count is still coming
			}
		}
		if sp <= 0 {
			return fail(fmt.Errorf("frame %d: expected an octet count", n))
		}
		size, ok := digits(b[:sp])
		if !ok || size <= 0 || size > maxFrame {
			return fail(fmt.Errorf("frame %d: invalid octet count %q", n, b[:sp]))
		}
		if size > len(b)-sp-1 {
			if stream {
				return setMessages(dst, from, body), b, nil
			}
			return fail(fmt.Errorf("frame %d: %d octets announced, %d left", n, size, len(b)-sp-1))
		}
		b = b[sp+1:]
		f, msg, end, err := parseMessage(b[:size], &dyno)
		if err != nil {
			return fail(fmt.Errorf("frame %d: %w", n, err))
		}
		if msg >= 0 {
			at := len(body) - len(b) // where b starts in body
			f.msg, f.end = int32(at+msg), int32(at+end)
		}
		dst = append(dst, f)
		b = b[size:]
		for len(b) > 0 && b[0] == '\n' {
			b = b[1:]
		}
	}
	return setMessages(dst, from, body), nil, nil
}

// setMessages gives the frames from dst[from] on their messages, which are
// body[msg:end]: copied into one string they are slices of (one
// allocation of the messages' size, not one per line, nor a copy of the
// whole body with its headers).
func setMessages(dst []Frame, from int, body []byte) []Frame {
	fs := dst[from:]
	size := 0
	for i := range fs {
		size += int(fs[i].end - fs[i].msg)
	}
	if size == 0 {
		return dst
	}
	var sb strings.Builder
	sb.Grow(size)
	for i := range fs {
		sb.Write(body[fs[i].msg:fs[i].end])
	}
	all, off := sb.String(), 0
	for i := range fs {
		n := int(fs[i].end - fs[i].msg)
		if n > 0 {
			fs[i].Message = all[off : off+n]
		}
		off += n
		fs[i].msg, fs[i].end = 0, 0
	}
	return dst
}

// digits parses a decimal number of at most 6 digits, nothing else.
func digits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// field cuts m at its first space: the field before it and the rest; ok
// is false if there is no space.
func field(m []byte) (f, rest []byte, ok bool) {
	i := bytes.IndexByte(m, ' ')
	if i < 0 {
		return m, nil, false
	}
	return m[:i], m[i+1:], true
}

// parseMessage reads one frame's syslog message but for its text, which
// is m[msg:end] (msg < 0: none). *dyno is the previous frame's dyno
// name, shared when this one has the same.
func parseMessage(m []byte, dyno *string) (f Frame, msg, end int, err error) {
	for len(m) > 0 && m[len(m)-1] == '\n' {
		m = m[:len(m)-1]
	}
	if len(m) == 0 || m[0] != '<' {
		return Frame{}, 0, 0, errors.New("no <PRI>")
	}
	pri := bytes.IndexByte(m, '>')
	if pri < 2 || pri > 4 {
		return Frame{}, 0, 0, errors.New("invalid <PRI>")
	}
	if _, ok := digits(m[1:pri]); !ok {
		return Frame{}, 0, 0, errors.New("invalid <PRI>")
	}
	// VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then the message:
	// the header's six fields end with a space, except MSGID when there
	// is no message.
	var hdr [6][]byte
	rest, ok := m[pri+1:], true
	for i := range hdr {
		if !ok {
			return Frame{}, 0, 0, errors.New("not a syslog (RFC 5424) header")
		}
		hdr[i], rest, ok = field(rest)
	}
	if string(hdr[0]) != "1" {
		return Frame{}, 0, 0, errors.New("not a syslog (RFC 5424) header")
	}
	switch string(hdr[3]) {
	case "app":
		f.Source = "app"
	case "heroku":
		f.Source = "heroku"
	default:
		return Frame{}, 0, 0, fmt.Errorf("APP-NAME %q: expected app or heroku", hdr[3])
	}
	if p := hdr[4]; len(p) == 0 || string(p) == "-" {
		return Frame{}, 0, 0, errors.New("no PROCID (the dyno name)")
	} else if string(p) != *dyno {
		*dyno = string(p)
	}
	f.Dyno = *dyno
	if ok && len(rest) > 0 {
		return f, len(m) - len(rest), len(m), nil
	}
	return f, -1, 0, nil
}
