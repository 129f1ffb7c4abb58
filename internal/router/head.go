package router

import (
	"bufio"
	"bytes"
	"errors"
)

// field is a header line as offsets into head.buf, so a head can grow
// without invalidating earlier fields.
type field struct{ ns, ne, vs, ve int32 }

// head is one parsed HTTP/1.x message head (request or response). Its
// buffers are reused from one message to the next on a connection.
type head struct {
	buf    []byte
	first  [3][2]int32 // request: method, target, proto; response: proto, status, reason
	fields []field
}

func (h *head) reset() {
	h.buf = h.buf[:0]
	h.fields = h.fields[:0]
}

func (h *head) part(i int) []byte  { return h.buf[h.first[i][0]:h.first[i][1]] }
func (h *head) name(i int) []byte  { f := h.fields[i]; return h.buf[f.ns:f.ne] }
func (h *head) value(i int) []byte { f := h.fields[i]; return h.buf[f.vs:f.ve] }

// Errors a head can fail with; the caller maps them to 400 (requests) or
// H17/H25 (responses).
var (
	errLineTooLong  = errors.New("line too long")
	errBadLine      = errors.New("malformed start line")
	errBadHeader    = errors.New("malformed header")
	errTooMany      = errors.New("too many headers")
	errObsFold      = errors.New("obsolete line folding")
	errBareLF       = errors.New("line not ended by CRLF")
	errHeadTooLarge = errors.New("head too large")
	errNameTooLong  = errors.New("header name too long")
)

// limits bounds the head a peer may send.
type limits struct {
	firstLine  int // request line / status line
	headerLine int
	nameLen    int
	count      int
	total      int
}

var (
	requestLimits  = limits{firstLine: 8192, headerLine: 8192, nameLen: 1000, count: 1000, total: 1 << 20}
	responseLimits = limits{firstLine: 8192, headerLine: 512 << 10, nameLen: 8192, count: 1000, total: 4 << 20}
)

// readLine appends one CRLF-terminated line (without CRLF) to dst. Lines
// longer than the reader's buffer are assembled piecewise up to max.
func readLine(r *bufio.Reader, dst []byte, max int) ([]byte, error) {
	start := len(dst)
	for {
		b, err := r.ReadSlice('\n')
		if len(dst)-start+len(b) > max+2 {
			return dst, errLineTooLong
		}
		dst = append(dst, b...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return dst, err
		}
		n := len(dst)
		if n-start < 2 || dst[n-2] != '\r' {
			return dst, errBareLF
		}
		if n-start-2 > max {
			return dst, errLineTooLong
		}
		return dst[:n-2], nil
	}
}

// read parses a head: the start line split on single spaces into three
// parts (the third may contain spaces for responses), then header fields.
// Folded lines, bare LFs, spaces before the colon and control bytes are
// refused: they are the shapes request smuggling relies on.
func (h *head) read(r *bufio.Reader, lim limits, response bool) error {
	h.reset()
	var err error
	// Tolerate empty lines before a request line (RFC 9112 §2.2).
	for {
		h.buf, err = readLine(r, h.buf[:0], lim.firstLine)
		if err != nil {
			return err
		}
		if len(h.buf) > 0 || response {
			break
		}
	}
	line := h.buf
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return errBadLine
	}
	sp2 += sp1 + 1
	h.first[0] = [2]int32{0, int32(sp1)}
	h.first[1] = [2]int32{int32(sp1 + 1), int32(sp2)}
	h.first[2] = [2]int32{int32(sp2 + 1), int32(len(line))}
	if !response {
		if sp2 == sp1+1 || bytes.IndexByte(line[sp2+1:], ' ') >= 0 {
			return errBadLine
		}
	}
	for _, c := range line {
		if c < ' ' && c != '\t' || c == 0x7f {
			return errBadLine
		}
	}
	for {
		start := len(h.buf)
		if start > lim.total {
			return errHeadTooLarge
		}
		h.buf, err = readLine(r, h.buf, lim.headerLine)
		if err != nil {
			return err
		}
		l := h.buf[start:]
		if len(l) == 0 {
			return nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			return errObsFold
		}
		if len(h.fields) >= lim.count {
			return errTooMany
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return errBadHeader
		}
		if colon > lim.nameLen {
			return errNameTooLong
		}
		for _, c := range l[:colon] {
			if !isToken(c) {
				return errBadHeader
			}
		}
		vs, ve := colon+1, len(l)
		for vs < ve && (l[vs] == ' ' || l[vs] == '\t') {
			vs++
		}
		for ve > vs && (l[ve-1] == ' ' || l[ve-1] == '\t') {
			ve--
		}
		for _, c := range l[vs:ve] {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadHeader
			}
		}
		s := int32(start)
		h.fields = append(h.fields, field{s, s + int32(colon), s + int32(vs), s + int32(ve)})
	}
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(c byte) bool { return tokenTable[c] }

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated header value contains token
// (lower case), ignoring case.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if equalFold(bytes.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// parseLength parses a Content-Length: digits only, at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
