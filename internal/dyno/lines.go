package dyno

import (
	"bytes"
	"sync"
)

// maxLine bounds one log line; a longer run of bytes without a newline is
// emitted in pieces of this size (logplex splits long lines too).
const maxLine = 10000

// lineWriter cuts a process's output into lines and emits each one. It
// never blocks the process on a slow consumer: emit is expected to be
// non-blocking (the log pipeline drops and counts).
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line string)
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
				w.emit(string(w.buf[:maxLine]))
				w.buf = append(w.buf[:0], w.buf[maxLine:]...)
			}
			break
		}
		line := p[:i]
		if len(w.buf) > 0 {
			line = append(w.buf, line...)
			w.buf = w.buf[:0]
		}
		for len(line) > maxLine {
			w.emit(string(line[:maxLine]))
			line = line[maxLine:]
		}
		w.emit(string(bytes.TrimSuffix(line, []byte("\r"))))
		p = p[i+1:]
	}
	return n, nil
}
