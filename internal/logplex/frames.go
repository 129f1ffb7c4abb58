package logplex

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Frame is one log line as an application/logplex-1 batch carries it.
type Frame struct {
	Source  string // the syslog APP-NAME: "app" or "heroku"
	Dyno    string // the syslog PROCID: "web.1", "worker.3", …
	Message string
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
func ParseFrames(b []byte) ([]Frame, error) {
	var out []Frame
	for n := 1; len(b) > 0; n++ {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 || sp > 6 {
			return nil, fmt.Errorf("frame %d: expected an octet count", n)
		}
		size, err := strconv.Atoi(string(b[:sp]))
		if err != nil || size <= 0 || size > maxFrame {
			return nil, fmt.Errorf("frame %d: invalid octet count %q", n, b[:sp])
		}
		b = b[sp+1:]
		if size > len(b) {
			return nil, fmt.Errorf("frame %d: %d octets announced, %d left", n, size, len(b))
		}
		f, err := parseMessage(b[:size])
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", n, err)
		}
		out = append(out, f)
		b = bytes.TrimLeft(b[size:], "\n")
	}
	return out, nil
}

func parseMessage(m []byte) (Frame, error) {
	m = bytes.TrimRight(m, "\n")
	if len(m) == 0 || m[0] != '<' {
		return Frame{}, errors.New("no <PRI>")
	}
	end := bytes.IndexByte(m, '>')
	if end < 2 || end > 4 {
		return Frame{}, errors.New("invalid <PRI>")
	}
	if _, err := strconv.Atoi(string(m[1:end])); err != nil {
		return Frame{}, errors.New("invalid <PRI>")
	}
	// VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then the message.
	fields := bytes.SplitN(m[end+1:], []byte(" "), 7)
	if len(fields) < 6 || string(fields[0]) != "1" {
		return Frame{}, errors.New("not a syslog (RFC 5424) header")
	}
	f := Frame{Source: string(fields[3]), Dyno: string(fields[4])}
	if len(fields) == 7 {
		f.Message = string(fields[6])
	}
	if f.Source != "app" && f.Source != "heroku" {
		return Frame{}, fmt.Errorf("APP-NAME %q: expected app or heroku", f.Source)
	}
	if f.Dyno == "" || f.Dyno == "-" {
		return Frame{}, errors.New("no PROCID (the dyno name)")
	}
	return f, nil
}
