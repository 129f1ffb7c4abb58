package logplex

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ErrSessionNotFound is ServeStream's answer for a session URL that is not
// valid (forged, expired, or for a destroyed app). The heroku CLI, given a
// 404 for it, says "Log stream timed out. Please try again.".
var ErrSessionNotFound = errors.New("logplex: no such log session, or it expired")

// Reconnection delays sent to SSE clients. A tail client reconnects after
// retryTail when its stream ends. A session without tail is not
// reconnected to by the heroku CLI, but its EventSource (eventsource@4)
// arms the reconnection timer just after the CLI has closed it, and the
// CLI's process cannot exit before that timer fires: a short delay makes
// `heroku logs` return about a second sooner.
const (
	retryTail = 1000
	retryOnce = 100
)

// SessionOptions are what a log session shows.
type SessionOptions struct {
	// Lines is how many of the newest lines the session starts with,
	// 0..History (larger values are clamped).
	Lines int
	// Tail keeps the stream open for live lines.
	Tail bool
	// Dyno filters by dyno: a name with a dot ("web.1") exactly, else a
	// process type ("web" matches web and web.1, web.2, …) or component
	// ("api", "router").
	Dyno string
	// Source filters by source, exactly ("app" or "heroku").
	Source string
}

// Session is a created log session.
type Session struct {
	ID        string    // a uuid
	URL       string    // the logplex_url, with its credential
	CreatedAt time.Time // also its updated_at
}

// ticket is what a session URL's credential holds.
type ticket struct {
	ID     string `json:"id"`
	App    string `json:"app"` // app id
	Lines  int    `json:"n"`
	Tail   bool   `json:"t,omitempty"`
	Dyno   string `json:"d,omitempty"`
	Source string `json:"s,omitempty"`
	At     int64  `json:"at"` // creation, Unix seconds
}

// CreateSession creates a log session on an app's channel. appName only
// decorates the URL.
func (l *Logplex) CreateSession(appID, appName string, o SessionOptions) (Session, error) {
	now := l.cfg.Now()
	tk := ticket{ID: uuid.NewString(), App: appID, Lines: max(0, min(o.Lines, l.cfg.History)),
		Tail: o.Tail, Dyno: o.Dyno, Source: o.Source, At: now.Unix()}
	payload, err := json.Marshal(tk)
	if err != nil {
		return Session{}, err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	q := url.Values{}
	q.Set("app", appName)
	q.Set("tail", strconv.FormatBool(o.Tail))
	q.Set("token", p+"."+l.sign(p))
	u := strings.TrimSuffix(l.cfg.URL, "/") + "/logstream/" + tk.ID + "?" + q.Encode()
	return Session{ID: tk.ID, URL: u, CreatedAt: now}, nil
}

func (l *Logplex) sign(payload string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// ticket checks a session URL's credential.
func (l *Logplex) ticket(id, token string) (ticket, error) {
	var tk ticket
	p, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(l.sign(p))) {
		return tk, ErrSessionNotFound
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(b, &tk) != nil || tk.ID != id {
		return tk, ErrSessionNotFound
	}
	now := l.cfg.Now()
	last := time.Unix(tk.At, 0)
	l.sessMu.Lock()
	if t, ok := l.lastUse[id]; ok && t.After(last) {
		last = t
	}
	l.sessMu.Unlock()
	if now.Sub(last) >= l.cfg.SessionTTL {
		return tk, ErrSessionNotFound
	}
	return tk, nil
}

// touch records a use of a session, and forgets sessions unused for longer
// than their validity.
func (l *Logplex) touch(id string) {
	now := l.cfg.Now()
	l.sessMu.Lock()
	defer l.sessMu.Unlock()
	l.lastUse[id] = now
	if now.Sub(l.swept) > l.cfg.SessionTTL {
		for k, t := range l.lastUse {
			if now.Sub(t) >= l.cfg.SessionTTL {
				delete(l.lastUse, k)
			}
		}
		l.swept = now
	}
}

// ServeStream serves the log session id as Server-Sent Events (the token is
// the URL's "token" query parameter):
//
//	retry: 1000          (100 for a session without tail, see retryOnce)
//
//	id: 41
//	data: 2024-05-01T12:00:00.123456+00:00 app[web.1]: hello
//
// First the backlog: the newest Lines lines matching the filters, or, when
// the client reconnects with Last-Event-ID, every kept line after that id
// (so a tail resumes without loss while the lines are in the history, and
// without duplicates). A session without Tail then ends (and a reconnection
// to it, which carries Last-Event-ID, gets 204 No Content); a tail session
// goes on with live lines until the client goes, the session's app is
// destroyed, EndStreams is called or StreamMax has passed (the client then
// reconnects). A client that cannot keep up loses lines and gets, in
// their place, an L11 line without an id. Idle tail streams get an SSE
// comment every Heartbeat.
//
// For an invalid or expired session it returns ErrSessionNotFound before
// writing anything; the caller answers 404. Once streaming it returns nil.
func (l *Logplex) ServeStream(w http.ResponseWriter, r *http.Request, id string) error {
	tk, err := l.ticket(id, r.URL.Query().Get("token"))
	if err != nil {
		return err
	}
	c := l.channelFor(tk.App)
	if c == nil {
		return ErrSessionNotFound
	}
	after, resume := uint64(0), false
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			after, resume = n, true
		}
	}
	if resume && !tk.Tail {
		// A generic EventSource reconnecting to a finished session:
		// 204 tells it to stop.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	f := newFilter(tk.Source, tk.Dyno)
	var t *tail
	if tk.Tail {
		t = &tail{f: f, max: l.cfg.TailBuffer, notify: make(chan struct{}, 1), ended: make(chan struct{})}
	}
	backlog, ok := c.open(f, tk.Lines, after, resume, t)
	if !ok {
		return ErrSessionNotFound
	}
	if t != nil {
		defer c.unsubscribe(t)
	}
	l.touch(id)
	defer l.touch(id)
	l.streams.Add(1)
	defer l.streams.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sw := &sseWriter{w: w, rc: rc, buf: make([]byte, 0, 32<<10)}
	retry := retryOnce
	if t != nil {
		retry = retryTail
	}
	sw.buf = append(sw.buf, "retry: "...)
	sw.buf = strconv.AppendInt(sw.buf, int64(retry), 10)
	sw.buf = append(sw.buf, "\n\n"...)
	for i := range backlog {
		sw.event(&backlog[i])
	}
	clear(backlog)
	if !sw.flush() || t == nil {
		return nil
	}
	t.ready()

	var deadline <-chan time.Time
	if l.cfg.StreamMax > 0 {
		tm := time.NewTimer(l.cfg.StreamMax)
		defer tm.Stop()
		deadline = tm.C
	}
	hb := time.NewTicker(l.cfg.Heartbeat)
	defer hb.Stop()
	var lines []Line
	for {
		select {
		case <-t.notify:
			lines = t.take(lines[:0], l.cfg.Now().UnixMicro())
			for i := range lines {
				sw.event(&lines[i])
			}
			clear(lines)
			if !sw.flush() {
				return nil
			}
			t.ready()
		case <-hb.C:
			sw.buf = append(sw.buf, ":\n\n"...)
			if !sw.flush() {
				return nil
			}
		case <-r.Context().Done():
			return nil
		case <-t.ended:
			return nil
		case <-l.ending:
			return nil
		case <-deadline:
			return nil
		}
	}
}

// sseWriter batches events into few writes.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

func (s *sseWriter) event(ln *Line) {
	if ln.Seq != 0 {
		s.buf = append(s.buf, "id: "...)
		s.buf = strconv.AppendUint(s.buf, ln.Seq, 10)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = ln.AppendText(s.buf)
	s.buf = append(s.buf, "\n\n"...)
	if len(s.buf) >= 32<<10 {
		s.write()
	}
}

func (s *sseWriter) write() {
	if s.err == nil && len(s.buf) > 0 {
		_, s.err = s.w.Write(s.buf)
	}
	s.buf = s.buf[:0]
}

// flush writes what is buffered and pushes it to the client; false once
// the client is gone.
func (s *sseWriter) flush() bool {
	s.write()
	if s.err == nil {
		s.err = s.rc.Flush()
	}
	return s.err == nil
}

// filter selects a session's lines.
type filter struct {
	source   string
	dyno     string
	typeOnly bool // dyno is a process type: it matches "<type>" and "<type>.N"
}

func newFilter(source, dyno string) filter {
	return filter{source: source, dyno: dyno, typeOnly: dyno != "" && !strings.Contains(dyno, ".")}
}

func (f *filter) match(ln *Line) bool {
	if f.source != "" && ln.Source != f.source {
		return false
	}
	if f.dyno == "" || ln.Dyno == f.dyno {
		return true
	}
	return f.typeOnly && len(ln.Dyno) > len(f.dyno) && ln.Dyno[len(f.dyno)] == '.' && strings.HasPrefix(ln.Dyno, f.dyno)
}

// tail is one tail session's bounded buffer between the channel's worker
// and the stream's writer. It holds max lines (TailBuffer) for a client that
// does not keep up, and up to tailBurst times more while its writer keeps
// up, i.e. waits for lines, or took its last ones less than tailStall ago:
// the worker commits batches that under a burst are far larger than max,
// which a reader that keeps up should get whole.
type tail struct {
	f       filter
	max     int
	mu      sync.Mutex
	idle    bool  // the writer waits for lines
	takenAt int64 // µs of its last take
	q       []Line
	dropped int   // lines missed since the last L11
	since   int64 // µs of the first of them
	notify  chan struct{}
	ended   chan struct{}
	endOnce sync.Once
}

// Bounds of a tail that keeps up; see tail.
const (
	tailBurst = 16
	tailStall = 250 * time.Millisecond
)

// push adds a line, or counts it as missed when the buffer is full. It
// reports whether ln was kept. Only take makes room, and it reports the
// loss, so missed lines always come after every buffered one.
func (t *tail) push(ln Line, now int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.max
	if t.idle || now-t.takenAt < tailStall.Microseconds() {
		limit *= tailBurst
	}
	if len(t.q) >= limit {
		if t.dropped == 0 {
			t.since = now
		}
		t.dropped++
		return false
	}
	t.q = append(t.q, ln)
	return true
}

// take moves the buffered lines to dst; a loss comes last, as an L11 line
// without a sequence number (so a client that reconnects resumes after
// the last line it had, and gets the missed lines still in the history).
func (t *tail) take(dst []Line, now int64) []Line {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idle, t.takenAt = false, now
	dst = append(dst, t.q...)
	clear(t.q)
	t.q = t.q[:0]
	if t.dropped > 0 {
		dst = append(dst, l11(now, t.dropped, t.since))
		t.dropped = 0
	}
	return dst
}

// ready says the writer has written what it took and waits for more.
func (t *tail) ready() {
	t.mu.Lock()
	t.idle = true
	if cap(t.q) > t.max && len(t.q) == 0 {
		t.q = nil // the burst is over: don't keep its room
	}
	t.mu.Unlock()
}

func (t *tail) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func (t *tail) end() { t.endOnce.Do(func() { close(t.ended) }) }

// loadKey reads the key that signs session URLs, creating it at first use.
func loadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "session.key")
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".tmp", key, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return nil, err
	}
	return key, nil
}
