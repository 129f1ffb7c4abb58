// Package logplex aggregates every app's log lines into one channel per
// app, as Heroku's Logplex does: the dynos' output, the dyno manager's and
// the router's lines, and the API's audit lines. Each channel keeps a
// history of its last 1 500 lines, persisted across restarts, and serves
// log sessions: `heroku logs` reads the history, `heroku logs --tail` also
// the live lines, both as Server-Sent Events.
//
// # Ingestion never blocks
//
// Log is called by whoever writes a line (a dyno's stdout copier, the
// router, the dyno manager) and returns at once: it puts the line on its
// channel's bounded queue (lines and bytes) and, when the queue is full,
// drops the line and counts it. One worker goroutine per channel commits
// what is queued in batches: it numbers the lines, writes them to the
// channel's segment file, then adds them to the in-memory history and hands
// them to the channel's tail sessions. A tail session has its own bounded
// buffer; a client too slow to keep up loses lines from it, never slows the
// worker, and is told with an L11 line how many it missed.
//
// # Durability
//
// A line becomes visible (history, sessions) only once its batch has been
// written to the OS with write(2). So whatever any reader has seen
// survives a crash of the process (SIGKILL, panic): the kernel has it.
// What a process crash can lose are the lines still queued, not yet
// visible to anyone (normally less than a millisecond's worth). The files
// are fsynced by a background syncer every SyncInterval (100 ms by
// default) and rotated without an fsync (see segment.go): a power failure
// or kernel crash loses at most the lines of about the last two intervals.
// After such a loss the sequence numbers of the lost lines are given out
// again; a tail client resuming across it may miss lines whose ids it had
// already seen.
//
// # Sessions
//
// CreateSession returns a logplex_url whose query carries a credential:
// the session's options signed with HMAC-SHA256 under a key kept in the
// logs directory, so the URL stays valid across restarts of the server.
// It is valid for SessionTTL (1 h) after it was created or last used (a
// connection counts as a use when it starts and when it ends); the last
// use is remembered in memory only, so after a restart a URL is valid for
// SessionTTL after its creation. See ServeStream for the SSE protocol.
package logplex

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// Defaults of Config.
const (
	DefaultHistory      = 1500
	DefaultQueueLines   = 50000
	DefaultQueueBytes   = 16 << 20
	DefaultTailBuffer   = 1024
	DefaultSessionTTL   = time.Hour
	DefaultHeartbeat    = 30 * time.Second
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultLines        = 100

	// tombstoneTTL is how long the lines of a destroyed app are refused
	// (its dynos' last words arrive after the destroy event).
	tombstoneTTL = 10 * time.Minute
)

// Config configures a Logplex. Zero values take the defaults.
type Config struct {
	// Dir holds the history (<data-dir>/logs); it is created if missing.
	Dir string
	// URL is the API's base URL, e.g. http://127.0.0.1:5000; a session's
	// logplex_url is URL + "/logstream/<session id>?...".
	URL string
	// Events, if set, turns every platform event with a Message into an
	// app[api] line, and removes a destroyed app's channel and history.
	Events *platform.Bus

	History    int // lines kept per app (1 500)
	QueueLines int // ingest queue of a channel, in lines (50 000: ~100 ms at 500 000 lines/s, while a write waits for the disk) ...
	QueueBytes int // ... and in message bytes (16 MiB)
	TailBuffer int // lines buffered for one tail session (1 024)

	SessionTTL time.Duration // a session URL's validity after its last use (1 h)
	// StreamMax ends a tail stream after this long; the client reconnects
	// with Last-Event-ID and resumes. 0: streams last until the client goes.
	StreamMax    time.Duration
	Heartbeat    time.Duration // an SSE comment on an idle tail stream (30 s)
	SyncInterval time.Duration // fsync period of the history files (100 ms)

	Now    func() time.Time
	Logger *slog.Logger
}

// Metrics are the pipeline's counters since Open.
type Metrics struct {
	LinesIn       uint64 // lines queued (after splitting)
	LinesStored   uint64 // lines committed: in the history and handed to sessions
	DroppedQueue  uint64 // lines refused because their channel's queue was full
	DroppedClosed uint64 // lines for a destroyed app or after Close
	DroppedTail   uint64 // lines tail sessions missed (reported to them as L11)
	WriteErrors   uint64 // failed writes of the history files (lines stay in memory)
	Streams       int64  // SSE streams open now
}

// Logplex is the log pipeline of one server.
type Logplex struct {
	cfg Config
	log *slog.Logger
	key []byte // signs session URLs

	mu         sync.RWMutex
	channels   map[string]*channel
	tombstones map[string]time.Time
	closed     bool

	ending    chan struct{} // closed by EndStreams
	endOnce   sync.Once
	closeOnce sync.Once
	stop      chan struct{} // stops the syncer and the event loop
	bg        sync.WaitGroup
	sub       *platform.Subscription

	sessMu  sync.Mutex
	lastUse map[string]time.Time // session id → last connection start or end
	swept   time.Time

	outlet atomic.Pointer[Outlet] // drains: SetOutlet

	linesIn, linesStored, droppedQueue, droppedClosed, droppedTail, writeErrors atomic.Uint64
	streams                                                                     atomic.Int64
}

// Open loads the history in cfg.Dir and starts the pipeline.
func Open(cfg Config) (*Logplex, error) {
	if cfg.Dir == "" {
		return nil, errors.New("logplex: no directory")
	}
	// A zero or negative setting takes the default.
	cfg.History = cmp.Or(max(cfg.History, 0), DefaultHistory)
	cfg.QueueLines = cmp.Or(max(cfg.QueueLines, 0), DefaultQueueLines)
	cfg.QueueBytes = cmp.Or(max(cfg.QueueBytes, 0), DefaultQueueBytes)
	cfg.TailBuffer = cmp.Or(max(cfg.TailBuffer, 0), DefaultTailBuffer)
	cfg.SessionTTL = cmp.Or(max(cfg.SessionTTL, 0), DefaultSessionTTL)
	cfg.Heartbeat = cmp.Or(max(cfg.Heartbeat, 0), DefaultHeartbeat)
	cfg.SyncInterval = cmp.Or(max(cfg.SyncInterval, 0), DefaultSyncInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("logplex: %w", err)
	}
	key, err := loadKey(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("logplex: session key: %w", err)
	}
	l := &Logplex{cfg: cfg, log: cfg.Logger, key: key,
		channels: map[string]*channel{}, tombstones: map[string]time.Time{},
		ending: make(chan struct{}), stop: make(chan struct{}),
		lastUse: map[string]time.Time{}}
	bases, err := segmentBases(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("logplex: %w", err)
	}
	for _, base := range bases {
		appID, ok := appIDOf(base)
		if !ok {
			continue
		}
		c := l.newChannel(appID)
		if err := c.load(); err != nil {
			for _, c := range l.channels {
				c.seg.close()
			}
			return nil, fmt.Errorf("logplex: history of app %s: %w", appID, err)
		}
		l.channels[appID] = c
	}
	for _, c := range l.channels {
		go c.run()
	}
	l.bg.Add(1)
	go l.syncer()
	if cfg.Events != nil {
		l.sub = cfg.Events.Subscribe(4096)
		l.bg.Add(1)
		go l.events()
	}
	return l, nil
}

// Log adds a line to an app's channel. It never blocks: when the channel's
// queue is full the line is dropped and counted. A message over
// MaxLineBytes, or holding line breaks, becomes several lines; invalid
// UTF-8 bytes are replaced with U+FFFD. app (the name) is not needed by
// the channel, which is keyed by appID; it is accepted to match the dyno
// manager's Logs interface.
func (l *Logplex) Log(appID, app, source, dyno, message string) {
	l.logAt(l.cfg.Now().UnixMicro(), appID, source, dyno, message)
}

func (l *Logplex) logAt(us int64, appID, source, dyno, message string) {
	c := l.channelFor(appID)
	if c == nil {
		l.droppedClosed.Add(1)
		return
	}
	source, dyno = cleanName(source), cleanName(dyno)
	if plain(message) {
		c.enqueue(Line{Time: us, Source: source, Dyno: dyno, Message: message})
		return
	}
	splitMessage(message, func(m string) {
		c.enqueue(Line{Time: us, Source: source, Dyno: dyno, Message: m})
	})
}

// LogFrames adds a batch of lines to an app's channel, all stamped now:
// what Log does for each frame, with one look-up of the channel and one
// hold of its queue's lock for the whole batch, so the batch's lines stay
// together. Lines that do not fit in the queue are dropped and counted.
func (l *Logplex) LogFrames(appID string, frames []Frame) {
	l.logBatch(appID, len(frames), func(lines []Line, us int64) []Line {
		for i := range frames {
			f := &frames[i]
			lines = appendLine(lines, Line{Time: us, Source: cleanName(f.Source), Dyno: cleanName(f.Dyno), Message: f.Message})
		}
		return lines
	})
}

// LogLines is LogFrames for lines of one source and dyno, such as what a
// dyno wrote to its stdout in one go: one hand-off for all of them rather
// than one Log call (and one hold of the queue's lock) per line.
func (l *Logplex) LogLines(appID, app, source, dyno string, msgs []string) {
	source, dyno = cleanName(source), cleanName(dyno)
	l.logBatch(appID, len(msgs), func(lines []Line, us int64) []Line {
		for _, m := range msgs {
			lines = appendLine(lines, Line{Time: us, Source: source, Dyno: dyno, Message: m})
		}
		return lines
	})
}

// logBatch queues the n messages fill appends (stamped us) to a scratch
// slice, under one hold of the channel's queue lock.
func (l *Logplex) logBatch(appID string, n int, fill func(lines []Line, us int64) []Line) {
	if n == 0 {
		return
	}
	c := l.channelFor(appID)
	if c == nil {
		l.droppedClosed.Add(uint64(n))
		return
	}
	p := linesPool.Get().(*[]Line)
	lines := fill((*p)[:0], l.cfg.Now().UnixMicro())
	c.enqueueAll(lines)
	clear(lines)
	if cap(lines) <= 4096 {
		*p = lines[:0]
		linesPool.Put(p)
	}
}

// appendLine appends ln, split into several lines if its message is too
// long or holds line breaks (see plain).
func appendLine(lines []Line, ln Line) []Line {
	if plain(ln.Message) {
		return append(lines, ln)
	}
	splitMessage(ln.Message, func(m string) {
		ln.Message = m
		lines = append(lines, ln)
	})
	return lines
}

// linesPool holds LogFrames' scratch slices.
var linesPool = sync.Pool{New: func() any { return new([]Line) }}

// channelFor returns the app's channel, creating it for a new app; nil if
// the app was destroyed or the Logplex is closed.
func (l *Logplex) channelFor(appID string) *channel {
	l.mu.RLock()
	c, closed := l.channels[appID], l.closed
	l.mu.RUnlock()
	if c != nil || closed {
		return c
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if c = l.channels[appID]; c != nil {
		return c
	}
	if t, ok := l.tombstones[appID]; ok {
		if l.cfg.Now().Sub(t) < tombstoneTTL {
			return nil
		}
		delete(l.tombstones, appID)
	}
	c = l.newChannel(appID)
	l.channels[appID] = c
	go c.run()
	return c
}

// Sync waits until every line queued before the call is committed
// (written to the OS, in the history, handed to sessions).
func (l *Logplex) Sync() {
	l.mu.RLock()
	cs := make([]*channel, 0, len(l.channels))
	for _, c := range l.channels {
		cs = append(cs, c)
	}
	l.mu.RUnlock()
	for _, c := range cs {
		c.sync()
	}
}

// History returns the app's newest n lines (all kept if n <= 0), oldest
// first.
func (l *Logplex) History(appID string, n int) []Line {
	l.mu.RLock()
	c := l.channels[appID]
	l.mu.RUnlock()
	if c == nil {
		return nil
	}
	if n <= 0 {
		n = l.cfg.History
	}
	lines, _ := c.open(filter{}, n, 0, false, nil)
	return lines
}

// Remove deletes an app's channel: its tail streams end, queued lines are
// discarded and its history is deleted from memory and disk. Lines for the
// app are refused for a while afterwards (its dynos' last words).
func (l *Logplex) Remove(appID string) error {
	l.mu.Lock()
	c := l.channels[appID]
	delete(l.channels, appID)
	now := l.cfg.Now()
	for id, t := range l.tombstones {
		if now.Sub(t) >= tombstoneTTL {
			delete(l.tombstones, id)
		}
	}
	l.tombstones[appID] = now
	l.mu.Unlock()
	if c == nil {
		// History left on disk by an earlier run, if any.
		s := &segment{dir: l.cfg.Dir, base: fileBase(appID)}
		return s.remove()
	}
	c.shutdown(true)
	return c.seg.remove()
}

// EndStreams ends every open SSE stream (tail clients then reconnect, to
// this server or its successor). The server calls it when shutting down,
// before waiting for its handlers.
func (l *Logplex) EndStreams() {
	l.endOnce.Do(func() { close(l.ending) })
}

// Close ends the streams, commits what is queued, fsyncs and closes the
// history files. Lines logged afterwards are dropped and counted.
func (l *Logplex) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.EndStreams()
		l.mu.Lock()
		l.closed = true
		cs := l.channels
		l.mu.Unlock()
		close(l.stop)
		l.bg.Wait()
		if l.sub != nil {
			l.sub.Close()
		}
		var errs []error
		for _, c := range cs {
			c.shutdown(false)
			errs = append(errs, c.seg.close())
		}
		err = errors.Join(errs...)
	})
	return err
}

// Outlet receives every committed batch of an app's lines, in order, from
// the app's channel worker (the drains). Deliver must not block and must
// not keep lines, whose slice is reused once it returns.
type Outlet interface {
	Deliver(appID string, lines []Line)
}

// SetOutlet makes o receive the committed lines from now on (nil: none).
// It is set after Open because the drains also write into the Logplex.
func (l *Logplex) SetOutlet(o Outlet) {
	if o == nil {
		l.outlet.Store(nil)
		return
	}
	l.outlet.Store(&o)
}

// Metrics returns the pipeline's counters.
func (l *Logplex) Metrics() Metrics {
	return Metrics{
		LinesIn: l.linesIn.Load(), LinesStored: l.linesStored.Load(),
		DroppedQueue: l.droppedQueue.Load(), DroppedClosed: l.droppedClosed.Load(),
		DroppedTail: l.droppedTail.Load(), WriteErrors: l.writeErrors.Load(),
		Streams: l.streams.Load(),
	}
}

// syncer fsyncs the history files that were written to, every
// SyncInterval (see segment.sync), so that the channels' workers never
// wait for an fsync.
func (l *Logplex) syncer() {
	defer l.bg.Done()
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	var cs []*channel
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		cs = cs[:0]
		l.mu.RLock()
		for _, c := range l.channels {
			cs = append(cs, c)
		}
		l.mu.RUnlock()
		for _, c := range cs {
			if err := c.seg.sync(); err != nil {
				l.log.Warn("logplex: fsync of an app's history failed", "app_id", c.id, "err", err)
			}
		}
		clear(cs)
	}
}

// events turns platform events into app[api] lines and removes destroyed
// apps' channels.
func (l *Logplex) events() {
	defer l.bg.Done()
	for {
		select {
		case <-l.stop:
			return
		case e := <-l.sub.C:
			if e.Message != "" {
				t := e.Time
				if t.IsZero() {
					t = l.cfg.Now()
				}
				l.logAt(t.UnixMicro(), e.AppID, "app", "api", e.Message)
			}
			if e.Kind == platform.EventDestroy {
				if err := l.Remove(e.AppID); err != nil {
					l.log.Warn("logplex: removing a destroyed app's history", "app_id", e.AppID, "err", err)
				}
			}
		}
	}
}

// Apps lists the apps that have a channel (history in memory or on disk),
// for the removal at start of the history of apps destroyed while the
// server was down.
func (l *Logplex) Apps() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ids := make([]string, 0, len(l.channels))
	for id := range l.channels {
		ids = append(ids, id)
	}
	return ids
}
