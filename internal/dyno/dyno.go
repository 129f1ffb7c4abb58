// Package dyno is the dyno manager: it turns each app's formation and
// current release into running dynos and keeps them running the way
// Heroku's dyno manager does.
//
// Every dyno has one supervisor goroutine that owns its state machine
// (starting → up → crashed or down), restarts it after a crash on Heroku's
// back-off schedule, and stops it gracefully (SIGTERM, then SIGKILL after
// the grace period). The manager reconciles: on every platform event that
// can change what should run (a release, a formation change, a destroyed
// app) and periodically, it compares what should run with the supervisors
// it has and starts, restarts or stops exactly the difference.
//
// How a dyno's process is started is the Runner's business; the manager
// knows nothing of containers.
package dyno

import (
	"context"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// Runner starts the process of one dyno.
type Runner interface {
	Start(ctx context.Context, u *Unit) (Process, error)
}

// Process is one running dyno process.
type Process interface {
	// Wait blocks until the process has exited; it may be called again.
	Wait() Exit
	// Signal sends sig to every process of the dyno.
	Signal(sig syscall.Signal) error
	// Addr is the address the router reaches a web process at
	// ("10.213.0.5:5000"); empty for other process types.
	Addr() string
	// Command is what the process runs, for the log and the API.
	Command() string
}

// MemoryReporter is a Process that can tell how much memory its dyno uses
// (RSS, cache and swap together, as Heroku's R14 counts it).
type MemoryReporter interface {
	MemoryUsage() (uint64, error)
}

// Exit is how a process ended.
type Exit struct {
	Code int   // exit status; 128+n after signal n
	OOM  bool  // killed for exceeding its memory limit
	Err  error // the process could not be run or watched at all
}

// Unit is everything one dyno runs with. A new release or size gives a new
// Unit; the dyno is then restarted with it.
type Unit struct {
	AppID, App  string
	Name, Type  string // "web.1", "web"
	ReleaseID   string
	Release     int
	Image       string // OCI image id the release runs for this type
	Command     string // the release's command for the type; "" runs the image's
	Env         map[string]string
	Size        platform.Size
	Port        int           // $PORT of a web dyno; 0 for other types
	BootTimeout time.Duration // a web dyno not accepting on $PORT by then gets R10
	Stdout      io.Writer     // the process's output, line by line into the app's log
	Stderr      io.Writer
	// RuntimeMetrics (the log-runtime-metrics feature, read when the dyno
	// starts) logs its load and memory every MemoryCheck (20 s).
	RuntimeMetrics bool

	// An attached one-off dyno (heroku run) reads Stdin and writes Stdout
	// on a pseudo-terminal of Cols×Rows cells (unless Terminal is false)
	// whose other end is its client: see attach.go.
	Stdin      io.Reader
	Terminal   bool
	Cols, Rows uint16
	attach     func(context.Context) (net.Conn, error) // waits for the client
}

// Logs receives the lines the dyno manager and dynos write into an app's
// log: source "heroku" for the manager's own lines, "app" for the
// process's output.
type Logs interface {
	Log(appID, app, source, dyno, message string)
}

// BatchLogs is a Logs that also takes several lines of one dyno at once (a
// *logplex.Logplex): a dyno's output is handed over a read at a time. It
// must not keep the slice.
type BatchLogs interface {
	Logs
	LogLines(appID, app, source, dyno string, messages []string)
}

// States a dyno can be in, as the Platform API names them.
const (
	StateStarting = "starting"
	StateUp       = "up"
	StateCrashed  = "crashed"
	StateDown     = "down"
	StateComplete = "complete" // a one-off dyno whose process has exited
)

// Info is a dyno as the API shows it.
type Info struct {
	ID        string
	AppID     string
	Name      string
	Type      string
	Size      string
	State     string
	Command   string
	ReleaseID string
	Release   int
	Addr      string // where a web dyno listens, once up
	CreatedAt time.Time
	UpdatedAt time.Time // last state change
}
