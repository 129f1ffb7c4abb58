package build

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// outputLog is a build's output: appended to a file as it is written, and
// readable, from the start, by any number of followers while the build
// runs and afterwards.
type outputLog struct {
	path string

	mu      sync.Mutex
	f       *os.File
	size    int64
	done    bool
	changed chan struct{} // closed and replaced on every write and at the end
}

func newOutputLog(path string) (*outputLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &outputLog{path: path, f: f, changed: make(chan struct{})}, nil
}

// Write appends p. Output past the file system's capacity is dropped
// rather than failing the build.
func (l *outputLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	n, _ := l.f.Write(p)
	l.size += int64(n)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// Close ends the log: followers stop once they have read everything.
func (l *outputLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	close(l.changed)
	return l.f.Close()
}

func (l *outputLog) state() (size int64, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.done, l.changed
}

// Follow copies the log to w from the start, waiting for more until the
// log is closed or ctx is done; flush is called after each burst.
func (l *outputLog) Follow(ctx context.Context, w io.Writer, flush func()) error {
	f, err := os.Open(l.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for {
		size, done, changed := l.state()
		if size > off {
			n, err := io.Copy(w, io.NewSectionReader(f, off, size-off))
			off += n
			if err != nil {
				return err
			}
			if flush != nil {
				flush()
			}
			continue
		}
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// copyFinished copies a finished build's log file to w.
func copyFinished(path string, w io.Writer) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		_, err = io.WriteString(w, "=== The output of this build is no longer kept\n")
		return err
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
