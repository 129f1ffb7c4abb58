package drain

import (
	"strconv"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/logplex"
)

// buffer is a drain's bounded queue of undelivered lines. When it is full
// the oldest line is dropped and counted, as Logplex does; the count and the
// time of the first loss become an L10 line ahead of the next lines taken.
// Pushing never blocks for longer than a copy under the lock.
type buffer struct {
	mu      sync.Mutex
	ring    []logplex.Line
	start   int // index of the oldest line
	n       int // lines held
	dropped int // lines lost since the last L10
	since   int64
	wake    chan struct{}
}

func newBuffer(size int) *buffer {
	return &buffer{ring: make([]logplex.Line, size), wake: make(chan struct{}, 1)}
}

// push adds lines, dropping the oldest held when full. It returns how many
// lines were dropped.
func (b *buffer) push(lines []logplex.Line) int {
	b.mu.Lock()
	drop := 0
	for i := range lines {
		if b.n == len(b.ring) {
			b.ring[b.start] = logplex.Line{}
			b.start = (b.start + 1) % len(b.ring)
			b.n--
			drop++
			if b.dropped == 0 {
				b.since = lines[i].Time
			}
			b.dropped++
		}
		b.ring[(b.start+b.n)%len(b.ring)] = lines[i]
		b.n++
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return drop
}

// loss is what an L10 line reports: lines dropped since a time.
type loss struct {
	n     int
	since int64
}

// lost puts back what a batch that could not be delivered reported (its
// L10) and counts its n lines, so that the next L10 reports them all.
func (b *buffer) lost(l loss, n int, at int64) {
	if n <= 0 && l.n == 0 {
		return
	}
	b.mu.Lock()
	if l.n > 0 {
		at = l.since
	}
	if b.dropped == 0 || at < b.since {
		b.since = at
	}
	b.dropped += l.n + n
	b.mu.Unlock()
}

// pending reports whether there is anything to deliver: lines or an L10.
func (b *buffer) pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n > 0 || b.dropped > 0
}

// take appends to dst, oldest first, up to max lines or about maxBytes of
// messages: an L10 line first if lines were dropped since the last one.
// It returns dst and the loss its L10 line reports (zero if none).
func (b *buffer) take(dst []logplex.Line, max, maxBytes int, now int64) ([]logplex.Line, loss) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var l10 loss
	if b.dropped > 0 {
		dst = append(dst, L10(now, b.dropped, b.since))
		l10 = loss{b.dropped, b.since}
		b.dropped = 0
	}
	size := 0
	for b.n > 0 && len(dst) < max && (size == 0 || size+len(b.ring[b.start].Message) <= maxBytes) {
		size += len(b.ring[b.start].Message) + 80
		dst = append(dst, b.ring[b.start])
		b.ring[b.start] = logplex.Line{}
		b.start = (b.start + 1) % len(b.ring)
		b.n--
	}
	return dst, l10
}

// len returns the lines held.
func (b *buffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// L10 is the line a drain gets ahead of the lines that follow a loss, as
// Heroku's Logplex writes it.
func L10(now int64, dropped int, since int64) logplex.Line {
	msg := "Error L10 (output buffer overflow): " + strconv.Itoa(dropped) + " messages dropped since " +
		time.UnixMicro(since).UTC().Format("2006-01-02T15:04:05-07:00") + "."
	return logplex.Line{Time: now, Source: "heroku", Dyno: "logplex", Message: msg}
}
