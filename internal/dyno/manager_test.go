package dyno

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

// fakeRunner runs no container: each process is a goroutine whose
// behaviour the unit's MODE config var picks, and a web process listens on
// a real loopback port so the manager's probe is exercised for real.
type fakeRunner struct {
	mu     sync.Mutex
	starts map[string]int // dyno name -> starts
	events []string       // "start web.1@v3", "term web.1@v3", in order
}

func (r *fakeRunner) event(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// eventIndex is the position of the first event ev, or -1.
func (r *fakeRunner) eventIndex(ev string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.events {
		if e == ev {
			return i
		}
	}
	return -1
}

type fakeProcess struct {
	u      *Unit
	r      *fakeRunner
	ln     net.Listener
	exit   chan Exit
	once   sync.Once
	result Exit
	sigs   chan syscall.Signal
}

func (r *fakeRunner) Start(ctx context.Context, u *Unit) (Process, error) {
	r.mu.Lock()
	r.starts[u.Name]++
	r.mu.Unlock()
	p := &fakeProcess{u: u, r: r, exit: make(chan Exit, 1), sigs: make(chan syscall.Signal, 4)}
	r.event("start %s@v%d", u.Name, u.Release)
	mode := u.Env["MODE"]
	if u.Port > 0 && mode != "nobind" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p.ln = ln
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Fprintf(u.Stdout, "hello from %s\n", u.Name)
	if u.Stdin != nil { // an attached dyno's input is read, as the runtime does
		go io.Copy(io.Discard, u.Stdin)
	}
	go func() {
		if u.Type == "release" { // the release phase: exit with $RELEASE_EXIT
			code, _ := strconv.Atoi(u.Env["RELEASE_EXIT"])
			p.finish(Exit{Code: code})
			return
		}
		if mode == "crash" {
			p.finish(Exit{Code: 1})
			return
		}
		for sig := range p.sigs {
			if sig == syscall.SIGKILL || (sig == syscall.SIGTERM && mode != "ignore-term") {
				p.finish(Exit{Code: 128 + int(sig)})
				return
			}
		}
	}()
	return p, nil
}

func (r *fakeRunner) startsOf(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[name]
}

func (p *fakeProcess) finish(e Exit) {
	p.once.Do(func() {
		if p.ln != nil {
			p.ln.Close()
		}
		p.exit <- e
	})
}

func (p *fakeProcess) Wait() Exit {
	if e, ok := <-p.exit; ok {
		p.result = e
		close(p.exit)
	}
	return p.result
}

func (p *fakeProcess) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGTERM {
		p.r.event("term %s@v%d", p.u.Name, p.u.Release)
	}
	select {
	case p.sigs <- sig:
	default:
	}
	return nil
}

func (p *fakeProcess) Addr() string {
	if p.ln == nil {
		return "127.0.0.1:1" // nothing listens there
	}
	return p.ln.Addr().String()
}

func (p *fakeProcess) Command() string { return "fake " + p.u.Env["MODE"] }

// MemoryUsage reports MEM megabytes (a config var), to drive R14.
func (p *fakeProcess) MemoryUsage() (uint64, error) {
	mb, _ := strconv.Atoi(p.u.Env["MEM"])
	return uint64(mb) << 20, nil
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Log(appID, app, source, dyno, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf("%s[%s]: %s", source, dyno, msg))
	l.mu.Unlock()
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

type env struct {
	t      *testing.T
	p      *platform.Platform
	m      *Manager
	runner *fakeRunner
	logs   *logLines
	admin  *platform.Account
	ctx    context.Context
}

func newEnv(t *testing.T, tune func(*Config)) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := platform.NewBus()
	p := platform.New(db, bus)
	ctx, cancel := context.WithCancel(context.Background())
	admin, _, err := p.CreateAccount(ctx, "admin@example.com", "", true)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, p: p, runner: &fakeRunner{starts: map[string]int{}}, logs: &logLines{}, admin: admin, ctx: ctx}
	cfg := Config{Runner: e.runner, Source: p, Events: bus, Logs: e.logs,
		BootTimeout: 2 * time.Second, StopTimeout: 2 * time.Second, Backoff: []time.Duration{0, time.Hour},
		ProbeInterval: 5 * time.Millisecond, Resync: time.Hour}
	if tune != nil {
		tune(&cfg)
	}
	e.m = New(cfg)
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// app creates an app whose release runs web and worker with mode.
func (e *env) app(name, mode string) *platform.App {
	e.t.Helper()
	app, err := e.p.CreateApp(e.ctx, e.admin, platform.AppSpec{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	if mode != "" {
		e.config(name, "MODE", mode)
	}
	img := "sha256:" + strings.Repeat("ab", 32)
	if _, err := e.p.DeployImages(e.ctx, e.admin, name, []platform.ImageUpdate{{Type: "web", Image: img}, {Type: "worker", Image: img}}); err != nil {
		e.t.Fatal(err)
	}
	return app
}

func (e *env) config(app, k, v string) {
	e.t.Helper()
	if _, _, err := e.p.UpdateConfig(e.ctx, e.admin, app, []platform.ConfigChange{{Key: k, Value: &v}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) scale(app, typ string, n int) {
	e.t.Helper()
	if _, err := e.p.ScaleFormation(e.ctx, e.admin, app, []platform.Scale{{Type: typ, Quantity: &platform.Quantity{N: n}}}); err != nil {
		e.t.Fatal(err)
	}
}

// eventually polls cond for up to 10 s (a bound on hangs, not a timing
// assertion).
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	e.t.Fatalf("never: %s\nlog:\n%s", what, strings.Join(e.logs.lines, "\n"))
}

func states(ds []Info) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s=%s@v%d", d.Name, d.State, d.Release))
	}
	return strings.Join(s, " ")
}

func TestScaleUpAndDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("scaler", "")
	e.eventually("web.1 up", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3" })
	e.scale("scaler", "web", 3)
	e.eventually("web.1..3 up", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3 web.2=up@v3 web.3=up@v3" })
	e.scale("scaler", "web", 1)
	e.eventually("only web.1", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3" })
	if n := e.runner.startsOf("web.1"); n != 1 {
		t.Errorf("web.1 started %d times; scaling must not restart it", n)
	}
	e.scale("scaler", "worker", 2)
	e.eventually("workers up", func() bool {
		return states(e.m.Dynos(app.ID)) == "web.1=up@v3 worker.1=up@v3 worker.2=up@v3"
	})
	for _, want := range []string{"heroku[web.2]: Stopping all processes with SIGTERM", "heroku[web.2]: Process exited with status 143",
		"heroku[web.1]: State changed from starting to up", "app[web.1]: hello from web.1", "heroku[web.1]: Starting process with command `fake `"} {
		if e.logs.count(want) == 0 {
			t.Errorf("no log line %q", want)
		}
	}
}

func TestNewReleaseRestartsEveryDyno(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("releaser", "")
	e.scale("releaser", "web", 2)
	e.eventually("web up", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3 web.2=up@v3" })
	e.config("releaser", "GREETING", "hi")
	e.eventually("restarted on v4", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v4 web.2=up@v4" })
	if _, err := e.p.Rollback(e.ctx, e.admin, "releaser", "3"); err != nil {
		t.Fatal(err)
	}
	e.eventually("restarted on v5", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v5 web.2=up@v5" })
	if n := e.logs.count("heroku[web.1]: Restarting"); n != 2 {
		t.Errorf("web.1 restarted %d times, want 2", n)
	}
}

func TestCrashRestartsThenBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("crasher", "crash")
	e.scale("crasher", "web", 0)
	e.scale("crasher", "worker", 1)
	// First crash: immediate restart; second: a one-hour cool-off.
	e.eventually("two starts, then crashed", func() bool {
		d := e.m.Dynos(app.ID)
		return len(d) == 1 && d[0].State == StateCrashed && e.logs.count("heroku[worker.1]: State changed from up to crashed") == 2
	})
	time.Sleep(50 * time.Millisecond)
	if n := e.runner.startsOf("worker.1"); n != 2 {
		t.Errorf("worker.1 started %d times during its cool-off, want 2", n)
	}
	if e.logs.count("heroku[worker.1]: Process exited with status 1") != 2 || e.logs.count("heroku[worker.1]: State changed from up to crashed") != 2 {
		t.Errorf("missing crash lines")
	}
	// A restart resets the cool-off.
	if _, err := e.m.Restart(app.ID, "worker", ""); err != nil {
		t.Fatal(err)
	}
	e.eventually("restarted out of its cool-off", func() bool { return e.runner.startsOf("worker.1") >= 3 })
}

func TestBootTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.BootTimeout = 100 * time.Millisecond })
	app := e.app("sleepy", "nobind")
	e.eventually("R10 and crashed", func() bool {
		d := e.m.Dynos(app.ID)
		return len(d) == 1 && d[0].State == StateCrashed && e.logs.count("Error R10 (Boot timeout)") > 0
	})
	if e.logs.count("heroku[web.1]: Stopping process with SIGKILL") == 0 {
		t.Error("no SIGKILL line after R10")
	}
}

func TestExitTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.StopTimeout = 50 * time.Millisecond })
	app := e.app("stubborn", "ignore-term")
	e.eventually("up", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v4" })
	e.scale("stubborn", "web", 0)
	e.eventually("gone", func() bool { return len(e.m.Dynos(app.ID)) == 0 && e.logs.count("Process exited with status 137") == 1 })
	for _, want := range []string{"Error R12 (Exit timeout) -> Process failed to exit within", "Stopping all processes with SIGKILL"} {
		if e.logs.count(want) != 1 {
			t.Errorf("want one %q line", want)
		}
	}
}

func TestDestroyStopsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("doomed", "")
	e.scale("doomed", "worker", 2)
	e.eventually("up", func() bool { return len(e.m.Dynos(app.ID)) == 3 })
	if _, err := e.p.DestroyApp(e.ctx, e.admin, "doomed"); err != nil {
		t.Fatal(err)
	}
	e.eventually("all stopped", func() bool { return len(e.m.Dynos(app.ID)) == 0 && e.logs.count("Process exited with status 143") == 3 })
}

func TestMemoryQuotaExceeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MemoryCheck = 10 * time.Millisecond })
	app := e.app("hungry", "")
	e.config("hungry", "MEM", "700") // Standard-1X: 512 MB
	e.eventually("R14", func() bool {
		return e.logs.count("heroku[web.1]: Process running mem=700MB(136.7%)") > 0 && e.logs.count("heroku[web.1]: Error R14 (Memory quota exceeded)") > 0
	})
	if d := e.m.Dynos(app.ID); len(d) != 1 || d[0].State != StateUp {
		t.Errorf("dynos = %s: R14 must not stop the dyno", states(d))
	}
	e.config("hungry", "MEM", "100")
	e.eventually("on v5", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v5" })
	time.Sleep(50 * time.Millisecond)
	before := e.logs.count("Error R14")
	time.Sleep(50 * time.Millisecond)
	if after := e.logs.count("Error R14"); after != before {
		t.Errorf("R14 logged below the quota (%d → %d)", before, after)
	}
}

func TestPreboot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("booter", "")
	e.scale("booter", "web", 2)
	e.eventually("web up on v3", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3 web.2=up@v3" })

	// Without preboot the old dyno stops before its replacement starts.
	e.config("booter", "A", "1")
	e.eventually("web up on v4", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v4 web.2=up@v4" })
	if t3, s4 := e.runner.eventIndex("term web.1@v3"), e.runner.eventIndex("start web.1@v4"); !(t3 >= 0 && t3 < s4) {
		t.Errorf("without preboot: term v3 at %d, start v4 at %d", t3, s4)
	}

	// With preboot the replacement starts first; the old one stops once it is up.
	if _, err := e.p.SetAppFeature(e.ctx, e.admin, "booter", "preboot", true); err != nil {
		t.Fatal(err)
	}
	e.config("booter", "A", "2")
	e.eventually("web up on v5", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v5 web.2=up@v5" })
	e.eventually("old ones stopped", func() bool {
		return e.runner.eventIndex("term web.1@v4") >= 0 && e.runner.eventIndex("term web.2@v4") >= 0
	})
	for _, name := range []string{"web.1", "web.2"} {
		if s5, t4 := e.runner.eventIndex("start "+name+"@v5"), e.runner.eventIndex("term "+name+"@v4"); !(s5 >= 0 && s5 < t4) {
			t.Errorf("with preboot: %s start v5 at %d, term v4 at %d", name, s5, t4)
		}
	}
}

func TestReleasePhase(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("phased", "")
	e.eventually("web up on v3", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3" })
	status := func(v string) string {
		_, r, _, err := e.p.Release(e.ctx, e.admin, "phased", v)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}

	// A release with a release phase is pending until its command has run.
	img := "sha256:" + strings.Repeat("cd", 32)
	rel, err := e.p.DeployImages(e.ctx, e.admin, "phased", []platform.ImageUpdate{{Type: "web", Image: img}, {Type: "release", Image: img}})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != "pending" {
		t.Errorf("v4 is %s, want pending", rel.Status)
	}
	e.eventually("v4 released and running", func() bool { return status("4") == "succeeded" && states(e.m.Dynos(app.ID)) == "web.1=up@v4" })
	if e.logs.count("State changed from up to complete") != 1 || e.logs.count("heroku[release.") == 0 {
		t.Error("no release-phase dyno in the log")
	}

	// A failing release command fails the release; the old one keeps running.
	e.config("phased", "RELEASE_EXIT", "3")
	e.eventually("v5 failed", func() bool { return status("5") == "failed" })
	if got := states(e.m.Dynos(app.ID)); got != "web.1=up@v4" {
		t.Errorf("after a failed release phase: %s, want web.1 still on v4", got)
	}
	if n := e.runner.startsOf("web.1"); n != 2 {
		t.Errorf("web.1 started %d times, want 2 (v3, v4)", n)
	}

	// The next release builds on the current one (v4) and runs again.
	e.config("phased", "RELEASE_EXIT", "0")
	e.eventually("v6 running", func() bool { return status("6") == "succeeded" && states(e.m.Dynos(app.ID)) == "web.1=up@v6" })
	if _, err := e.p.Rollback(e.ctx, e.admin, "phased", "5"); err == nil {
		t.Error("rolled back to a failed release")
	}
}

func TestDailyCycling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Cycle, c.CycleJitter = 150*time.Millisecond, time.Nanosecond })
	app := e.app("cycler", "")
	e.eventually("cycled twice", func() bool { return e.logs.count("heroku[web.1]: Cycling") >= 2 })
	e.eventually("up again", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3" })
	if e.logs.count("heroku[web.1]: Stopping all processes with SIGTERM") < 2 {
		t.Error("cycling did not stop the old process gracefully")
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var got []string
	w := &lineWriter{emit: func(l []string) { got = append(got, l...) }}
	long := strings.Repeat("x", maxLine+5)
	for _, chunk := range []string{"a\nb", "c\r\n", "\n", long + "\n", "tail"} {
		w.Write([]byte(chunk))
	}
	want := []string{"a", "bc", "", strings.Repeat("x", maxLine), "xxxxx"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	// The lines of one Write are handed over at once.
	var calls [][]string
	w = &lineWriter{emit: func(l []string) { calls = append(calls, slices.Clone(l)) }}
	w.Write([]byte("a\nb\nc"))
	w.Write([]byte("\nd\n"))
	if fmt.Sprint(calls) != "[[a b] [c d]]" {
		t.Errorf("hand-offs = %q, want [[a b] [c d]]", calls)
	}
	// A split never cuts a character in two.
	got = nil
	w = &lineWriter{emit: func(l []string) { got = append(got, l...) }}
	w.Write([]byte(strings.Repeat("x", maxLine-1) + "é and more\n"))
	if len(got) != 2 || got[0] != strings.Repeat("x", maxLine-1) || got[1] != "é and more" {
		t.Errorf("split = %q", got)
	}
}
