package logplex

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/clocktest"
	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/platform"
)

// The dyno manager writes into a Logplex.
var _ dyno.BatchLogs = (*Logplex)(nil)

const testApp = "5f0c6a2e-1b7e-4c55-9a57-2f1d0f3b9e11"

func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
}

// fixture is a Logplex over dir with an HTTP server for its streams.
type fixture struct {
	t   *testing.T
	l   *Logplex
	srv *httptest.Server
	dir string
}

func open(t *testing.T, dir string, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: dir}
	var mu sync.Mutex
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		l := f.l
		mu.Unlock()
		id, ok := strings.CutPrefix(r.URL.Path, "/logstream/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if err := l.ServeStream(w, r, id); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
	}))
	cfg := Config{Dir: dir, URL: f.srv.URL}
	if mod != nil {
		mod(&cfg)
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mu.Lock()
	f.l = l
	mu.Unlock()
	t.Cleanup(func() {
		l.EndStreams()
		f.srv.Close()
		l.Close()
	})
	return f
}

// session creates a session and returns its URL.
func (f *fixture) session(o SessionOptions) string {
	f.t.Helper()
	s, err := f.l.CreateSession(testApp, "myapp", o)
	if err != nil {
		f.t.Fatal(err)
	}
	return s.URL
}

// messages returns the messages of lines.
func messages(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

func logN(l *Logplex, app string, from, to int) {
	for i := from; i < to; i++ {
		l.Log(app, "myapp", "app", "web.1", "line "+strconv.Itoa(i))
	}
}

func lineRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, "line "+strconv.Itoa(i))
	}
	return out
}

// diskRecords counts the records of an app's two segment files.
func diskRecords(t *testing.T, dir, app string) int {
	t.Helper()
	n := 0
	for _, suffix := range []string{segPrev, segCurrent} {
		k, _, err := readSegment(filepath.Join(dir, fileBase(app)+suffix), func(Line) {})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

func TestHistoryBounds(t *testing.T) {
	tests := []struct {
		logged, history int
	}{
		{0, 10}, {5, 10}, {10, 10}, {11, 10}, {20, 10}, {21, 10}, {35, 10}, {4000, 1500},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d lines, history %d", tt.logged, tt.history), func(t *testing.T) {
			dir := t.TempDir()
			f := open(t, dir, func(c *Config) { c.History = tt.history })
			logN(f.l, testApp, 0, tt.logged)
			f.l.Sync()
			kept := min(tt.logged, tt.history)
			got := f.l.History(testApp, 0)
			if want := lineRange(tt.logged-kept, tt.logged); !slices.Equal(messages(got), want) {
				t.Fatalf("history has %d lines %v…, want %d", len(got), abbreviate(messages(got[:min(3, len(got))])), len(want))
			}
			for i, l := range got {
				if want := uint64(tt.logged - kept + i + 1); l.Seq != want {
					t.Fatalf("line %d has seq %d, want %d", i, l.Seq, want)
				}
			}
			// The history and at most four of them.
			if n := diskRecords(t, dir, testApp); n < kept || n > maxDisk(tt.history) {
				t.Errorf("%d records on disk, want between %d and %d", n, kept, maxDisk(tt.history))
			}
			if got := f.l.History(testApp, 3); len(got) != min(3, kept) {
				t.Errorf("History(3) returned %d lines", len(got))
			}
		})
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	const other = "0b8a9c63-8f1e-4d0e-8a1e-3c2f0e4b5a77"
	dir := t.TempDir()
	clock := newClock()
	f := open(t, dir, func(c *Config) { c.Now = clock.Now })
	for i := range 2000 {
		clock.Advance(time.Microsecond * 1234)
		f.l.Log(testApp, "myapp", "app", "web."+strconv.Itoa(i%3+1), "line "+strconv.Itoa(i))
	}
	f.l.Log(other, "other", "heroku", "router", "at=info ✓ \xff")
	f.l.Sync()
	before, beforeOther := f.l.History(testApp, 0), f.l.History(other, 0)
	if err := f.l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	g := open(t, dir, func(c *Config) { c.Now = clock.Now })
	// Apps lists the histories found on disk (the server removes those of
	// apps destroyed while it was down).
	apps := g.l.Apps()
	slices.Sort(apps)
	if !slices.Equal(apps, []string{other, testApp}) {
		t.Errorf("Apps after a restart = %v, want %s and %s", apps, other, testApp)
	}
	after := g.l.History(testApp, 0)
	if len(after) != 1500 || !slices.Equal(after, before) {
		t.Fatalf("after a restart the history has %d lines, want the same 1500 as before", len(after))
	}
	if got := g.l.History(other, 0); !slices.Equal(got, beforeOther) || got[0].Message != "at=info ✓ \uFFFD" {
		t.Errorf("other app's history after restart = %v, want %v", got, beforeOther)
	}
	g.l.Log(testApp, "myapp", "app", "web.1", "after restart")
	g.l.Sync()
	last := g.l.History(testApp, 1)[0]
	if last.Seq != 2001 || last.Message != "after restart" {
		t.Errorf("first line after the restart: seq %d %q, want seq 2001", last.Seq, last.Message)
	}
}

// TestCrashReopen simulates a crash: the first Logplex is never closed,
// a second one opens the same directory, as a restarted server does.
func TestCrashReopen(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	logN(a.l, testApp, 0, 100)
	a.l.Sync() // what Sync returns for is written to the OS

	b := open(t, dir, nil)
	if got := messages(b.l.History(testApp, 0)); !slices.Equal(got, lineRange(0, 100)) {
		t.Fatalf("after a crash the history has %d lines, want the 100 acknowledged", len(got))
	}

	// A torn write: half a record, then garbage, at the end of the current
	// segment.
	path := filepath.Join(dir, fileBase(testApp)+segCurrent)
	rec := appendRecord(nil, &Line{Seq: 101, Time: 1, Source: "app", Dyno: "web.1", Message: "torn"})
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(rec[:len(rec)/2])
	fh.Close()

	c := open(t, dir, nil)
	if got := messages(c.l.History(testApp, 0)); !slices.Equal(got, lineRange(0, 100)) {
		t.Fatalf("with a torn record the history has %d lines, want 100", len(got))
	}
	c.l.Log(testApp, "myapp", "app", "web.1", "after the tear")
	c.l.Sync()

	d := open(t, dir, nil)
	got := d.l.History(testApp, 0)
	if len(got) != 101 || got[100].Message != "after the tear" || got[100].Seq != 101 {
		t.Fatalf("after appending past a torn record: %d lines, last %+v", len(got), got[len(got)-1])
	}
}

func TestLogNeverBlocks(t *testing.T) {
	f := open(t, t.TempDir(), func(c *Config) { c.QueueLines = 100 })
	f.l.Log(testApp, "myapp", "app", "web.1", "first")
	f.l.Sync()
	c := f.l.channelFor(testApp)
	// A stuck worker: it cannot make the lines it takes visible.
	c.mu.Lock()
	const n = 10000
	logN(f.l, testApp, 0, n)
	m := f.l.Metrics()
	c.mu.Unlock()
	if m.DroppedQueue == 0 || m.LinesIn+m.DroppedQueue != n+1 {
		t.Errorf("with a stuck worker: %d lines in, %d dropped, want some dropped and %d in all", m.LinesIn, m.DroppedQueue, n+1)
	}
	f.l.Sync()
	if got := f.l.Metrics().LinesStored; got != m.LinesIn {
		t.Errorf("%d lines stored, want the %d queued", got, m.LinesIn)
	}

	f.l.Close()
	f.l.Log(testApp, "myapp", "app", "web.1", "after close")
	if got := f.l.Metrics().DroppedClosed; got != 1 {
		t.Errorf("a line after Close: DroppedClosed = %d, want 1", got)
	}
}

// TestSlowTail: a tail session whose reader reads nothing loses lines,
// ingestion goes on, and the session is told exactly how many it lost.
func TestSlowTail(t *testing.T) {
	clock := newClock()
	f := open(t, t.TempDir(), func(c *Config) { c.TailBuffer = 100; c.Now = clock.Now })
	c := f.l.channelFor(testApp)
	tl := &tail{f: newFilter("", ""), max: 100, notify: make(chan struct{}, 1), ended: make(chan struct{})}
	if _, ok := c.open(tl.f, 0, 0, false, tl); !ok {
		t.Fatal("open failed")
	}
	const n = 10000
	logN(f.l, testApp, 0, n) // completes although nobody reads
	f.l.Sync()
	m := f.l.Metrics()
	accepted := int(m.LinesIn)
	if accepted+int(m.DroppedQueue) != n {
		t.Fatalf("%d lines in + %d dropped at ingest, want %d", m.LinesIn, m.DroppedQueue, n)
	}
	missed := accepted - 100
	clock.Advance(time.Second)
	got := tl.take(nil, clock.Now().UnixMicro())
	if len(got) != 101 {
		t.Fatalf("the session got %d lines, want its buffer of 100 and an L11 line", len(got))
	}
	if want := lineRange(0, 100); !slices.Equal(messages(got[:100]), want) {
		t.Errorf("the session kept %v…, want the first 100 lines", abbreviate(messages(got[:3])))
	}
	wantL11 := fmt.Sprintf("2024-05-01T12:00:01.000000+00:00 heroku[logplex]: Error L11 (Tail buffer overflow) -> "+
		"This tail session dropped %d messages since 2024-05-01T12:00:00+00:00.", missed)
	if got[100].String() != wantL11 || got[100].Seq != 0 {
		t.Errorf("last line = %q (seq %d)\nwant        %q (no seq)", got[100].String(), got[100].Seq, wantL11)
	}
	if m.DroppedTail != uint64(missed) {
		t.Errorf("DroppedTail = %d, want %d", m.DroppedTail, missed)
	}
	f.l.Log(testApp, "myapp", "app", "web.1", "caught up")
	f.l.Sync()
	if got := tl.take(nil, 0); len(got) != 1 || got[0].Message != "caught up" {
		t.Errorf("after catching up the session got %v, want just the new line", messages(got))
	}
}

// TestTailTakesABurst: a tail session whose reader keeps up (it waits for
// lines) gets a burst of 10 000 lines, committed in big batches, whole and
// without an L11; one whose reader took lines long ago and has not come
// back keeps TailBuffer lines.
func TestTailTakesABurst(t *testing.T) {
	clock := newClock()
	f := open(t, t.TempDir(), func(c *Config) { c.Now = clock.Now })
	c := f.l.channelFor(testApp)
	keeping := &tail{f: newFilter("", ""), max: DefaultTailBuffer, notify: make(chan struct{}, 1), ended: make(chan struct{})}
	stuck := &tail{f: newFilter("", ""), max: DefaultTailBuffer, notify: make(chan struct{}, 1), ended: make(chan struct{})}
	for _, tl := range []*tail{keeping, stuck} {
		if _, ok := c.open(tl.f, 0, 0, false, tl); !ok {
			t.Fatal("open failed")
		}
	}
	keeping.ready()
	stuck.take(nil, clock.Now().UnixMicro())
	clock.Advance(time.Second) // the stuck reader's write has lasted a second
	const n = 10000
	frames := make([]Frame, 0, 1000)
	for i := range n {
		frames = append(frames, Frame{Source: "app", Dyno: "web.1", Message: "line " + strconv.Itoa(i)})
		if len(frames) == cap(frames) {
			f.l.LogFrames(testApp, frames)
			frames = frames[:0]
		}
	}
	f.l.Sync()
	if got := keeping.take(nil, clock.Now().UnixMicro()); !slices.Equal(messages(got), lineRange(0, n)) {
		t.Errorf("the session that keeps up got %d lines (%v…), want the %d", len(got), abbreviate(messages(got[:min(3, len(got))])), n)
	}
	if got := stuck.take(nil, clock.Now().UnixMicro()); len(got) != DefaultTailBuffer+1 || !strings.Contains(got[DefaultTailBuffer].Message, "Error L11") {
		t.Errorf("the stuck session got %d lines, want %d and an L11", len(got), DefaultTailBuffer+1)
	}
}

func TestAuditEventsAndDestroy(t *testing.T) {
	bus := platform.NewBus()
	dir := t.TempDir()
	f := open(t, dir, func(c *Config) { c.Events = bus })
	at := time.Date(2024, 5, 1, 12, 0, 0, 250000000, time.UTC)
	bus.Publish(platform.Event{Kind: platform.EventAudit, AppID: testApp, AppName: "myapp", Message: "Set FOO config vars by user a@b.c", Time: at})
	bus.Publish(platform.Event{Kind: platform.EventFormation, AppID: testApp, AppName: "myapp", Time: at})
	bus.Publish(platform.Event{Kind: platform.EventRelease, AppID: testApp, AppName: "myapp", Message: "Release v3 created by user a@b.c", Time: at})
	want := []string{
		"2024-05-01T12:00:00.250000+00:00 app[api]: Set FOO config vars by user a@b.c",
		"2024-05-01T12:00:00.250000+00:00 app[api]: Release v3 created by user a@b.c",
	}
	var got []string
	waitFor(t, "the audit lines", func() bool {
		f.l.Sync()
		got = got[:0]
		for _, l := range f.l.History(testApp, 0) {
			got = append(got, l.String())
		}
		return len(got) >= 2
	})
	if !slices.Equal(got, want) {
		t.Fatalf("history = %q, want %q", got, want)
	}

	// A tail stream ends when the app is destroyed; its history goes.
	st := f.stream(f.session(SessionOptions{Lines: 10, Tail: true}), "")
	st.next(t) // the first line of the backlog
	bus.Publish(platform.Event{Kind: platform.EventDestroy, AppID: testApp, AppName: "myapp", Time: at})
	st.waitEnd(t)
	waitFor(t, "the history files to go", func() bool {
		_, errCur := os.Stat(filepath.Join(dir, fileBase(testApp)+segCurrent))
		_, errPrev := os.Stat(filepath.Join(dir, fileBase(testApp)+segPrev))
		return os.IsNotExist(errCur) && os.IsNotExist(errPrev)
	})
	f.l.Log(testApp, "myapp", "heroku", "web.1", "State changed from up to down")
	f.l.Sync()
	if h := f.l.History(testApp, 0); len(h) != 0 {
		t.Errorf("a destroyed app's channel took a line: %v", messages(h))
	}
	if m := f.l.Metrics(); m.DroppedClosed != 1 {
		t.Errorf("DroppedClosed = %d, want 1", m.DroppedClosed)
	}
	if status, _ := f.get(f.session(SessionOptions{}), ""); status != http.StatusNotFound {
		t.Errorf("a session of a destroyed app answered %d, want 404", status)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// SSE.

// event is one Server-Sent Event.
type event struct {
	id    string
	hasID bool
	data  string
}

// stream is one open SSE response, read in the background.
type stream struct {
	resp   *http.Response
	events chan event
	retry  string
	mu     sync.Mutex
	done   chan struct{}
}

func (f *fixture) get(url, lastID string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) stream(url, lastID string) *stream {
	f.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		f.t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{resp: resp, events: make(chan event, 100000), done: make(chan struct{})}
	go s.read()
	f.t.Cleanup(s.close)
	return s
}

func (s *stream) read() {
	defer close(s.done)
	defer close(s.events)
	r := bufio.NewReader(s.resp.Body)
	var ev event
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if data != nil {
				ev.data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = event{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id, ev.hasID = value, true
		case "data":
			data = append(data, value)
		case "retry":
			s.mu.Lock()
			s.retry = value
			s.mu.Unlock()
		}
	}
}

func (s *stream) close() { s.resp.Body.Close() }

// next returns the next event, failing if none comes.
func (s *stream) next(t *testing.T) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return event{}
}

// waitEnd waits until the server ends the stream and returns the events
// not read yet.
func (s *stream) waitEnd(t *testing.T) []event {
	t.Helper()
	var out []event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatal("the stream did not end within 10 s")
		}
	}
}

func TestSSEFormat(t *testing.T) {
	clock := newClock()
	f := open(t, t.TempDir(), func(c *Config) { c.Now = clock.Now })
	f.l.Log(testApp, "myapp", "app", "web.1", "one")
	clock.Advance(1500 * time.Microsecond)
	f.l.Log(testApp, "myapp", "heroku", "router", `at=info method=GET path="/"`)
	f.l.Log(testApp, "myapp", "app", "web.1", "multi\nline")
	f.l.Sync()
	url := f.session(SessionOptions{Lines: 100})
	if !strings.HasPrefix(url, f.srv.URL+"/logstream/") || !strings.Contains(url, "token=") {
		t.Errorf("logplex_url = %s, want %s/logstream/<id>?…token=…", url, f.srv.URL)
	}
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // a session without tail ends after the backlog
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("status %d, Content-Type %q, Cache-Control %q; want 200 text/event-stream no-cache",
			resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	want := "retry: 100\n\n" +
		"id: 1\ndata: 2024-05-01T12:00:00.000000+00:00 app[web.1]: one\n\n" +
		"id: 2\ndata: 2024-05-01T12:00:00.001500+00:00 heroku[router]: at=info method=GET path=\"/\"\n\n" +
		"id: 3\ndata: 2024-05-01T12:00:00.001500+00:00 app[web.1]: multi\n\n" +
		"id: 4\ndata: 2024-05-01T12:00:00.001500+00:00 app[web.1]: line\n\n"
	if string(body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
	// An EventSource reconnecting to the finished session is told to stop.
	if status, body := f.get(url, "4"); status != http.StatusNoContent || body != "" {
		t.Errorf("reconnecting to a session without tail: %d %q, want 204", status, body)
	}
}

func TestSessionFilters(t *testing.T) {
	f := open(t, t.TempDir(), nil)
	for _, l := range []struct{ source, dyno, msg string }{
		{"app", "web.1", "a1"}, {"app", "web.2", "a2"}, {"heroku", "web.1", "h1"}, {"heroku", "router", "r"},
		{"app", "api", "api"}, {"app", "worker.1", "w"}, {"app", "webhook.1", "hook"},
	} {
		f.l.Log(testApp, "myapp", l.source, l.dyno, l.msg)
	}
	f.l.Sync()
	tests := []struct {
		name string
		o    SessionOptions
		want string
	}{
		{"all", SessionOptions{Lines: 100}, "a1 a2 h1 r api w hook"},
		{"newest two", SessionOptions{Lines: 2}, "w hook"},
		{"none", SessionOptions{Lines: 0}, ""},
		{"process type", SessionOptions{Lines: 100, Dyno: "web"}, "a1 a2 h1"},
		{"dyno name", SessionOptions{Lines: 100, Dyno: "web.1"}, "a1 h1"},
		{"source app", SessionOptions{Lines: 100, Source: "app"}, "a1 a2 api w hook"},
		{"source heroku, dyno router", SessionOptions{Lines: 100, Source: "heroku", Dyno: "router"}, "r"},
		{"api lines", SessionOptions{Lines: 100, Dyno: "api"}, "api"},
		{"newest app line", SessionOptions{Lines: 1, Source: "app", Dyno: "web"}, "a2"},
		{"more than kept", SessionOptions{Lines: 5000}, "a1 a2 h1 r api w hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := f.stream(f.session(tt.o), "")
			var got []string
			for _, ev := range st.waitEnd(t) {
				_, msg, _ := strings.Cut(ev.data, "]: ")
				got = append(got, msg)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

// TestTailResume: a tail client that reconnects with Last-Event-ID gets
// exactly the lines after that id: none lost, none twice.
func TestTailResume(t *testing.T) {
	f := open(t, t.TempDir(), func(c *Config) { c.History = 50 })
	logN(f.l, testApp, 0, 10)
	f.l.Sync()
	url := f.session(SessionOptions{Lines: 2, Tail: true})

	st := f.stream(url, "")
	var got []string
	last := ""
	read := func(st *stream, n int) {
		t.Helper()
		for range n {
			ev := st.next(t)
			if !ev.hasID {
				t.Fatalf("event without id: %q", ev.data)
			}
			_, msg, _ := strings.Cut(ev.data, "]: ")
			got, last = append(got, msg), ev.id
		}
	}
	read(st, 2)
	logN(f.l, testApp, 10, 13)
	read(st, 3)
	st.close()

	logN(f.l, testApp, 13, 20) // while disconnected
	f.l.Sync()
	st2 := f.stream(url, last)
	read(st2, 7)
	logN(f.l, testApp, 20, 22)
	read(st2, 2)
	if want := lineRange(8, 22); !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if last != "22" {
		t.Errorf("last id %s, want 22", last)
	}
	st2.close()

	// Resuming from before the kept history yields what is kept.
	logN(f.l, testApp, 22, 100)
	f.l.Sync()
	st3 := f.stream(url, "3")
	ev := st3.next(t)
	if ev.id != "51" || !strings.HasSuffix(ev.data, "line 50") {
		t.Errorf("resuming from an evicted id: first event %s %q, want the oldest kept line (51)", ev.id, ev.data)
	}
}

// TestTailReconnects: the server ends tail streams after StreamMax while
// lines keep coming; a client that reconnects as EventSource does misses
// none and sees none twice.
func TestTailReconnects(t *testing.T) {
	f := open(t, t.TempDir(), func(c *Config) { c.StreamMax = 150 * time.Millisecond })
	url := f.session(SessionOptions{Lines: 0, Tail: true})
	const n = 600
	st := f.stream(url, "")
	waitFor(t, "the stream to open", func() bool { return f.l.Metrics().Streams == 1 })
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range n {
			logN(f.l, testApp, i, i+1)
			if i%5 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	var got []string
	last, connects := "", 0
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		if st == nil {
			st = f.stream(url, last)
		}
		connects++
		for ev := range st.events {
			if !ev.hasID {
				t.Fatalf("unexpected event without id: %q", ev.data)
			}
			_, msg, _ := strings.Cut(ev.data, "]: ")
			got, last = append(got, msg), ev.id
		}
		st.mu.Lock()
		retry := st.retry
		st.mu.Unlock()
		if retry != "1000" {
			t.Fatalf("retry = %q, want 1000", retry)
		}
		st = nil
	}
	<-produced
	if !slices.Equal(got, lineRange(0, n)) {
		t.Fatalf("got %d lines (first %v), want lines 0..%d exactly once in order", len(got), abbreviate(got[:min(5, len(got))]), n-1)
	}
	t.Logf("%d lines over %d connections", len(got), connects)
	if connects < 3 {
		t.Errorf("%d connections: the server did not end the streams", connects)
	}
}

// TestSlowHTTPClient: a tail client that does not read does not hold up
// ingestion; once it reads, every line is either delivered or counted in
// an L11 line.
func TestSlowHTTPClient(t *testing.T) {
	f := open(t, t.TempDir(), func(c *Config) { c.TailBuffer = 64 })
	url := f.session(SessionOptions{Lines: 0, Tail: true})
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the stream to open", func() bool { return f.l.Metrics().Streams == 1 })
	pad := strings.Repeat("x", 500)
	const n = 10000
	for i := range n {
		f.l.Log(testApp, "myapp", "app", "web.1", pad+strconv.Itoa(i))
	}
	f.l.Sync()
	accepted := int(f.l.Metrics().LinesIn)

	r := bufio.NewReader(resp.Body)
	delivered, missed := 0, 0
	for delivered+missed < accepted {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d lines and %d missed of %d: %v", delivered, missed, accepted, err)
		}
		if strings.HasPrefix(line, "data: ") {
			if _, rest, ok := strings.Cut(line, "This tail session dropped "); ok {
				k, _ := strconv.Atoi(strings.Fields(rest)[0])
				missed += k
			} else {
				delivered++
			}
		}
	}
	t.Logf("%d lines delivered, %d missed (L11)", delivered, missed)
	if delivered+missed != accepted {
		t.Errorf("%d delivered + %d missed, want %d", delivered, missed, accepted)
	}
	if got := int(f.l.Metrics().DroppedTail); got != missed {
		t.Errorf("DroppedTail = %d, want the %d reported", got, missed)
	}
}

func TestSessionValidity(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	f := open(t, dir, func(c *Config) { c.Now = clock.Now })
	f.l.Log(testApp, "myapp", "app", "web.1", "hello")
	f.l.Sync()
	url := f.session(SessionOptions{Lines: 10})

	expect := func(what, url string, want int) {
		t.Helper()
		if status, body := f.get(url, ""); status != want {
			t.Errorf("%s: status %d (%s), want %d", what, status, strings.TrimSpace(body), want)
		}
	}
	expect("a new session", url, 200)
	clock.Advance(59 * time.Minute)
	expect("59 min after its last use", url, 200)
	clock.Advance(59 * time.Minute)
	expect("again 59 min after its last use", url, 200)
	clock.Advance(61 * time.Minute)
	expect("61 min after its last use", url, 404)

	fresh := f.session(SessionOptions{})
	i := strings.Index(fresh, "token=") + len("token=") + 5
	forged := fresh[:i] + string(rune('A'+(fresh[i]-'A'+1)%26)) + fresh[i+1:]
	expect("a forged token", forged, 404)
	other := f.session(SessionOptions{})
	idOther := strings.TrimPrefix(strings.Split(other, "?")[0], f.srv.URL+"/logstream/")
	idFresh := strings.TrimPrefix(strings.Split(fresh, "?")[0], f.srv.URL+"/logstream/")
	expect("another session's token", strings.Replace(fresh, idFresh, idOther, 1), 404)
	expect("no token", strings.Split(fresh, "?")[0], 404)

	// The key survives a restart: the URL stays valid.
	f.l.Close()
	g := open(t, dir, func(c *Config) { c.Now = clock.Now })
	if status, _ := g.get(strings.Replace(fresh, f.srv.URL, g.srv.URL, 1), ""); status != 200 {
		t.Errorf("after a restart the session answered %d, want 200", status)
	}
}

func BenchmarkLog(b *testing.B) {
	l, err := Open(Config{Dir: b.TempDir(), QueueLines: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(testApp, "myapp", "app", "web.1", "GET /index.html 200 1234 bytes in 2 ms")
	}
	l.Sync()
}

// TestLogLines: a dyno's lines handed over at once are stored in order,
// split as Log splits them, with the source and dyno of all of them.
func TestLogLines(t *testing.T) {
	f := open(t, t.TempDir(), nil)
	long := strings.Repeat("x", MaxLineBytes+3)
	f.l.LogLines(testApp, "myapp", "app", "worker.1", []string{"one", long, "two\nthree", ""})
	f.l.LogLines(testApp, "myapp", "app", "worker.1", nil)
	f.l.Sync()
	var got []string
	for _, ln := range f.l.History(testApp, 0) {
		if ln.Source != "app" || ln.Dyno != "worker.1" {
			t.Errorf("line from %s[%s]", ln.Source, ln.Dyno)
		}
		got = append(got, ln.Message)
	}
	want := []string{"one", strings.Repeat("x", MaxLineBytes), "xxx", "two", "three", ""}
	if !slices.Equal(got, want) {
		t.Errorf("history = %.80q, want %.80q", got, want)
	}
}
