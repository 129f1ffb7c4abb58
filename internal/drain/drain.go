// Package drain delivers an app's log lines to its drains: syslog
// endpoints over TCP or TLS (RFC 5424 messages, RFC 6587 octet counting)
// and HTTPS endpoints (application/logplex-1 batches), as Heroku's Logplex
// does.
//
// Logplex hands each committed batch of an app's lines to the Manager
// (Deliver), which copies them into every drain's bounded buffer (1 024
// lines waiting; more while the drain keeps up, see buffer) and returns: a
// slow, stuck or dead drain never holds up ingestion.
// A full buffer drops its oldest lines and counts them; the drain's next
// delivery starts with an L10 line that says how many were lost and since
// when. Lines taken for delivery and then given up (an HTTPS batch refused
// or out of retries, a syslog write cut off) are counted the same way, so
// every line is either delivered or reported by an L10.
//
// Each drain has one goroutine that connects, sends and retries with
// back-off. A TLS certificate that does not verify is reported into the
// app's log as an L14 line.
package drain

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/platform"
)

// Defaults of Config.
const (
	DefaultBuffer        = 1024
	DefaultBatchBytes    = 100 << 10
	DefaultFlushInterval = 50 * time.Millisecond
	DefaultDialTimeout   = 3 * time.Second
	DefaultSendTimeout   = 5 * time.Second
	DefaultRetryMin      = 10 * time.Millisecond
	DefaultRetryMax      = 30 * time.Second
	DefaultAttempts      = 3
	DefaultStall         = 250 * time.Millisecond
)

// Source lists the drains to run (a *platform.Platform).
type Source interface {
	AllDrains(ctx context.Context) ([]*platform.Drain, error)
	AppDrains(ctx context.Context, appID string) ([]*platform.Drain, error)
}

// Logs writes a line into an app's log (a *logplex.Logplex): L14 notices.
type Logs interface {
	Log(appID, app, source, dyno, message string)
}

// Config configures a Manager. Zero values take the defaults.
type Config struct {
	Source Source
	Events *platform.Bus // drain changes and destroyed apps
	Logs   Logs
	// RootCAs verifies syslog+tls and https drains; nil: the system's roots.
	RootCAs *x509.CertPool

	Buffer        int           // lines buffered per drain (1 024)
	BatchBytes    int           // target size of one HTTPS batch (100 KB)
	FlushInterval time.Duration // how long an HTTPS drain gathers lines before a batch (50 ms)
	DialTimeout   time.Duration // connecting, TLS handshake included (3 s)
	SendTimeout   time.Duration // one syslog write or HTTPS request (5 s)
	RetryMin      time.Duration // first back-off after a failure (10 ms)
	RetryMax      time.Duration // longest back-off (30 s)
	Attempts      int           // tries of one HTTPS batch before it is dropped (3)
	// Stall is how long one send may take before the drain counts as not
	// keeping up, and its buffer is cut to Buffer lines (250 ms); see
	// buffer.
	Stall time.Duration

	Now    func() time.Time
	Logger *slog.Logger
}

// Manager runs the drains of every app.
type Manager struct {
	cfg Config
	log *slog.Logger
	tls *tls.Config

	mu     sync.Mutex
	apps   atomic.Pointer[map[string][]*drain] // read by Deliver without the lock
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
	sub    *platform.Subscription

	// Counters of drains that were removed, so that totals never go down.
	gone counters
}

// counters are one drain's delivery figures.
type counters struct {
	in, delivered, dropped, errors atomic.Uint64
}

// New returns a Manager; Start runs it.
func New(cfg Config) *Manager {
	// A zero or negative setting takes the default.
	cfg.Buffer = cmp.Or(max(cfg.Buffer, 0), DefaultBuffer)
	cfg.BatchBytes = cmp.Or(max(cfg.BatchBytes, 0), DefaultBatchBytes)
	cfg.Attempts = cmp.Or(max(cfg.Attempts, 0), DefaultAttempts)
	cfg.FlushInterval = cmp.Or(max(cfg.FlushInterval, 0), DefaultFlushInterval)
	cfg.DialTimeout = cmp.Or(max(cfg.DialTimeout, 0), DefaultDialTimeout)
	cfg.SendTimeout = cmp.Or(max(cfg.SendTimeout, 0), DefaultSendTimeout)
	cfg.RetryMin = cmp.Or(max(cfg.RetryMin, 0), DefaultRetryMin)
	cfg.RetryMax = cmp.Or(max(cfg.RetryMax, 0), DefaultRetryMax)
	cfg.Stall = cmp.Or(max(cfg.Stall, 0), DefaultStall)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}),
		tls: &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}}
	empty := map[string][]*drain{}
	m.apps.Store(&empty)
	return m
}

// Start loads every app's drains and follows their changes until Close.
// It subscribes to the events before loading, so no change is missed.
func (m *Manager) Start(ctx context.Context) error {
	if m.cfg.Events != nil {
		m.sub = m.cfg.Events.Subscribe(1024)
	}
	ds, err := m.cfg.Source.AllDrains(ctx)
	if err != nil {
		if m.sub != nil {
			m.sub.Close()
		}
		return fmt.Errorf("drains: %w", err)
	}
	byApp := map[string][]*platform.Drain{}
	for _, d := range ds {
		byApp[d.AppID] = append(byApp[d.AppID], d)
	}
	for appID, ds := range byApp {
		m.set(appID, ds)
	}
	if m.sub != nil {
		m.wg.Add(1)
		go m.follow()
	}
	return nil
}

// follow applies drain changes and app removals.
func (m *Manager) follow() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case e := <-m.sub.C:
			switch e.Kind {
			case platform.EventDrains:
				ds, err := m.cfg.Source.AppDrains(context.Background(), e.AppID)
				if err != nil {
					m.log.Warn("drains: reading an app's drains", "app_id", e.AppID, "err", err)
					continue
				}
				m.set(e.AppID, ds)
			case platform.EventDestroy:
				m.set(e.AppID, nil)
			}
		}
	}
}

// set makes ds the app's running drains: new ones start, removed ones stop
// (what they still hold is discarded), the others go on untouched.
func (m *Manager) set(appID string, ds []*platform.Drain) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	old := *m.apps.Load()
	have := map[string]*drain{}
	for _, d := range old[appID] {
		have[d.id] = d
	}
	var next []*drain
	for _, pd := range ds {
		if d := have[pd.ID]; d != nil {
			next = append(next, d)
			delete(have, pd.ID)
			continue
		}
		d, err := m.newDrain(pd)
		if err != nil {
			m.log.Warn("drains: cannot run a drain", "app_id", appID, "drain", pd.Token, "err", err)
			continue
		}
		next = append(next, d)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			d.run()
		}()
	}
	for _, d := range have {
		d.close()
		m.gone.in.Add(d.c.in.Load())
		m.gone.delivered.Add(d.c.delivered.Load())
		m.gone.dropped.Add(d.c.dropped.Load())
		m.gone.errors.Add(d.c.errors.Load())
	}
	apps := make(map[string][]*drain, len(old)+1)
	for id, v := range old {
		apps[id] = v
	}
	if len(next) == 0 {
		delete(apps, appID)
	} else {
		apps[appID] = next
	}
	m.apps.Store(&apps)
}

// Deliver copies a committed batch of an app's lines into its drains'
// buffers. It never blocks on a drain; logplex calls it from the app's
// channel worker.
func (m *Manager) Deliver(appID string, lines []logplex.Line) {
	ds := (*m.apps.Load())[appID]
	if len(ds) == 0 {
		return
	}
	now := m.cfg.Now().UnixMicro()
	for _, d := range ds {
		d.c.in.Add(uint64(len(lines)))
		if n := d.buf.push(lines, now); n > 0 {
			d.c.dropped.Add(uint64(n))
		}
	}
}

// Close stops every drain; what they hold is discarded.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	for _, ds := range *m.apps.Load() {
		for _, d := range ds {
			d.close()
		}
	}
	close(m.stop)
	m.mu.Unlock()
	if m.sub != nil {
		m.sub.Close()
	}
	m.wg.Wait()
}

// Stat is one drain's figures since it started running.
type Stat struct {
	AppID, Token, Scheme string
	In                   uint64 // lines handed to the drain
	Delivered            uint64 // lines the receiver accepted (L10 lines not counted)
	Dropped              uint64 // lines lost: buffer overflow, refused or given-up batches
	Errors               uint64 // failed connections, writes and requests
	Buffered             int    // lines waiting now
}

// Stats returns every running drain's figures, by app and token.
func (m *Manager) Stats() []Stat {
	var out []Stat
	for appID, ds := range *m.apps.Load() {
		for _, d := range ds {
			out = append(out, Stat{AppID: appID, Token: d.token, Scheme: d.u.Scheme,
				In: d.c.in.Load(), Delivered: d.c.delivered.Load(), Dropped: d.c.dropped.Load(),
				Errors: d.c.errors.Load(), Buffered: d.buf.len()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AppID != out[j].AppID {
			return out[i].AppID < out[j].AppID
		}
		return out[i].Token < out[j].Token
	})
	return out
}

// drain is one running drain.
type drain struct {
	m     *Manager
	id    string
	appID string
	token string
	u     *url.URL
	buf   *buffer
	c     counters
	ctx   context.Context // done when the drain is removed or the manager closes
	stop  context.CancelFunc
	send  sender
	fails atomic.Int32 // consecutive failures, for the back-off
}

// sender delivers a drain's lines to one kind of endpoint: run takes lines
// from the drain's buffer until the drain closes.
type sender interface {
	run(d *drain)
}

func (m *Manager) newDrain(pd *platform.Drain) (*drain, error) {
	u, err := url.Parse(pd.URL)
	if err != nil {
		return nil, err
	}
	d := &drain{m: m, id: pd.ID, appID: pd.AppID, token: pd.Token, u: u}
	d.ctx, d.stop = context.WithCancel(context.Background())
	slots := 1
	switch u.Scheme {
	case "syslog", "syslog+tls":
		d.send = &syslogSender{}
	case "https", "http":
		d.send = newHTTPSender(d)
		slots = httpConns
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	d.buf = newBuffer(m.cfg.Buffer, m.cfg.Stall, &d.c.dropped, slots, d.now)
	return d, nil
}

func (d *drain) run() { d.send.run(d) }

// close stops the drain; what it holds is discarded.
func (d *drain) close() {
	d.buf.timer.Stop()
	d.stop() // also cuts off a connection or request in progress
}

// wait blocks until lines arrive or the drain closes; false when closed.
// A buffer grown for a burst shrinks back after shrinkAfter without lines.
func (d *drain) wait() bool {
	var idle <-chan time.Time
	if d.buf.oversized() {
		t := time.NewTimer(shrinkAfter)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-d.ctx.Done():
			return false
		case <-d.buf.wake:
			return true
		case <-idle:
			d.buf.shrink()
			idle = nil
		}
	}
}

// shrinkAfter is how long a drain's buffer keeps the room a burst made
// it grow once the burst has been delivered.
const shrinkAfter = time.Second

// sleep waits for t or until the drain closes; false when closed.
func (d *drain) sleep(t time.Duration) bool {
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-d.ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// failed counts a failure of slot's send and waits the back-off: RetryMin
// doubled at each consecutive failure, at most RetryMax.
func (d *drain) failed(slot int) bool {
	d.c.errors.Add(1)
	if n := d.buf.done(slot, false); n > 0 {
		d.c.dropped.Add(uint64(n))
	}
	back := d.m.cfg.RetryMin << min(d.fails.Add(1)-1, 20)
	if back <= 0 || back > d.m.cfg.RetryMax {
		back = d.m.cfg.RetryMax
	}
	return d.sleep(back)
}

func (d *drain) now() int64 { return d.m.cfg.Now().UnixMicro() }

// delivered counts lines the receiver accepted in slot's send.
func (d *drain) delivered(slot, n int) {
	d.fails.Store(0)
	d.buf.done(slot, true)
	d.c.delivered.Add(uint64(n))
}

// lost counts lines taken from the buffer that will not be delivered (an
// L10 among them first) by slot's send; the next L10 reports them.
func (d *drain) lost(slot int, lines []logplex.Line, l10 loss) {
	if l10.n > 0 {
		lines = lines[1:]
	}
	var at int64
	if len(lines) > 0 {
		at = lines[0].Time
	}
	d.c.dropped.Add(uint64(len(lines)))
	d.buf.lost(slot, l10, len(lines), at)
}

// sent counts a batch the receiver accepted in slot's send, its L10 line
// excluded.
func (d *drain) sent(slot int, lines []logplex.Line, l10 loss) {
	n := len(lines)
	if l10.n > 0 {
		n--
	}
	d.delivered(slot, n)
}

// l14 reports into the app's log that the drain's certificate does not
// verify, in Heroku's words (a URL without a path is written with "/").
func (d *drain) l14() {
	uri := d.redacted()
	if d.u.Path == "" && d.u.RawQuery == "" {
		uri += "/"
	}
	d.m.cfg.Logs.Log(d.appID, "", "heroku", "logplex",
		`Error L14 (certificate validation): error="bad certificate" uri="`+uri+`"`)
}

// redacted is the drain's URL without credentials, for logs and L14 lines.
func (d *drain) redacted() string {
	u := *d.u
	u.User = nil
	return u.String()
}
