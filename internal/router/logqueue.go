package router

import (
	"sync"
	"time"
)

// logQueue collects router log lines between two hand-offs to the sink.
// A request appends its line's bytes to the current batch under a mutex
// (no allocation, no wake-up); every logEvery the log goroutine swaps the
// batch for an empty one and makes one string of the whole batch, which
// the lines are slices of: one allocation per batch instead of one per
// request. A full batch drops lines and counts them.
type logQueue struct {
	mu       sync.Mutex
	cur      *logBatch
	spare    *logBatch // the batch given back after the last hand-off
	maxLines int
	maxBytes int
}

type logBatch struct {
	buf   []byte
	lines []batchLine
}

// batchLine is one line of a batch: buf[previous end:end].
type batchLine struct {
	appID, app string
	end        int
}

func newLogQueue(maxLines int) *logQueue {
	return &logQueue{cur: &logBatch{}, maxLines: maxLines, maxBytes: max(maxLines*512, 64<<10)}
}

// add appends a line; false means the batch is full and the line dropped.
func (q *logQueue) add(appID, app string, line []byte) bool {
	q.mu.Lock()
	b := q.cur
	if len(b.lines) >= q.maxLines || len(b.buf)+len(line) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	b.buf = append(b.buf, line...)
	b.lines = append(b.lines, batchLine{appID, app, len(b.buf)})
	q.mu.Unlock()
	return true
}

// take returns the lines queued so far (nil when none) and starts a new
// batch.
func (q *logQueue) take() *logBatch {
	q.mu.Lock()
	b := q.cur
	if len(b.lines) == 0 {
		q.mu.Unlock()
		return nil
	}
	next := q.spare
	q.spare = nil
	if next == nil {
		next = &logBatch{}
	}
	q.cur = next
	q.mu.Unlock()
	return b
}

// give hands a batch back for reuse once its lines were delivered.
func (q *logQueue) give(b *logBatch) {
	b.buf = b.buf[:0]
	clear(b.lines) // drop the app name references
	b.lines = b.lines[:0]
	q.mu.Lock()
	if q.spare == nil {
		q.spare = b
	}
	q.mu.Unlock()
}

// each calls f for every line of b, in order; the lines share one string.
func (b *logBatch) each(f func(appID, app, line string)) {
	s := string(b.buf)
	start := 0
	for _, l := range b.lines {
		f(l.appID, l.app, s[start:l.end])
		start = l.end
	}
}

// emit queues a log line without ever blocking: a full batch drops it.
func (r *Router) emit(appID, app string, line []byte) {
	if r.logs == nil {
		return
	}
	if !r.logs.add(appID, app, line) {
		r.drops.Add(1)
	}
}

// logLoop hands queued lines to the sink every few milliseconds rather
// than as each arrives: a proxied request then never wakes another
// goroutine just to log.
func (r *Router) logLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(logEvery)
	defer tick.Stop()
	drain := func() {
		for {
			b := r.logs.take()
			if b == nil {
				return
			}
			b.each(r.cfg.Log)
			r.logs.give(b)
		}
	}
	for {
		select {
		case <-tick.C:
			drain()
		case <-r.done:
			drain()
			return
		}
	}
}

const logEvery = 5 * time.Millisecond
