package dyno

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// maxLine bounds one log line; a longer run of bytes without a newline is
// emitted in pieces of this size (logplex splits long lines too).
const maxLine = 10000

// lineWriter cuts a process's output into lines and emits them, the
// lines of each Write at once: one hand-off to the log pipeline per read
// of the process's output rather than one per line. It never blocks the
// process on a slow consumer: emit is expected to be non-blocking (the log
// pipeline drops and counts) and must not keep the slice.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	out  []string // this Write's lines
	emit func(lines []string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLine {
				n := cut(w.buf)
				w.out = append(w.out, string(w.buf[:n]))
				w.buf = append(w.buf[:0], w.buf[n:]...)
			}
			break
		}
		line := p[:i]
		if len(w.buf) > 0 {
			line = append(w.buf, line...)
			w.buf = w.buf[:0]
		}
		for len(line) > maxLine {
			n := cut(line)
			w.out = append(w.out, string(line[:n]))
			line = line[n:]
		}
		w.out = append(w.out, string(bytes.TrimSuffix(line, []byte("\r"))))
		p = p[i+1:]
	}
	if len(w.out) > 0 {
		w.emit(w.out)
		clear(w.out)
		w.out = w.out[:0]
	}
	return n, nil
}

// cut is where a too-long line is split: at maxLine bytes, moved back to
// the start of a UTF-8 character so that none is cut in two.
func cut(b []byte) int {
	for n := maxLine; n > maxLine-utf8.UTFMax; n-- {
		if utf8.RuneStart(b[n]) {
			return n
		}
	}
	return maxLine
}
