package dyno

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// Source is where the manager reads what should run.
type Source interface {
	Desired(ctx context.Context) ([]*platform.AppState, error)
	DesiredApp(ctx context.Context, appID string) (*platform.AppState, error)
	// CompleteRelease records the outcome of a release's release phase.
	CompleteRelease(ctx context.Context, appID, releaseID string, ok bool) error
}

// Config configures a Manager. Durations are fields so that tests drive
// boot timeouts and back-off in milliseconds.
type Config struct {
	Runner Runner
	Source Source
	Events *platform.Bus // changes to react to; nil: only periodic resync
	Logs   Logs
	Log    *slog.Logger

	Port          int             // $PORT given to web dynos (default 5000)
	BootTimeout   time.Duration   // R10 after this (default 60 s), unless the app sets platform.BootTimeoutVar
	Second        time.Duration   // how long a second of platform.BootTimeoutVar lasts (default 1 s; tests shorten it)
	StopTimeout   time.Duration   // SIGKILL and R12 after this (default 30 s)
	Backoff       []time.Duration // delay before restart after the 1st, 2nd, … consecutive crash
	StableAfter   time.Duration   // a process that ran this long had a good start (default 10 min)
	ProbeInterval time.Duration   // how often a starting web dyno's port is tried (default 20 ms)
	Resync        time.Duration   // full reconcile interval (default 30 s)
	MemoryCheck   time.Duration   // how often an up dyno's memory is compared with its quota (default 20 s)
	Hangup        time.Duration   // an attached dyno whose client left is stopped this long after its SIGHUP (default 5 s)
	AttachIdle    time.Duration   // an attached dyno's connection with no byte either way for this long is closed (default 1 h)
	Cycle         time.Duration   // a dyno is restarted ("Cycling") after running this long (default 24 h)…
	CycleJitter   time.Duration   // …plus a random part of this (default 216 min), so an app's dynos don't cycle together
	Now           func() time.Time
	Unroute       time.Duration // a web dyno leaves the router's table this long before its SIGTERM (default 0)
}

// HerokuBackoff is Heroku's crash restart schedule: the first restart is
// immediate, then cool-offs of up to 20, 40, 60, 180 and 320 minutes, then
// every 320 minutes.
var HerokuBackoff = []time.Duration{0, 20 * time.Minute, 40 * time.Minute, 60 * time.Minute, 180 * time.Minute, 320 * time.Minute}

// Manager runs every app's dynos.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	apps    map[string]map[string]*supervisor // app id -> dyno name -> formation dyno
	oneOffs map[string]map[string]*supervisor // app id -> dyno name -> one-off dyno
	retired map[*supervisor]bool              // preboot: old dynos running until their replacements are up
	phases  map[string]bool                   // release ids whose release phase is running
	ctx     context.Context
	watch   func(appID string) // told of every dyno state or address change (the router's feed)
	wg      sync.WaitGroup
}

// New returns a manager; Run starts it.
func New(cfg Config) *Manager {
	cfg.Port = cmp.Or(cfg.Port, 5000)
	cfg.BootTimeout = cmp.Or(cfg.BootTimeout, 60*time.Second)
	cfg.Second = cmp.Or(cfg.Second, time.Second)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, 30*time.Second)
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = HerokuBackoff
	}
	cfg.StableAfter = cmp.Or(cfg.StableAfter, 10*time.Minute)
	cfg.ProbeInterval = cmp.Or(cfg.ProbeInterval, 20*time.Millisecond)
	cfg.Resync = cmp.Or(cfg.Resync, 30*time.Second)
	cfg.Cycle = cmp.Or(cfg.Cycle, 24*time.Hour)
	cfg.CycleJitter = cmp.Or(cfg.CycleJitter, 216*time.Minute)
	cfg.AttachIdle = cmp.Or(cfg.AttachIdle, time.Hour)
	cfg.Hangup = cmp.Or(cfg.Hangup, 5*time.Second)
	cfg.MemoryCheck = cmp.Or(cfg.MemoryCheck, 20*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, apps: map[string]map[string]*supervisor{}, oneOffs: map[string]map[string]*supervisor{},
		retired: map[*supervisor]bool{}, phases: map[string]bool{}}
}

// Run reconciles until ctx is done, then stops every dyno gracefully and
// returns once they are all down.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	var events <-chan platform.Event
	if m.cfg.Events != nil {
		sub := m.cfg.Events.Subscribe(1024)
		defer sub.Close()
		events = sub.C
	}
	m.reconcileAll(ctx)
	resync := time.NewTicker(m.cfg.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case e := <-events:
			switch e.Kind {
			case platform.EventRelease, platform.EventFormation, platform.EventDestroy, platform.EventApp:
				m.reconcileApp(ctx, e.AppID)
			}
		case <-resync.C:
			m.reconcileAll(ctx)
		}
	}
}

func (m *Manager) reconcileAll(ctx context.Context) {
	states, err := m.cfg.Source.Desired(ctx)
	if err != nil {
		m.cfg.Log.Error("dyno manager: read desired state", "err", err)
		return
	}
	seen := map[string]bool{}
	for _, s := range states {
		seen[s.App.ID] = true
		m.reconcile(s.App.ID, s)
	}
	m.mu.Lock()
	gone := []string{}
	for id := range m.apps {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.reconcile(id, nil)
	}
}

func (m *Manager) reconcileApp(ctx context.Context, appID string) {
	s, err := m.cfg.Source.DesiredApp(ctx, appID)
	if err != nil {
		m.cfg.Log.Error("dyno manager: read desired state", "app", appID, "err", err)
		return
	}
	m.reconcile(appID, s)
}

// units lists the dynos an app should run; nil state means none.
func (m *Manager) units(s *platform.AppState) map[string]*Unit {
	out := map[string]*Unit{}
	if s == nil {
		return out
	}
	for _, f := range s.Formation {
		proc, ok := s.Release.Processes[f.Type]
		if !ok || f.Type == platform.ReleasePhase {
			continue // the current release does not have this type, or it is the release phase's
		}
		size, _ := platform.SizeByName(f.Size)
		for i := 1; i <= f.Quantity; i++ {
			name := f.Type + "." + strconv.Itoa(i)
			env := maps.Clone(s.Release.Config)
			if env == nil {
				env = map[string]string{}
			}
			env["DYNO"] = name
			u := &Unit{AppID: s.App.ID, App: s.App.Name, Name: name, Type: f.Type, ReleaseID: s.Release.ID,
				Release: s.Release.Version, Image: proc.Image, Command: proc.Command, Env: env, Size: size,
				RuntimeMetrics: s.RuntimeMetrics}
			if f.Type == "web" {
				u.Port = m.cfg.Port
				u.BootTimeout = m.cfg.BootTimeout
				if n := platform.BootTimeout(env); n > 0 {
					u.BootTimeout = time.Duration(n) * m.cfg.Second
				}
				env["PORT"] = strconv.Itoa(u.Port)
			}
			out[name] = u
		}
	}
	return out
}

// reconcile makes the app's supervisors match its desired state: new dynos
// start, surplus ones stop, and dynos on an older release or another size
// restart on the new unit.
func (m *Manager) reconcile(appID string, s *platform.AppState) {
	want := m.units(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return
	}
	have := m.apps[appID]
	if have == nil {
		have = map[string]*supervisor{}
		m.apps[appID] = have
	}
	for name, sup := range have {
		if _, ok := want[name]; !ok {
			close(sup.stop)
			delete(have, name)
		}
	}
	for name, u := range want {
		sup, ok := have[name]
		if !ok {
			have[name] = m.startLocked(u)
			continue
		}
		cur := sup.current()
		switch {
		case s.Preboot && u.Type == "web" && cur.ReleaseID != u.ReleaseID:
			// Preboot: the new dyno starts beside the old one, which
			// stops only once its replacement is up (or has failed).
			next := m.startLocked(u)
			have[name] = next
			m.retired[sup] = true
			go func() {
				select {
				case <-next.settled:
				case <-next.done:
				case <-sup.done:
				}
				stopOnce(sup)
				<-sup.done
				m.mu.Lock()
				delete(m.retired, sup)
				m.mu.Unlock()
			}()
		case cur.ReleaseID != u.ReleaseID || cur.Size.Name != u.Size.Name || cur.App != u.App:
			sup.update(m.wrapOutput(u))
		}
	}
	if len(have) == 0 {
		delete(m.apps, appID)
	}
	if s != nil && s.Pending != nil && !m.phases[s.Pending.ID] {
		m.startReleasePhaseLocked(s)
	}
	if s == nil { // the app is gone: so are its one-off dynos
		for _, sup := range m.oneOffs[appID] {
			stopOnce(sup)
		}
	}
}

func stopOnce(sup *supervisor) {
	select {
	case <-sup.stop:
	default:
		close(sup.stop)
	}
}

// startLocked starts a supervisor for u. m.mu must be held.
func (m *Manager) startLocked(u *Unit) *supervisor {
	sup := newSupervisor(m, m.wrapOutput(u))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		sup.run(m.ctx)
	}()
	return sup
}

// wrapOutput gives the unit writers that turn the process's output into
// app log lines.
func (m *Manager) wrapOutput(u *Unit) *Unit {
	emit := func(lines []string) {
		for _, l := range lines {
			m.cfg.Logs.Log(u.AppID, u.App, "app", u.Name, l)
		}
	}
	if b, ok := m.cfg.Logs.(BatchLogs); ok {
		emit = func(lines []string) { b.LogLines(u.AppID, u.App, "app", u.Name, lines) }
	}
	w := &lineWriter{emit: emit}
	u.Stdout, u.Stderr = w, w
	return u
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	for sup := range m.retired {
		stopOnce(sup)
	}
	for _, all := range []map[string]map[string]*supervisor{m.apps, m.oneOffs} {
		for id, have := range all {
			for _, sup := range have {
				stopOnce(sup)
			}
			delete(all, id)
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Watch registers fn to be told, without delay, when one of an app's dynos
// changes state or stops being reachable (the router follows this). fn
// must not block.
func (m *Manager) Watch(fn func(appID string)) {
	m.mu.Lock()
	m.watch = fn
	m.mu.Unlock()
}

func (m *Manager) changed(appID string) {
	m.mu.Lock()
	fn := m.watch
	m.mu.Unlock()
	if fn != nil {
		fn(appID)
	}
}

// Dynos lists an app's dynos, ordered by type and number.
func (m *Manager) Dynos(appID string) []Info {
	m.mu.Lock()
	sups := slices.Collect(maps.Values(m.apps[appID]))
	sups = slices.AppendSeq(sups, maps.Values(m.oneOffs[appID]))
	m.mu.Unlock()
	out := make([]Info, 0, len(sups))
	for _, s := range sups {
		out = append(out, s.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return dynoNumber(out[i].Name) < dynoNumber(out[j].Name)
	})
	return out
}

func dynoNumber(name string) int {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			n, _ := strconv.Atoi(name[i+1:])
			return n
		}
	}
	return 0
}

// Restart restarts an app's formation dynos: all of them, those of one
// type, or one by name. It reports how many it restarted; an unknown name
// or type is an error.
func (m *Manager) Restart(appID, typ, name string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, sup := range m.apps[appID] {
		u := sup.current()
		if (typ == "" || u.Type == typ) && (name == "" || u.Name == name) {
			sup.requestRestart()
			n++
		}
	}
	if n == 0 && (typ != "" || name != "") {
		return 0, fmt.Errorf("no such dyno")
	}
	return n, nil
}

// Stop stops dynos: a one-off dyno (by name, or all of type "run") ends; a
// formation dyno is restarted, as on Heroku's Common Runtime, since the
// formation wants it running.
func (m *Manager) Stop(appID, typ, name string) (int, error) {
	m.mu.Lock()
	n := 0
	for _, sup := range m.oneOffs[appID] {
		u := sup.current()
		if (typ == "" || u.Type == typ) && (name == "" || u.Name == name) {
			stopOnce(sup)
			n++
		}
	}
	m.mu.Unlock()
	if n > 0 {
		return n, nil
	}
	return m.Restart(appID, typ, name)
}

// OneOff is a one-off dyno to run.
type OneOff struct {
	Command string
	Env     map[string]string // on top of the config vars
	Size    string            // default: the release's web size, else Standard-1X
	Type    string            // whose image to run (default "web", else any)
	// Attach, when set, makes it an attached dyno (heroku run): its
	// process starts once Attach has returned the client's connection,
	// which is then its terminal, and it is stopped when the client
	// leaves. An error (nobody came in time) ends the dyno with R13.
	Attach func(context.Context) (net.Conn, error)
	NoTTY  bool // attached without a terminal: plain pipes (heroku run --no-tty)
	// TTL, when set, is how long the dyno may live: it is then stopped
	// as `heroku ps:stop` would (time_to_live, at most MaxTTL).
	TTL time.Duration
}

// MaxTTL is the longest time_to_live of a one-off dyno (Heroku's 24 h).
const MaxTTL = 24 * time.Hour

// RunOneOff starts a one-off dyno (run.N) on the app's current release. It
// runs once: it is never restarted, and it is gone once its process exits.
func (m *Manager) RunOneOff(ctx context.Context, appID string, o OneOff) (Info, error) {
	if o.TTL < 0 || o.TTL > MaxTTL {
		return Info{}, fmt.Errorf("%w: time_to_live must be between 1 and %d seconds", ErrOneOff, int(MaxTTL/time.Second))
	}
	s, err := m.cfg.Source.DesiredApp(ctx, appID)
	if err != nil {
		return Info{}, err
	}
	if s == nil {
		return Info{}, fmt.Errorf("%w: no such app", ErrOneOff)
	}
	proc, ok := s.Release.Processes[o.Type]
	if !ok {
		proc, ok = s.Release.Processes["web"]
	}
	if !ok {
		for _, t := range slices.Sorted(maps.Keys(s.Release.Processes)) {
			proc, ok = s.Release.Processes[t], true
			break
		}
	}
	if !ok {
		return Info{}, fmt.Errorf("%w: release v%d has no image to run; deploy one first", ErrOneOff, s.Release.Version)
	}
	size, ok := platform.SizeByName(o.Size)
	if o.Size == "" {
		size, _ = platform.SizeByName(platform.DefaultSize)
	} else if !ok || size.PrivateOnly {
		return Info{}, fmt.Errorf("%w: unknown dyno size %q", ErrOneOff, o.Size)
	}
	env := maps.Clone(s.Release.Config)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, o.Env)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.ctx.Err() != nil {
		return Info{}, fmt.Errorf("%w: the dyno manager is stopping", ErrOneOff)
	}
	u := &Unit{AppID: appID, App: s.App.Name, Type: "run", ReleaseID: s.Release.ID, Release: s.Release.Version,
		Image: proc.Image, Command: o.Command, Env: env, Size: size}
	if o.Attach != nil {
		u.attach, u.Terminal = o.Attach, !o.NoTTY
		u.Cols, u.Rows = terminalSize(env)
	}
	sup := m.addOneOffLocked(u)
	if o.TTL > 0 {
		expire := time.AfterFunc(o.TTL, func() {
			sup.log("Time to live of %s reached: stopping the dyno", o.TTL)
			stopOnce(sup)
		})
		go func() {
			<-sup.done
			expire.Stop()
		}()
	}
	return sup.snapshot(), nil
}

// addOneOffLocked names u "<type>.N" (N a free four-digit number), sets
// its DYNO and starts it as a one-off dyno, listed until it ends. m.mu
// must be held.
func (m *Manager) addOneOffLocked(u *Unit) *supervisor {
	have := m.oneOffs[u.AppID]
	if have == nil {
		have = map[string]*supervisor{}
		m.oneOffs[u.AppID] = have
	}
	for {
		u.Name = u.Type + "." + strconv.Itoa(1000+rand.IntN(9000))
		if _, taken := have[u.Name]; !taken {
			break
		}
	}
	u.Env["DYNO"] = u.Name
	sup := newSupervisor(m, m.wrapOutput(u))
	sup.oneOff = true
	have[u.Name] = sup
	appID, name := u.AppID, u.Name
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		sup.run(m.ctx)
		m.mu.Lock()
		if m.oneOffs[appID][name] == sup {
			delete(m.oneOffs[appID], name)
			if len(m.oneOffs[appID]) == 0 {
				delete(m.oneOffs, appID)
			}
		}
		m.mu.Unlock()
	}()
	return sup
}

// startReleasePhaseLocked runs a pending release's release command as a
// one-off dyno (release.N). Its exit status decides the release: 0 makes it
// current, anything else fails it. If the server stops first, the release
// stays pending and its release phase runs again at the next start.
func (m *Manager) startReleasePhaseLocked(s *platform.AppState) {
	r := s.Pending
	proc := r.Processes[platform.ReleasePhase]
	size, _ := platform.SizeByName(platform.DefaultSize)
	for _, f := range s.Formation {
		if f.Type == platform.ReleasePhase {
			size, _ = platform.SizeByName(f.Size)
		}
	}
	env := maps.Clone(r.Config)
	if env == nil {
		env = map[string]string{}
	}
	u := &Unit{AppID: s.App.ID, App: s.App.Name, Type: platform.ReleasePhase, ReleaseID: r.ID, Release: r.Version,
		Image: proc.Image, Command: proc.Command, Env: env, Size: size}
	sup := m.addOneOffLocked(u)
	m.phases[r.ID] = true
	appID := s.App.ID
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-sup.done
		ex, exited := sup.lastExit()
		if exited {
			ok := ex.Err == nil && ex.Code == 0
			if err := m.cfg.Source.CompleteRelease(context.WithoutCancel(m.ctx), appID, r.ID, ok); err != nil {
				m.cfg.Log.Error("dyno manager: record the release phase", "app", appID, "release", r.Version, "err", err)
			}
		}
		m.mu.Lock()
		delete(m.phases, r.ID)
		m.mu.Unlock()
	}()
}

// ErrOneOff wraps the reasons a one-off dyno cannot start.
var ErrOneOff = errors.New("cannot run the one-off dyno")
