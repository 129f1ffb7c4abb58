package dyno

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// TestAttachedOneOff: the process starts once the client attached, its
// output goes to the client and not to the log, and when the client
// leaves it gets SIGHUP; still running Hangup later, R16 and a graceful
// stop. The fake process ignores SIGHUP.
func TestAttachedOneOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Hangup = 50 * time.Millisecond })
	app := e.app("attached", "")
	e.eventually("the manager running", func() bool { return len(e.m.Dynos(app.ID)) == 1 })
	e.scale("attached", "web", 0)
	e.eventually("no dynos", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	clients := make(chan net.Conn, 1)
	var dynoSide net.Conn
	wait := func(ctx context.Context) (net.Conn, error) {
		var client net.Conn
		client, dynoSide = net.Pipe()
		clients <- client
		return dynoSide, nil
	}
	d, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "bash", Attach: wait, Env: map[string]string{"COLUMNS": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	client := <-clients
	line, err := bufio.NewReader(client).ReadString('\n')
	if err != nil || line != "hello from "+d.Name+"\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	e.eventually("up", func() bool { return states(e.m.Dynos(app.ID)) == d.Name+"=up@v3" })
	client.Close()
	e.eventually("gone after the client left", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	for _, want := range []string{
		"heroku[" + d.Name + "]: Starting process with command `fake `",
		"heroku[" + d.Name + "]: State changed from starting to up",
		"heroku[" + d.Name + "]: Client connection closed. Sending SIGHUP to all processes",
		"heroku[" + d.Name + "]: Error R16 (Detached) -> An attached process is not responding to SIGHUP after its external connection was closed.",
		"heroku[" + d.Name + "]: Stopping all processes with SIGTERM",
		"heroku[" + d.Name + "]: Process exited with status 143",
	} {
		if e.logs.count(want) != 1 {
			t.Errorf("want one log line %q", want)
		}
	}
	if n := e.logs.count("app[" + d.Name + "]"); n != 0 {
		t.Errorf("%d app lines of an attached dyno in the log; its output is the client's", n)
	}
}

// TestAttachIdle: a client that sends and receives nothing for AttachIdle
// is disconnected, and the dyno hung up.
func TestAttachIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.AttachIdle, c.Hangup = 100*time.Millisecond, 50*time.Millisecond })
	app := e.app("idle", "")
	e.eventually("the manager running", func() bool { return len(e.m.Dynos(app.ID)) == 1 })
	e.scale("idle", "web", 0)
	e.eventually("no dynos", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	client, dynoSide := net.Pipe()
	defer client.Close()
	go io.Copy(io.Discard, client) // reads the greeting line of the fake, then nothing comes
	d, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "bash",
		Attach: func(context.Context) (net.Conn, error) { return dynoSide, nil }})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("gone after its idle client was cut off", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	if e.logs.count("heroku["+d.Name+"]: Client connection closed. Sending SIGHUP to all processes") != 1 {
		t.Errorf("no hangup line")
	}
}

func TestAttachFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("unattached", "")
	e.eventually("the manager running", func() bool { return len(e.m.Dynos(app.ID)) == 1 })
	e.scale("unattached", "web", 0)
	e.eventually("no dynos", func() bool { return len(e.m.Dynos(app.ID)) == 0 })

	// Nobody came: R13, and the process never started.
	expired := func(ctx context.Context) (net.Conn, error) { return nil, errors.New("expired") }
	d, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "bash", Attach: expired})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("gone after R13", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	if e.logs.count("heroku["+d.Name+"]: Error R13 (Attach error) -> Failed to attach to process") != 1 || e.runner.startsOf(d.Name) != 0 {
		t.Errorf("want R13 and no start")
	}

	// Stopped while it waits: it just ends.
	waiting := make(chan struct{})
	forever := func(ctx context.Context) (net.Conn, error) {
		close(waiting)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	d, err = e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "bash", Attach: forever})
	if err != nil {
		t.Fatal(err)
	}
	<-waiting
	if got := states(e.m.Dynos(app.ID)); got != d.Name+"=starting@v3" {
		t.Errorf("waiting for its client: %s, want starting", got)
	}
	if _, err := e.m.Stop(app.ID, "", d.Name); err != nil {
		t.Fatal(err)
	}
	e.eventually("gone after ps:stop", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	if e.logs.count("heroku["+d.Name+"]: Error R13") != 0 || e.runner.startsOf(d.Name) != 0 {
		t.Errorf("a stopped dyno is no attach error, and never starts")
	}
}

func TestTerminalSize(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "80x24"},
		{map[string]string{"COLUMNS": "132", "LINES": "43"}, "132x43"},
		{map[string]string{"COLUMNS": "wide", "LINES": "0"}, "80x24"},
		{map[string]string{"COLUMNS": "70000"}, "80x24"},
	} {
		c, r := terminalSize(tc.env)
		if got := fmt.Sprintf("%dx%d", c, r); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.env, got, tc.want)
		}
	}
}

// TestOneOffTimeToLive: a one-off dyno with a time to live is stopped
// gracefully when it runs out; one beyond Heroku's 24 h is refused.
func TestOneOffTimeToLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	app := e.app("ttl", "")
	e.eventually("the manager running", func() bool { return len(e.m.Dynos(app.ID)) == 1 })
	e.scale("ttl", "web", 0)
	e.eventually("no dynos", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	d, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "sleep forever", TTL: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("gone after its time to live", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	for _, want := range []string{
		"heroku[" + d.Name + "]: Time to live of 100ms reached: stopping the dyno",
		"heroku[" + d.Name + "]: Stopping all processes with SIGTERM",
		"heroku[" + d.Name + "]: Process exited with status 143",
	} {
		if e.logs.count(want) != 1 {
			t.Errorf("want one log line %q", want)
		}
	}
	for _, ttl := range []time.Duration{-time.Second, MaxTTL + time.Second} {
		if _, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "x", TTL: ttl}); !errors.Is(err, ErrOneOff) {
			t.Errorf("time to live %s: err = %v, want ErrOneOff", ttl, err)
		}
	}
}
