package drain

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/logplex"
)

// buffer is a drain's bounded queue of undelivered lines. When it is full
// the oldest line is dropped and counted, as Logplex does; the count and the
// time of the first loss become an L10 line ahead of the next lines taken.
// Pushing never blocks for longer than a copy under the lock.
//
// The bound is max (1 024) waiting lines for a drain that is not keeping
// up: one whose last delivery failed, or one of whose sends in flight has
// lasted stall or longer. A drain has one send in flight (syslog) or a few
// (HTTPS: one per connection); each has its slot. A drain that is keeping up (its last delivery succeeded
// and its current send, if any, is younger than stall) may hold up to hard
// lines meanwhile: logplex hands over committed batches, which under a
// burst are far larger than max, and a healthy sender takes them as fast
// as it can. As soon as it stops keeping up, what exceeds max is dropped
// (oldest first, counted). The ring grows only as needed.
type buffer struct {
	mu      sync.Mutex
	ring    []logplex.Line
	start   int // index of the oldest line
	n       int // lines held
	max     int // waiting lines of a drain that is not keeping up
	hard    int // waiting lines of one that is
	stall   int64
	healthy bool    // the last delivery succeeded (or none failed yet)
	sending []int64 // per slot, when its send started (µs); 0: none
	dropped int     // lines lost since the last L10
	since   int64
	wake    chan struct{}
	// A send that lasts stall cuts the buffer to max even if no line
	// comes afterwards: timer fires stall after the oldest send in
	// flight started (armed says it is set); drops counts what it drops
	// (the drain's counter).
	armed bool
	timer *time.Timer
	clock func() int64 // µs, the drain's clock
	drops *atomic.Uint64
}

// hardFactor is hard over max.
const hardFactor = 16

// newBuffer returns a buffer for a drain with slots sends in flight at
// most; clock is the drain's (µs).
func newBuffer(size int, stall time.Duration, drops *atomic.Uint64, slots int, clock func() int64) *buffer {
	b := &buffer{ring: make([]logplex.Line, size), max: size, hard: hardFactor * size,
		stall: stall.Microseconds(), healthy: true, wake: make(chan struct{}, 1), drops: drops,
		sending: make([]int64, max(slots, 1)), clock: clock}
	b.timer = time.AfterFunc(stall, b.stalled)
	b.timer.Stop()
	return b
}

// stalled cuts the buffer to max when the oldest send in flight has
// lasted stall; while a younger one is in flight, it looks again when
// that one will have.
func (b *buffer) stalled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	oldest := b.oldest()
	if oldest == 0 {
		return
	}
	if wait := oldest + b.stall - b.clock(); wait > 0 {
		b.armed = true
		b.timer.Reset(time.Duration(wait) * time.Microsecond)
		return
	}
	if n := b.dropOldest(b.max); n > 0 {
		b.drops.Add(uint64(n))
	}
}

// oldest is when the oldest send in flight started; 0 if none. Called
// with mu held.
func (b *buffer) oldest() int64 {
	var o int64
	for _, s := range b.sending {
		if s != 0 && (o == 0 || s < o) {
			o = s
		}
	}
	return o
}

// limit is the bound on waiting lines now. Called with mu held.
func (b *buffer) limit(now int64) int {
	if o := b.oldest(); !b.healthy || o != 0 && now-o >= b.stall {
		return b.max
	}
	return b.hard
}

// dropOldest drops the oldest lines until at most keep are held. Called
// with mu held.
func (b *buffer) dropOldest(keep int) int {
	drop := 0
	for b.n > keep {
		if b.dropped == 0 {
			b.since = b.ring[b.start].Time
		}
		b.ring[b.start] = logplex.Line{}
		b.start = (b.start + 1) % len(b.ring)
		b.n--
		b.dropped++
		drop++
	}
	return drop
}

// grow doubles the ring, up to hard. Called with mu held.
func (b *buffer) grow() {
	size := min(2*len(b.ring), b.hard)
	ring := make([]logplex.Line, size)
	k := copy(ring, b.ring[b.start:])
	copy(ring[k:], b.ring[:b.start])
	b.ring, b.start = ring, 0
}

// push adds lines, dropping the oldest held beyond the bound. It returns
// how many lines were dropped. Lines that the bound would drop at once
// (a committed batch larger than it) are counted without being copied.
func (b *buffer) push(lines []logplex.Line, now int64) int {
	b.mu.Lock()
	limit := b.limit(now)
	drop := b.dropOldest(limit)
	if excess := b.n + len(lines) - limit; excess > 0 {
		k := min(excess, b.n) // the held lines go first, oldest first
		drop += b.dropOldest(b.n - k)
		if rest := excess - k; rest > 0 {
			if b.dropped == 0 {
				b.since = lines[0].Time
			}
			b.dropped += rest
			drop += rest
			lines = lines[rest:]
		}
	}
	for b.n+len(lines) > len(b.ring) {
		b.grow()
	}
	// The free slots start after the newest line and may wrap around.
	end := (b.start + b.n) % len(b.ring)
	k := copy(b.ring[end:], lines)
	copy(b.ring, lines[k:])
	b.n += len(lines)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return drop
}

// done ends slot's send: ok if the receiver took it. A failure makes the
// drain one that is not keeping up: what exceeds max is dropped. It
// returns how many lines were dropped.
func (b *buffer) done(slot int, ok bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sending[slot] = 0
	b.healthy = ok
	drop := 0
	if !ok {
		drop = b.dropOldest(b.max)
	}
	return drop
}

// oversized reports whether the ring grew past max for a burst.
func (b *buffer) oversized() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ring) > b.max
}

// shrink gives back a ring grown for a burst once it is empty. The drain
// calls it when no line came for a while: shrinking at every emptying
// would make a busy drain grow it again at every batch.
func (b *buffer) shrink() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 && len(b.ring) > b.max {
		b.ring, b.start = make([]logplex.Line, b.max), 0
	}
}

// loss is what an L10 line reports: lines dropped since a time.
type loss struct {
	n     int
	since int64
}

// lost puts back what a batch that could not be delivered reported (its
// L10) and counts its n lines, so that the next L10 reports them all.
// It ends slot's send.
func (b *buffer) lost(slot int, l loss, n int, at int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sending[slot] = 0
	if n <= 0 && l.n == 0 {
		return
	}
	if l.n > 0 {
		at = l.since
	}
	if b.dropped == 0 || at < b.since {
		b.since = at
	}
	b.dropped += l.n + n
}

// pending reports whether there is anything to deliver: lines or an L10.
func (b *buffer) pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n > 0 || b.dropped > 0
}

// take appends to dst, oldest first, up to max lines or about maxBytes of
// messages: an L10 line first if lines were dropped since the last one.
// It returns dst and the loss its L10 line reports (zero if none). A send
// in slot starts: done or lost ends it.
func (b *buffer) take(slot int, dst []logplex.Line, max, maxBytes int, now int64) ([]logplex.Line, loss) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sending[slot] = now
	if now <= 0 {
		b.sending[slot] = 1
	}
	if !b.armed {
		b.armed = true
		b.timer.Reset(time.Duration(b.stall) * time.Microsecond)
	}
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
