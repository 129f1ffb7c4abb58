package logplex

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxLineBytes bounds one line's message, as on Heroku: a longer message is
// split into several lines of at most this many bytes each (cut at a
// character boundary, so every piece stays valid UTF-8).
const MaxLineBytes = 10000

// Line is one log line of an app's channel.
type Line struct {
	// Seq numbers the lines of one channel from 1 up, without gaps in
	// what was stored; it survives restarts and is the SSE event id that
	// a reconnecting tail resumes after. 0 marks a line that is not part
	// of the channel (an L11 notice of one session).
	Seq     uint64
	Time    int64  // microseconds since the Unix epoch
	Source  string // "app" or "heroku"
	Dyno    string // "web.1", "run.1234", "router", "api", "logplex"
	Message string // valid UTF-8 without CR or LF
}

// timeLayout is RFC 5424's timestamp with microseconds, in UTC: the "-07:00"
// zone of UTC renders as "+00:00", as Logplex writes it.
const timeLayout = "2006-01-02T15:04:05.000000-07:00"

// AppendTimestamp appends us (microseconds since the epoch) as Logplex
// renders time: 2024-05-01T12:00:00.123456+00:00.
//
// It is on the drains' hot path (every line, for every drain), so it does
// the calendar arithmetic itself: time.Time.AppendFormat took a fifth of
// the server's CPU during ingest. Years outside 0000–9999 fall back to it.
func AppendTimestamp(b []byte, us int64) []byte {
	sec, frac := floorDiv(us, 1_000_000)
	days, sod := floorDiv(sec, 86_400)
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.UnixMicro(us).UTC().AppendFormat(b, timeLayout)
	}
	var t [32]byte
	put := func(i int, v int64, n int) {
		for j := i + n - 1; j >= i; j-- {
			t[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	t[4] = '-'
	put(5, m, 2)
	t[7] = '-'
	put(8, d, 2)
	t[10] = 'T'
	put(11, sod/3600, 2)
	t[13] = ':'
	put(14, sod/60%60, 2)
	t[16] = ':'
	put(17, sod%60, 2)
	t[19] = '.'
	put(20, frac, 6)
	copy(t[26:], "+00:00")
	return append(b, t[:]...)
}

// floorDiv returns a/n rounded down and the remainder, from 0 to n-1.
func floorDiv(a, n int64) (q, r int64) {
	q, r = a/n, a%n
	if r < 0 {
		q, r = q-1, r+n
	}
	return q, r
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days-to-civil algorithm: eras of 400 years).
func civil(days int64) (y, m, d int64) {
	z := days + 719_468
	era, doe := floorDiv(z, 146_097)
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// AppendText appends the line as `heroku logs` prints it:
// "2024-05-01T12:00:00.123456+00:00 app[web.1]: message".
func (l *Line) AppendText(b []byte) []byte {
	b = AppendTimestamp(b, l.Time)
	b = append(b, ' ')
	b = append(b, l.Source...)
	b = append(b, '[')
	b = append(b, l.Dyno...)
	b = append(b, "]: "...)
	return append(b, l.Message...)
}

// String renders the line (see AppendText).
func (l Line) String() string { return string(l.AppendText(make([]byte, 0, 48+len(l.Message)))) }

// plain reports whether msg can be stored as one line as it is: at most
// MaxLineBytes, valid UTF-8 and without line terminators. This is the hot
// path's check; it allocates nothing.
func plain(msg string) bool {
	if len(msg) > MaxLineBytes {
		return false
	}
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\n' || c == '\r' {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(msg[i:]) && !hasTerminator(msg[i:])
		}
	}
	return true
}

func hasTerminator(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}

// splitMessage cuts a message that is not plain into the messages of
// separate lines: invalid UTF-8 bytes become U+FFFD; CR LF, LF and CR end a
// line (a final terminator adds no empty line, as for the output of a
// process); a piece longer than MaxLineBytes is cut into chunks at
// character boundaries. emit is called for each piece in order.
func splitMessage(msg string, emit func(string)) {
	if !utf8.ValidString(msg) {
		msg = toValidUTF8(msg)
	}
	for {
		end, next := len(msg), len(msg)
		for i := 0; i < len(msg); i++ {
			if msg[i] == '\n' {
				end, next = i, i+1
				break
			}
			if msg[i] == '\r' {
				end, next = i, i+1
				if next < len(msg) && msg[next] == '\n' {
					next++
				}
				break
			}
		}
		chunk(msg[:end], emit)
		if next >= len(msg) {
			return
		}
		msg = msg[next:]
	}
}

// chunk emits s in pieces of at most MaxLineBytes, cut before a character.
func chunk(s string, emit func(string)) {
	for len(s) > MaxLineBytes {
		cut := MaxLineBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		emit(s[:cut])
		s = s[cut:]
	}
	emit(s)
}

// toValidUTF8 replaces every invalid byte of s with U+FFFD, so that a
// reader can tell how many bytes were not text.
func toValidUTF8(s string) string {
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// cleanName makes a source or dyno name safe to render between brackets:
// printable ASCII without spaces or brackets, at most 64 bytes. Names from
// Skiff's own components are already clean and are returned unchanged.
func cleanName(s string) string {
	ok := len(s) <= 64
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c > ' ' && c < 0x7f && c != '[' && c != ']'
	}
	if ok {
		return s
	}
	b := make([]byte, 0, min(len(s), 64))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '[' && c != ']' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// l11 is the notice a tail session gets in place of the lines it missed.
func l11(now int64, dropped int, since int64) Line {
	msg := "Error L11 (Tail buffer overflow) -> This tail session dropped " + strconv.Itoa(dropped) +
		" messages since " + time.UnixMicro(since).UTC().Format("2006-01-02T15:04:05-07:00") + "."
	return Line{Time: now, Source: "heroku", Dyno: "logplex", Message: msg}
}
