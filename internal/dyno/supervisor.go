package dyno

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// supervisor runs one dyno for as long as the formation wants it.
type supervisor struct {
	m       *Manager
	oneOff  bool          // a one-off dyno: runs once, never restarted
	updates chan *Unit    // a new unit: restart on it
	restart chan struct{} // restart on the same unit
	stop    chan struct{} // closed: stop for good
	done    chan struct{} // closed when run has returned
	settled chan struct{} // closed the first time the dyno is up or has crashed
	settle  sync.Once

	mu     sync.Mutex
	unit   *Unit
	info   Info
	exit   Exit // how the process last exited by itself
	exited bool

	rt *runtimeSampler // log-runtime-metrics of the current process (run's goroutine only)
}

// lastExit reports how the dyno's process last exited by itself, if it did.
func (s *supervisor) lastExit() (Exit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit, s.exited
}

func newSupervisor(m *Manager, u *Unit) *supervisor {
	now := m.cfg.Now()
	return &supervisor{
		m: m, unit: u,
		updates: make(chan *Unit, 1), restart: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), settled: make(chan struct{}),
		info: Info{ID: uuid.NewString(), AppID: u.AppID, Name: u.Name, Type: u.Type, Size: u.Size.Name,
			State: StateDown, Command: u.Command, ReleaseID: u.ReleaseID, Release: u.Release, CreatedAt: now, UpdatedAt: now},
	}
}

// update asks the dyno to restart on u; a pending, not yet taken update is
// replaced, so only the newest counts.
func (s *supervisor) update(u *Unit) {
	s.mu.Lock()
	s.unit = u
	s.mu.Unlock()
	select {
	case s.updates <- u:
	default:
		select {
		case <-s.updates:
		default:
		}
		s.updates <- u
	}
}

func (s *supervisor) requestRestart() {
	select {
	case s.restart <- struct{}{}:
	default:
	}
}

func (s *supervisor) current() *Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unit
}

func (s *supervisor) snapshot() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

func (s *supervisor) log(format string, args ...any) {
	u := s.current()
	s.m.cfg.Logs.Log(u.AppID, u.App, "heroku", u.Name, fmt.Sprintf(format, args...))
}

func (s *supervisor) setState(state string) {
	s.mu.Lock()
	old := s.info.State
	s.info.State = state
	s.info.UpdatedAt = s.m.cfg.Now()
	if state != StateUp {
		s.info.Addr = ""
	}
	s.mu.Unlock()
	if old != state {
		s.log("State changed from %s to %s", old, state)
	}
	if state == StateUp || state == StateCrashed {
		s.settle.Do(func() { close(s.settled) })
	}
}

// outcome is how one run of the process ended.
type outcome int

const (
	crashed   outcome = iota // the process exited by itself
	restarted                // stopped to run again (restart or new unit)
	stopped                  // stopped for good
)

// run is the dyno's life: start, watch, restart after crashes with
// back-off, until stopped.
func (s *supervisor) run(ctx context.Context) {
	defer close(s.done)
	crashes := 0
	for {
		started := s.m.cfg.Now()
		out := s.runOnce(ctx)
		if s.oneOff {
			if out != crashed { // stopped or restarted: a one-off just ends
				s.setState(StateDown)
			}
			return
		}
		switch out {
		case stopped:
			s.setState(StateDown)
			return
		case restarted:
			crashes = 0
			continue
		case crashed:
		}
		if s.m.cfg.Now().Sub(started) >= s.m.cfg.StableAfter {
			crashes = 0 // it had started well; this is a first crash again
		}
		delay := s.m.cfg.Backoff[min(crashes, len(s.m.cfg.Backoff)-1)]
		crashes++
		if delay > 0 {
			wait := time.NewTimer(delay)
			select {
			case <-wait.C:
			case u := <-s.updates:
				s.setUnit(u)
				crashes = 0
			case <-s.restart:
				crashes = 0
			case <-s.stop:
				wait.Stop()
				s.setState(StateDown)
				return
			case <-ctx.Done():
				wait.Stop()
				s.setState(StateDown)
				return
			}
			wait.Stop()
		}
	}
}

func (s *supervisor) setUnit(u *Unit) {
	s.mu.Lock()
	s.unit = u
	s.info.ReleaseID, s.info.Release, s.info.Size = u.ReleaseID, u.Release, u.Size.Name
	s.mu.Unlock()
}

// runOnce starts the process and watches it until it exits or is stopped.
func (s *supervisor) runOnce(ctx context.Context) outcome {
	select { // an update that arrived while crashed or stopping applies now
	case u := <-s.updates:
		s.setUnit(u)
	default:
	}
	u := s.current()
	s.setState(StateStarting)
	var client *attachment // an attached one-off's (attach.go)
	if u.attach != nil {
		var out outcome
		if client, out = s.attachClient(ctx, u); client == nil {
			return out
		}
		defer client.Close() // once the process has exited and its output is written
		u = client.unit(u)
	}
	p, err := s.m.cfg.Runner.Start(ctx, u)
	if err != nil {
		s.log("Error R99 (Platform error) -> Failed to start the process: %v", err)
		s.setState(StateCrashed)
		return crashed
	}
	s.mu.Lock()
	s.info.Command = p.Command()
	s.mu.Unlock()
	s.log("Starting process with command `%s`", p.Command())

	exited := make(chan Exit, 1)
	go func() { exited <- p.Wait() }()

	// A web dyno is up once it accepts connections on $PORT; any other is
	// up as soon as its process runs.
	up := make(chan struct{})
	probeCtx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	isUp := u.Port == 0
	if isUp {
		s.setState(StateUp)
	} else {
		go s.probe(probeCtx, p.Addr(), up)
	}
	bootTimeout := cmp.Or(u.BootTimeout, s.m.cfg.BootTimeout)
	boot := time.NewTimer(bootTimeout)
	defer boot.Stop()
	memCheck := time.NewTicker(s.m.cfg.MemoryCheck)
	defer memCheck.Stop()
	// Daily cycling: every process is restarted after a day and a random
	// part of the jitter; any restart or release starts the clock again.
	lifetime := s.m.cfg.Cycle
	if j := s.m.cfg.CycleJitter; j > 0 {
		lifetime += rand.N(j)
	}
	cycle := time.NewTimer(lifetime)
	defer cycle.Stop()
	left, hangup := client.left(), (<-chan time.Time)(nil)

	for {
		var upCh <-chan struct{}
		var bootCh <-chan time.Time
		if !isUp {
			upCh, bootCh = up, boot.C
		}
		select {
		case <-upCh:
			isUp = true
			s.mu.Lock()
			s.info.Addr = p.Addr()
			s.mu.Unlock()
			s.setState(StateUp)
		case <-bootCh:
			s.log("Error R10 (Boot timeout) -> Web process failed to bind to $PORT within %s of launch", humanDuration(bootTimeout))
			s.log("Stopping process with SIGKILL")
			p.Signal(syscall.SIGKILL)
			s.exitLine(<-exited)
			s.setState(StateCrashed)
			return crashed
		case <-left:
			left = nil
			s.log("Client connection closed. Sending SIGHUP to all processes")
			p.Signal(syscall.SIGHUP)
			hangup = time.After(s.m.cfg.Hangup)
		case <-hangup:
			s.log("Error R16 (Detached) -> An attached process is not responding to SIGHUP after its external connection was closed.")
			s.terminate(p, exited)
			return stopped
		case <-cycle.C:
			if !s.oneOff {
				s.log("Cycling")
				s.terminate(p, exited)
				return restarted
			}
		case <-memCheck.C:
			if isUp {
				s.checkMemory(p, u)
				if u.RuntimeMetrics {
					s.sampleRuntime(p, u)
				}
			}
		case ex := <-exited:
			s.exitLine(ex)
			s.mu.Lock()
			s.exit, s.exited = ex, true
			s.mu.Unlock()
			if s.oneOff {
				s.setState(StateComplete) // a one-off that ends is done, not crashed
			} else {
				s.setState(StateCrashed)
			}
			return crashed
		case nu := <-s.updates:
			s.log("Restarting")
			s.terminate(p, exited)
			s.setUnit(nu)
			return restarted
		case <-s.restart:
			s.log("Restarting")
			s.terminate(p, exited)
			return restarted
		case <-s.stop:
			s.terminate(p, exited)
			return stopped
		case <-ctx.Done():
			s.terminate(p, exited)
			return stopped
		}
	}
}

// terminate stops the process gracefully: SIGTERM, then SIGKILL and R12 if
// it is still alive after the grace period.
func (s *supervisor) terminate(p Process, exited <-chan Exit) {
	s.log("Stopping all processes with SIGTERM")
	p.Signal(syscall.SIGTERM)
	grace := time.NewTimer(s.m.cfg.StopTimeout)
	defer grace.Stop()
	select {
	case ex := <-exited:
		s.exitLine(ex)
	case <-grace.C:
		s.log("Error R12 (Exit timeout) -> Process failed to exit within %s of SIGTERM", humanDuration(s.m.cfg.StopTimeout))
		s.log("Stopping all processes with SIGKILL")
		p.Signal(syscall.SIGKILL)
		s.exitLine(<-exited)
	}
}

// checkMemory logs R14 while the dyno uses more memory than its size's
// quota, as Heroku does: the dyno keeps running (it is killed, with R15,
// only at the hard limit the runtime enforces).
func (s *supervisor) checkMemory(p Process, u *Unit) {
	mr, ok := p.(MemoryReporter)
	if !ok || u.Size.MemoryMB == 0 {
		return
	}
	used, err := mr.MemoryUsage()
	if err != nil {
		return
	}
	mb := int(used >> 20)
	if mb <= u.Size.MemoryMB {
		return
	}
	s.log("Process running mem=%dMB(%.1f%%)", mb, float64(mb)*100/float64(u.Size.MemoryMB))
	s.log("Error R14 (Memory quota exceeded)")
}

func (s *supervisor) exitLine(ex Exit) {
	if ex.OOM {
		s.log("Error R15 (Memory quota vastly exceeded)")
	}
	if ex.Err != nil {
		s.log("Error R99 (Platform error) -> %v", ex.Err)
		return
	}
	s.log("Process exited with status %d", ex.Code)
}

// probe reports on up once a TCP connection to addr succeeds: a web dyno
// is up when it accepts connections on $PORT.
func (s *supervisor) probe(ctx context.Context, addr string, up chan<- struct{}) {
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	// Most apps bind within milliseconds of starting: try often at first,
	// then every ProbeInterval.
	wait := time.Millisecond
	for {
		if addr != "" {
			if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
				c.Close()
				close(up)
				return
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, s.m.cfg.ProbeInterval)
	}
}

// humanDuration words a duration as Heroku's messages do: "60 seconds".
func humanDuration(d time.Duration) string {
	if d == time.Second {
		return "1 second"
	}
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%d seconds", int(d/time.Second))
	}
	return d.String()
}
