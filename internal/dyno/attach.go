package dyno

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Attached one-off dynos (heroku run). The dyno is listed as starting as
// soon as it is created, but its process starts only once its client has
// attached (a connection that ends before that never starts it). The
// connection is the process's terminal: the client's bytes are its input,
// its output goes to the client only, not to the app's log; the dyno
// manager's own lines (Starting process, state changes, exit status) go to
// the log as for any dyno. When the client leaves, every process of the
// dyno gets SIGHUP, as a terminal's hangup would send; one still running
// Config.Hangup later is stopped (R16, then SIGTERM and SIGKILL). A
// connection idle for Config.AttachIdle (an hour) is closed, as on Heroku.

// attachClient waits for the dyno's client. It returns nil and the
// outcome of the dyno's run when none came: stopped when the dyno was
// stopped meanwhile, crashed (with R13) when the wait failed.
func (s *supervisor) attachClient(ctx context.Context, u *Unit) (*attachment, outcome) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	halted := make(chan struct{})
	go func() {
		select {
		case <-s.stop:
			close(halted)
			cancel()
		case <-wctx.Done():
		}
	}()
	c, err := u.attach(wctx)
	if err != nil {
		select {
		case <-halted:
			return nil, stopped
		default:
		}
		if ctx.Err() != nil {
			return nil, stopped
		}
		s.log("Error R13 (Attach error) -> Failed to attach to process")
		s.setState(StateCrashed)
		return nil, crashed
	}
	a := &attachment{conn: c, gone: make(chan struct{})}
	a.touch()
	go a.watch(s.m.cfg.AttachIdle)
	return a, crashed
}

// attachment is an attached dyno's connection to its client. Its reads
// and writes notice the client leaving.
type attachment struct {
	conn net.Conn
	gone chan struct{} // closed once the client has left
	once sync.Once

	// Without a terminal, the client's Ctrl-D (0x04), which a terminal
	// would turn into end of input, ends the input.
	eot   bool
	ended bool

	last atomic.Int64 // when a byte last went either way (UnixNano)
}

func (a *attachment) touch() { a.last.Store(time.Now().UnixNano()) }

// watch closes the connection once no byte has gone either way for idle,
// as Heroku does after an hour: the dyno then sees its client leave.
func (a *attachment) watch(idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-a.gone:
			return
		case <-t.C:
		}
		if left := idle - time.Since(time.Unix(0, a.last.Load())); left > 0 {
			t.Reset(left)
			continue
		}
		a.conn.Close()
		a.leave()
		return
	}
}

func (a *attachment) Read(p []byte) (int, error) {
	if a.ended {
		return 0, io.EOF
	}
	n, err := a.conn.Read(p)
	if n > 0 {
		a.touch()
	}
	if err != nil {
		a.leave()
	}
	if i := bytes.IndexByte(p[:n], 0x04); a.eot && i >= 0 {
		a.ended = true
		go a.drain()
		if i == 0 {
			return 0, io.EOF
		}
		return i, nil
	}
	return n, err
}

// drain reads what the client sends after its input ended, to notice it
// leaving.
func (a *attachment) drain() {
	io.Copy(io.Discard, a.conn)
	a.leave()
}

func (a *attachment) Write(p []byte) (int, error) {
	n, err := a.conn.Write(p)
	if n > 0 {
		a.touch()
	}
	if err != nil {
		a.leave()
	}
	return n, err
}

func (a *attachment) leave() { a.once.Do(func() { close(a.gone) }) }

// Close ends the session: the client sees the connection close once all
// output has been written to it.
func (a *attachment) Close() error {
	a.leave()
	return a.conn.Close()
}

// left is closed once the client has left; nil for a dyno without one.
func (a *attachment) left() <-chan struct{} {
	if a == nil {
		return nil
	}
	return a.gone
}

// unit is u with the client as the process's input and output.
func (a *attachment) unit(u *Unit) *Unit {
	c := *u
	c.Stdin, c.Stdout, c.Stderr = a, a, a
	a.eot = !u.Terminal
	return &c
}

// terminalSize is the terminal size the client asked for (the heroku CLI
// sends COLUMNS and LINES when its own output is a terminal), else 80×24.
func terminalSize(env map[string]string) (cols, rows uint16) {
	cols, rows = 80, 24
	if n, err := strconv.ParseUint(env["COLUMNS"], 10, 16); err == nil && n > 0 {
		cols = uint16(n)
	}
	if n, err := strconv.ParseUint(env["LINES"], 10, 16); err == nil && n > 0 {
		rows = uint16(n)
	}
	return cols, rows
}
