package drain

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/drain/draintest"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/pki"
	"github.com/skiffhq/skiff/internal/platform"
)

const (
	testApp   = "5f0c6a2e-1b7e-4c55-9a57-2f1d0f3b9e11"
	testToken = "d.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc"
)

// source serves a fixed list of drains (the platform's part is tested in
// package api and the e2e tests).
type source struct{ ds []*platform.Drain }

func (s *source) AllDrains(context.Context) ([]*platform.Drain, error) { return s.ds, nil }
func (s *source) AppDrains(_ context.Context, appID string) ([]*platform.Drain, error) {
	var out []*platform.Drain
	for _, d := range s.ds {
		if d.AppID == appID {
			out = append(out, d)
		}
	}
	return out, nil
}

// appLog records the lines the drains write into the app's log (L14).
type appLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *appLog) Log(appID, app, source, dyno, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, source+"["+dyno+"]: "+message)
}

func (l *appLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func start(t *testing.T, rawURL string, mod func(*Config)) (*Manager, *appLog) {
	t.Helper()
	logs := &appLog{}
	cfg := Config{Source: &source{ds: []*platform.Drain{{ID: "1", AppID: testApp, URL: rawURL, Token: testToken}}},
		Logs: logs, RetryMin: time.Millisecond, RetryMax: 50 * time.Millisecond, FlushInterval: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	m := New(cfg)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, logs
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC).UnixMicro()

func line(i int) logplex.Line {
	return logplex.Line{Time: t0 + int64(i), Source: "app", Dyno: "web.1", Message: "line " + strconv.Itoa(i)}
}

func deliver(m *Manager, from, to int) {
	var batch []logplex.Line
	for i := from; i < to; i++ {
		batch = append(batch, line(i))
		if len(batch) == 100 {
			m.Deliver(testApp, batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		m.Deliver(testApp, batch)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ln           logplex.Line
		syslog, http string
	}{
		{logplex.Line{Time: t0, Source: "app", Dyno: "web.1", Message: "Hello ünïcode"},
			"108 <190>1 2024-05-01T12:00:00.123456+00:00 " + testToken + " app web.1 - - Hello ünïcode",
			"72 <190>1 2024-05-01T12:00:00.123456+00:00 host app web.1 - Hello ünïcode"},
		{logplex.Line{Time: t0, Source: "heroku", Dyno: "router", Message: "at=info method=GET"},
			"115 <158>1 2024-05-01T12:00:00.123456+00:00 " + testToken + " heroku router - - at=info method=GET",
			"79 <158>1 2024-05-01T12:00:00.123456+00:00 host heroku router - at=info method=GET"},
		{L10(t0, 7, t0), "", ""},
		{logplex.Line{Time: t0, Source: "heroku", Dyno: "web.1", Message: ""},
			"95 <45>1 2024-05-01T12:00:00.123456+00:00 " + testToken + " heroku web.1 - - ",
			"59 <45>1 2024-05-01T12:00:00.123456+00:00 host heroku web.1 - "},
	} {
		var st stamp
		s := string(appendSyslog([]byte("x"), &tc.ln, testToken, &st))[1:]
		h := string(appendHTTP(nil, &tc.ln, &st))
		for _, f := range []string{s, h} {
			n, rest, _ := strings.Cut(f, " ")
			if strconv.Itoa(len(rest)) != n {
				t.Errorf("%q: octet count %s, message has %d bytes", f, n, len(rest))
			}
		}
		if tc.syslog != "" && (s != tc.syslog || h != tc.http) {
			t.Errorf("frames of %+v:\n got %q\n     %q\nwant %q\n     %q", tc.ln, s, h, tc.syslog, tc.http)
		}
		frames, err := logplex.ParseFrames([]byte(h + h))
		if err != nil || len(frames) != 2 || frames[0].Message != tc.ln.Message || frames[1].Dyno != tc.ln.Dyno {
			t.Errorf("ParseFrames(%q) = %+v, %v", h, frames, err)
		}
	}
	if got, want := L10(t0, 7, t0).Message, "Error L10 (output buffer overflow): 7 messages dropped since 2024-05-01T12:00:00+00:00."; got != want {
		t.Errorf("L10 = %q, want %q", got, want)
	}
	if f := string(appendSyslog(nil, &[]logplex.Line{L10(t0, 1, t0)}[0], testToken, &stamp{})); !strings.Contains(f, " <172>1 ") {
		t.Errorf("L10 frame %q is not local5.warning", f)
	}
	// A sender's stamp renders each line's own time as it changes.
	var st stamp
	for i, us := range []int64{t0, t0, t0 + 1_000_000, t0 + 1, t0, 0} {
		ln := logplex.Line{Time: us, Source: "app", Dyno: "web.1", Message: "m"}
		if got, want := string(appendHTTP(nil, &ln, &st)), string(appendHTTP(nil, &ln, &stamp{})); got != want {
			t.Errorf("line %d with a reused stamp: %q, want %q", i, got, want)
		}
	}
}

func TestSyslogToRsyslog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			scheme := "syslog"
			var ca *pki.CA
			if tc.tls {
				var err error
				if ca, err = pki.Open(t.TempDir(), "Skiff test CA"); err != nil {
					t.Fatal(err)
				}
				if cert, err = ca.Issue([]string{"127.0.0.1"}, time.Hour); err != nil {
					t.Fatal(err)
				}
				scheme = "syslog+tls"
			}
			r := draintest.StartRsyslog(t, cert)
			m, logs := start(t, scheme+"://"+r.Addr, func(c *Config) {
				if ca != nil {
					c.RootCAs = ca.Pool()
				}
			})
			m.Deliver(testApp, []logplex.Line{
				{Time: t0, Source: "app", Dyno: "web.1", Message: "Hello ünïcode [x] = y"},
				{Time: t0 + 1, Source: "heroku", Dyno: "router", Message: `at=info method=GET path="/"`},
			})
			deliver(m, 0, 500)
			got := r.Lines(t, 502)
			want := []string{
				testToken + "|app|web.1|-|-|190|2024-05-01T12:00:00.123456+00:00|Hello ünïcode [x] = y",
				testToken + `|heroku|router|-|-|158|2024-05-01T12:00:00.123457+00:00|at=info method=GET path="/"`,
			}
			for i, w := range want {
				if got[i] != w {
					t.Errorf("rsyslog line %d = %q, want %q", i, got[i], w)
				}
			}
			for i := range 500 {
				if !strings.HasSuffix(got[i+2], "|line "+strconv.Itoa(i)) {
					t.Fatalf("rsyslog line %d = %q, want line %d", i+2, got[i+2], i)
				}
			}
			if l := logs.get(); len(l) != 0 {
				t.Errorf("app log got %q", l)
			}
			st := m.Stats()
			if len(st) != 1 || st[0].In != 502 || st[0].Delivered != 502 || st[0].Dropped != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// TestRsyslogStallsThenRecovers: rsyslog stops reading (SIGSTOP) while
// lines keep coming; once it runs again it gets an L10 line first, and the
// lines it wrote plus the count the L10 reports are exactly what was sent.
func TestRsyslogStallsThenRecovers(t *testing.T) {
	t.Parallel()
	r := draintest.StartRsyslog(t, nil)
	m, _ := start(t, "syslog://"+r.Addr, func(c *Config) { c.SendTimeout = time.Minute })
	deliver(m, 0, 10)
	r.Lines(t, 10) // connected and flowing
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	// Long lines until the socket buffers are full and the sender is
	// stuck in a write; then as many short ones again as the buffer holds.
	long := strings.Repeat("x", 9000)
	sent := 10
	waitFor(t, "a stuck sender", func() bool {
		for range 10 {
			m.Deliver(testApp, []logplex.Line{{Time: t0, Source: "app", Dyno: "web.1", Message: "long " + strconv.Itoa(sent) + " " + long}})
			sent++
		}
		time.Sleep(time.Millisecond)
		return m.Stats()[0].Buffered == DefaultBuffer
	})
	deliver(m, sent, sent+3*DefaultBuffer)
	sent += 3 * DefaultBuffer
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	l10 := regexp.MustCompile(`\|heroku\|logplex\|-\|-\|172\|[^|]+\|Error L10 \(output buffer overflow\): (\d+) messages dropped since `)
	var got, reported, firstL10 int
	waitFor(t, "every line delivered or reported", func() bool {
		got, reported, firstL10 = 0, 0, -1
		for i, l := range r.Read() {
			if m := l10.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				reported += n
				if firstL10 < 0 {
					firstL10 = i
				}
			} else if strings.Contains(l, "|app|web.1|") {
				got++
			}
		}
		return got+reported == sent
	})
	st := m.Stats()[0]
	if reported == 0 || uint64(reported) != st.Dropped || uint64(got) != st.Delivered {
		t.Errorf("rsyslog got %d lines and L10s reporting %d; stats %+v", got, reported, st)
	}
	if firstL10 < 10 {
		t.Errorf("first L10 at line %d", firstL10)
	}
}

func TestSyslogBadCertificate(t *testing.T) {
	t.Parallel()
	trusted, err := pki.Open(t.TempDir(), "Trusted CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.Open(t.TempDir(), "Unknown CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := other.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := draintest.StartRsyslog(t, cert)
	m, logs := start(t, "syslog+tls://"+r.Addr, func(c *Config) { c.RootCAs = trusted.Pool() })
	deliver(m, 0, 10)
	want := `heroku[logplex]: Error L14 (certificate validation): error="bad certificate" uri="syslog+tls://` + r.Addr + `/"`
	waitFor(t, "an L14 line", func() bool { l := logs.get(); return len(l) > 0 && l[0] == want })
	if st := m.Stats(); st[0].Delivered != 0 || st[0].Errors == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestHTTPSBadCertificate(t *testing.T) {
	t.Parallel()
	u, _ := startReceiver(t, &receiver{})
	trusted, err := pki.Open(t.TempDir(), "Trusted CA")
	if err != nil {
		t.Fatal(err)
	}
	m, logs := start(t, u, func(c *Config) { c.RootCAs = trusted.Pool() })
	deliver(m, 0, 10)
	want := `heroku[logplex]: Error L14 (certificate validation): error="bad certificate" uri="` + strings.Replace(u, "user:pa%3Ass@", "", 1) + `"`
	waitFor(t, "an L14 line", func() bool { l := logs.get(); return len(l) > 0 && l[0] == want })
	for _, l := range logs.get() {
		if strings.Contains(l, "user:") {
			t.Errorf("L14 line shows the drain's credentials: %q", l)
		}
	}
}

// receiver is an HTTPS drain endpoint that checks what Logplex promises
// and keeps each frame once, by Logplex-Frame-Id.
type receiver struct {
	t       *testing.T
	mu      sync.Mutex
	frames  map[string]bool
	lines   []logplex.Frame
	posts   int
	status  func(n int) int // status of the n-th POST (from 1); nil: 200
	stall   chan struct{}   // when set, requests wait until it is closed
	stalled chan struct{}   // closed when the first request waits
}

var frameIDRe = regexp.MustCompile(`^[0-9A-F]{32}$`)

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := rc.t
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if rc.stall != nil {
		rc.mu.Lock()
		if rc.stalled != nil {
			close(rc.stalled)
			rc.stalled = nil
		}
		rc.mu.Unlock()
		<-rc.stall
	}
	user, pass, ok := r.BasicAuth()
	id := r.Header.Get("Logplex-Frame-Id")
	switch {
	case r.Method != "POST" || r.URL.Path != "/logs" || r.URL.RawQuery != "x=1":
		t.Errorf("request %s %s", r.Method, r.URL)
	case !ok || user != "user" || pass != "pa:ss":
		t.Errorf("basic auth = %q %q %v", user, pass, ok)
	case r.Header.Get("Content-Type") != "application/logplex-1":
		t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
	case r.Header.Get("Logplex-Drain-Token") != testToken:
		t.Errorf("Logplex-Drain-Token = %q", r.Header.Get("Logplex-Drain-Token"))
	case !strings.HasPrefix(r.Header.Get("User-Agent"), "Logplex/"):
		t.Errorf("User-Agent = %q", r.Header.Get("User-Agent"))
	case !frameIDRe.MatchString(id):
		t.Errorf("Logplex-Frame-Id = %q", id)
	}
	frames, err := logplex.ParseFrames(body)
	if err != nil || r.Header.Get("Logplex-Msg-Count") != strconv.Itoa(len(frames)) || len(body) > 110<<10 {
		t.Errorf("batch of %d bytes, Logplex-Msg-Count %s: %d frames, %v", len(body), r.Header.Get("Logplex-Msg-Count"), len(frames), err)
	}
	prev := -1
	for i, f := range frames { // a batch is in order, an L10 only first
		if l10Re.MatchString(f.Message) {
			if i > 0 {
				t.Errorf("L10 at frame %d of a batch", i)
			}
			continue
		}
		if n, ok := lineNumber(f.Message); ok {
			if n <= prev {
				t.Errorf("line %d after line %d in a batch", n, prev)
			}
			prev = n
		}
	}
	rc.mu.Lock()
	rc.posts++
	status := http.StatusOK
	if rc.status != nil {
		status = rc.status(rc.posts)
	}
	// A 503 stands for an answer lost on the way back: the batch was kept.
	if !rc.frames[id] && (status/100 == 2 || status == http.StatusServiceUnavailable) {
		rc.frames[id] = true
		rc.lines = append(rc.lines, frames...)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

// lineNumber is N of a test line "line N …".
func lineNumber(msg string) (int, bool) {
	fields := strings.Fields(msg)
	i, err := strconv.Atoi(fields[min(1, len(fields)-1)])
	return i, err == nil
}

func (rc *receiver) got() []logplex.Frame {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]logplex.Frame(nil), rc.lines...)
}

func startReceiver(t *testing.T, rc *receiver) (string, *pki.CA) {
	t.Helper()
	rc.t, rc.frames = t, map[string]bool{}
	ca, err := pki.Open(t.TempDir(), "Skiff test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv := draintest.ServeTLS(t, rc, ca)
	t.Cleanup(func() { // before the server closes: it waits for its handlers
		if rc.stall != nil {
			select {
			case <-rc.stall:
			default:
				close(rc.stall)
			}
		}
	})
	return "https://user:pa%3Ass@" + srv.Listener.Addr().String() + "/logs?x=1", ca
}

var l10Re = regexp.MustCompile(`^Error L10 \(output buffer overflow\): (\d+) messages dropped since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\.$`)

// count checks that the lines from..to-1 that arrived arrived once each,
// and that an L10 arrived after every line taken before the loss it
// reports (each line after it is newer than every line before it), and
// returns the lines and the total the L10 lines report. Batches may
// arrive out of order (several in flight); the receiver checks the order
// within each.
func count(t *testing.T, got []logplex.Frame, from, to int) (delivered, reported int) {
	t.Helper()
	l10 := l10Re
	last, floor := from-1, from-1 // the newest line so far; the newest before the last L10
	seen := map[int]bool{}
	for _, f := range got {
		if m := l10.FindStringSubmatch(f.Message); m != nil {
			if f.Source != "heroku" || f.Dyno != "logplex" {
				t.Errorf("L10 from %s[%s]", f.Source, f.Dyno)
			}
			n, _ := strconv.Atoi(m[1])
			reported += n
			floor = last
			continue
		}
		i, ok := lineNumber(f.Message)
		if !ok || i <= floor || i >= to || seen[i] {
			t.Fatalf("unexpected line %.40q (lines up to %d came before the last L10)", f.Message, floor)
		}
		seen[i] = true
		last = max(last, i)
		delivered++
	}
	return delivered, reported
}

func TestHTTPSBatchesRetriesAndDeduplication(t *testing.T) {
	t.Parallel()
	// Every frame's first POST is answered 503 (after the receiver kept
	// it), so each is sent twice with the same frame id; every 7th POST
	// is refused with a 429, retried too.
	rc := &receiver{status: func(n int) int {
		if n%7 == 0 {
			return http.StatusTooManyRequests
		}
		if n%2 == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	u, ca := startReceiver(t, rc)
	m, _ := start(t, u, func(c *Config) { c.RootCAs = ca.Pool(); c.Attempts = 100 })
	long := strings.Repeat("x", 9000)
	for i := 0; i < 3000; i += 100 {
		var b []logplex.Line
		for j := i; j < i+100; j++ {
			ln := line(j)
			if j%10 == 0 {
				ln.Message += " " + long // batches reach the byte target
			}
			b = append(b, ln)
		}
		m.Deliver(testApp, b)
		waitFor(t, "the buffer to empty", func() bool { return m.Stats()[0].Buffered < 500 })
	}
	waitFor(t, "3000 lines", func() bool { return m.Stats()[0].Delivered == 3000 })
	got := rc.got()
	if d, r := count(t, got, 0, 3000); d != 3000 || r != 0 {
		t.Errorf("received %d lines (L10s reporting %d), want 3000 and 0", d, r)
	}
}

func TestHTTPSRefusedBatchIsReported(t *testing.T) {
	t.Parallel()
	rc := &receiver{status: func(n int) int {
		if n == 1 {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}}
	u, ca := startReceiver(t, rc)
	m, _ := start(t, u, func(c *Config) { c.RootCAs = ca.Pool() })
	deliver(m, 0, 10)
	waitFor(t, "a refused batch", func() bool { return m.Stats()[0].Dropped == 10 })
	deliver(m, 10, 20)
	waitFor(t, "10 more lines", func() bool { return m.Stats()[0].Delivered == 10 })
	d, r := count(t, rc.got(), 10, 20)
	if d != 10 || r != 10 {
		t.Errorf("after a refused batch: %d lines, L10 reporting %d; want 10 and 10", d, r)
	}
}

func TestStalledDrainRecoversWithL10(t *testing.T) {
	t.Parallel()
	rc := &receiver{stall: make(chan struct{}), stalled: make(chan struct{})}
	stalled := rc.stalled
	u, ca := startReceiver(t, rc)
	// Any send in flight counts as stalled at once (Stall rounds to 0 µs).
	m, _ := start(t, u, func(c *Config) { c.RootCAs = ca.Pool(); c.SendTimeout = time.Minute; c.Stall = time.Nanosecond })
	deliver(m, 0, 10)
	<-stalled // the first batch is in flight, held by the receiver
	const total = 10000
	deliver(m, 10, total) // never blocks: the buffer drops the oldest
	st := m.Stats()[0]
	if st.Buffered != DefaultBuffer || st.Dropped == 0 {
		t.Fatalf("stats while stalled = %+v", st)
	}
	close(rc.stall)
	waitFor(t, "the drain to catch up", func() bool {
		s := m.Stats()[0]
		return s.Buffered == 0 && s.Delivered+s.Dropped == total
	})
	d, r := count(t, rc.got(), 0, total)
	if d+r != total || r == 0 || uint64(r) != m.Stats()[0].Dropped {
		t.Errorf("delivered %d, L10s report %d, stats %+v: want %d in all", d, r, m.Stats()[0], total)
	}
	// count checked that the L10 came after the lines in flight during
	// the stall and before every line that followed the loss.
}

// TestHealthyDrainsTakeABurst: a burst far larger than the buffer,
// committed in a few big batches as logplex does when its worker is
// behind, reaches a healthy HTTPS receiver and a healthy rsyslog whole:
// the buffer's bound is for drains that do not keep up.
func TestHealthyDrainsTakeABurst(t *testing.T) {
	t.Parallel()
	const burst = 10000
	batches := func(m *Manager) {
		var batch []logplex.Line
		for i := range burst {
			batch = append(batch, line(i))
			if len(batch) == burst/4 {
				m.Deliver(testApp, batch)
				batch = batch[:0]
			}
		}
	}
	t.Run("https", func(t *testing.T) {
		t.Parallel()
		rc := &receiver{}
		u, ca := startReceiver(t, rc)
		m, _ := start(t, u, func(c *Config) { c.RootCAs = ca.Pool() })
		batches(m)
		waitFor(t, "the burst delivered", func() bool { return m.Stats()[0].Delivered == burst })
		if d, r := count(t, rc.got(), 0, burst); d != burst || r != 0 {
			t.Errorf("receiver got %d lines and L10s reporting %d, want %d and none", d, r, burst)
		}
		if st := m.Stats()[0]; st.Dropped != 0 || st.Buffered != 0 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("rsyslog", func(t *testing.T) {
		t.Parallel()
		r := draintest.StartRsyslog(t, nil)
		m, _ := start(t, "syslog://"+r.Addr, nil)
		batches(m)
		got := r.Lines(t, burst)
		for i, l := range got {
			if !strings.HasSuffix(l, "|line "+strconv.Itoa(i)) {
				t.Fatalf("rsyslog line %d = %q, want line %d", i, l, i)
			}
		}
		waitFor(t, "the stats", func() bool { return m.Stats()[0].Delivered == burst })
		if st := m.Stats()[0]; st.Dropped != 0 || st.Buffered != 0 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestDeadDrainNeverBlocks(t *testing.T) {
	t.Parallel()
	// A listener that accepts nothing: connections hang in the backlog,
	// then are refused once it is closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, u := range []string{"syslog://" + addr, "https://" + addr + "/logs"} {
		t.Run(u, func(t *testing.T) {
			m, _ := start(t, u, nil)
			deliver(m, 0, 100000)
			if st := m.Stats()[0]; st.In != 100000 {
				t.Errorf("stats = %+v", st)
			}
			// Once the first connection fails, the buffer keeps Buffer
			// lines (besides a batch in flight).
			waitFor(t, "the buffer cut to its bound", func() bool {
				return m.Stats()[0].Dropped >= 100000-uint64(DefaultBuffer)-2048
			})
		})
	}
}

// TestStuckDrainCloses: a drain whose receiver never reads is cut off when
// it is removed, without waiting for its (here endless) send timeout.
func TestStuckDrainCloses(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	m, _ := start(t, "syslog://"+ln.Addr().String(), func(c *Config) { c.SendTimeout = time.Hour })
	// Long lines until the socket buffers are full and the sender is stuck
	// in a write: then its buffer fills up.
	long := strings.Repeat("x", 9000)
	waitFor(t, "a stuck sender", func() bool {
		for range 10 {
			m.Deliver(testApp, []logplex.Line{{Time: t0, Source: "app", Dyno: "web.1", Message: long}})
		}
		time.Sleep(time.Millisecond)
		return m.Stats()[0].Buffered == DefaultBuffer
	})
	c := <-accepted
	defer c.Close()
	m.Close() // returns: the blocked write is cut off
}

func TestDrainChanges(t *testing.T) {
	t.Parallel()
	bus := platform.NewBus()
	src := &source{}
	m := New(Config{Source: src, Events: bus, FlushInterval: time.Millisecond})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rc := &receiver{}
	u, ca := startReceiver(t, rc)
	m.tls.RootCAs = ca.Pool()
	src.ds = []*platform.Drain{{ID: "1", AppID: testApp, URL: u, Token: testToken}}
	bus.Publish(platform.Event{Kind: platform.EventDrains, AppID: testApp})
	waitFor(t, "the new drain", func() bool { return len(m.Stats()) == 1 })
	deliver(m, 0, 5)
	waitFor(t, "5 lines", func() bool { return len(rc.got()) == 5 })
	bus.Publish(platform.Event{Kind: platform.EventDestroy, AppID: testApp})
	waitFor(t, "the drain to stop", func() bool { return len(m.Stats()) == 0 })
	deliver(m, 5, 10)
	if n := len(rc.got()); n != 5 {
		t.Errorf("a removed drain delivered %d lines", n-5)
	}
}

// TestBufferSlots: with several sends in flight, the drain stops counting
// as keeping up as soon as the oldest of them has lasted the stall time,
// and counts again once that one has ended.
func TestBufferSlots(t *testing.T) {
	var drops atomic.Uint64
	var now int64 = 1_000_000
	b := newBuffer(4, 250*time.Millisecond, &drops, 2, func() int64 { return now })
	defer b.timer.Stop()
	b.push([]logplex.Line{line(0), line(1)}, now)
	b.take(0, nil, 1, 1<<20, now)
	now += 200_000
	b.take(1, nil, 1, 1<<20, now)
	steps := []struct {
		name  string
		at    int64 // µs after the second take
		do    func()
		limit int
	}{
		{"both sends young", 10_000, nil, b.hard},
		{"the first has lasted the stall", 60_000, nil, b.max},
		{"the first ended", 60_000, func() { b.done(0, true) }, b.hard},
		{"the second has lasted the stall", 250_000, nil, b.max},
		{"the second failed", 250_000, func() { b.done(1, false) }, b.max},
	}
	base := now
	for _, s := range steps {
		now = base + s.at
		if s.do != nil {
			s.do()
		}
		b.mu.Lock()
		got := b.limit(now)
		b.mu.Unlock()
		if got != s.limit {
			t.Errorf("%s: limit %d, want %d", s.name, got, s.limit)
		}
	}
}

// TestHTTPSBatchesInFlight: an HTTPS drain has several batches in flight
// at once (each request here waits until httpConns of them are in flight).
func TestHTTPSBatchesInFlight(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inFlight, most := 0, 0
	all := make(chan struct{})
	rc := &receiver{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == httpConns {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second): // a guard, not a measurement
		}
		rc.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	ca, err := pki.Open(t.TempDir(), "Skiff test CA")
	if err != nil {
		t.Fatal(err)
	}
	rc.t, rc.frames = t, map[string]bool{}
	srv := draintest.ServeTLS(t, h, ca)
	// The first batches wait for the last one, which may take a while to
	// connect on a busy machine: no stall cut meanwhile.
	m, _ := start(t, "https://user:pa%3Ass@"+srv.Listener.Addr().String()+"/logs?x=1", func(c *Config) { c.RootCAs = ca.Pool(); c.Stall = time.Minute })
	const total = 8000
	var batch []logplex.Line
	for i := range total {
		batch = append(batch, line(i))
	}
	m.Deliver(testApp, batch)
	waitFor(t, "the lines delivered", func() bool { return m.Stats()[0].Delivered == total })
	if d, r := count(t, rc.got(), 0, total); d != total || r != 0 {
		t.Errorf("receiver got %d lines and L10s reporting %d, want %d and none", d, r, total)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != httpConns {
		t.Errorf("at most %d batches in flight, want %d", most, httpConns)
	}
}

// TestBufferPush: the buffer keeps the newest lines within its bound,
// across the ring's wrap, and counts the others from the oldest, whether
// they were held or come in a batch larger than the bound.
// TestBufferShrink: a ring grown for a burst is kept while lines keep
// coming (no regrowth at every batch) and given back once empty and idle.
func TestBufferShrink(t *testing.T) {
	var drops atomic.Uint64
	b := newBuffer(4, time.Second, &drops, 1, func() int64 { return 1 })
	defer b.timer.Stop()
	burst := make([]logplex.Line, 10)
	for i := range burst {
		burst[i] = line(i)
	}
	b.push(burst, 1)
	b.shrink() // lines held: kept
	if !b.oversized() {
		t.Fatal("the ring did not grow for the burst, or shrank with lines in it")
	}
	got, _ := b.take(0, nil, 100, 1<<20, 1)
	b.done(0, true)
	if len(got) != 10 || !b.oversized() {
		t.Fatalf("took %d lines; oversized after the delivery = %v, want kept", len(got), b.oversized())
	}
	b.shrink()
	if b.oversized() || len(b.ring) != b.max {
		t.Errorf("ring of %d after shrink, want %d", len(b.ring), b.max)
	}
}

func TestBufferPush(t *testing.T) {
	lines := func(from, to int) []logplex.Line {
		var out []logplex.Line
		for i := from; i < to; i++ {
			out = append(out, line(i))
		}
		return out
	}
	tests := []struct {
		name      string
		taken     int // lines taken (and delivered) after the first push
		pushes    [][2]int
		failed    bool  // the last delivery failed: the bound is 4
		wantLines []int // held afterwards, oldest first
		wantDrop  int
		since     int // line whose time the L10 reports
	}{
		{"fits", 0, [][2]int{{0, 3}}, false, []int{0, 1, 2}, 0, 0},
		{"wraps", 3, [][2]int{{0, 3}, {3, 6}}, true, []int{3, 4, 5}, 0, 0},
		{"held dropped", 0, [][2]int{{0, 3}, {3, 6}}, true, []int{2, 3, 4, 5}, 2, 0},
		{"batch larger than the bound", 0, [][2]int{{0, 2}, {2, 12}}, true, []int{8, 9, 10, 11}, 8, 0},
		{"batch alone larger than the bound", 0, [][2]int{{0, 0}, {5, 15}}, true, []int{11, 12, 13, 14}, 6, 5},
		{"healthy drains hold more", 0, [][2]int{{0, 3}, {3, 40}}, false, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var drops atomic.Uint64
			b := newBuffer(4, time.Minute, &drops, 1, func() int64 { return t0 })
			defer b.timer.Stop()
			dropped := 0
			for i, p := range tt.pushes {
				if i == 1 {
					if tt.taken > 0 {
						b.take(0, nil, tt.taken, 1<<20, t0)
					}
					if tt.failed {
						b.done(0, false)
					}
				}
				dropped += b.push(lines(p[0], p[1]), t0)
			}
			if tt.wantLines == nil { // healthy: nothing dropped
				if dropped != 0 || b.len() != 40 {
					t.Fatalf("dropped %d, held %d; want 0 and 40", dropped, b.len())
				}
				return
			}
			got, l10 := b.take(0, nil, 100, 1<<20, t0)
			if tt.wantDrop > 0 {
				if l10.n != tt.wantDrop || dropped != tt.wantDrop || l10.since != line(tt.since).Time {
					t.Fatalf("L10 %+v, dropped %d; want %d since line %d", l10, dropped, tt.wantDrop, tt.since)
				}
				got = got[1:]
			} else if l10.n != 0 || dropped != 0 {
				t.Fatalf("L10 %+v, dropped %d; want none", l10, dropped)
			}
			var nums []int
			for _, ln := range got {
				n, _ := lineNumber(ln.Message)
				nums = append(nums, n)
			}
			if fmt.Sprint(nums) != fmt.Sprint(tt.wantLines) {
				t.Errorf("held %v, want %v", nums, tt.wantLines)
			}
		})
	}
}
