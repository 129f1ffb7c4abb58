package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Config says where a Runtime keeps its state. Every directory and cgroup
// named here belongs to this Runtime alone: Reap deletes whatever it finds
// in them.
type Config struct {
	// Runc is the OCI runtime binary, a path or a name looked up in PATH.
	// Default "runc".
	Runc string
	// Root is runc's state directory (runc --root). Best on a tmpfs such as
	// /run/skiff/runc so that a reboot clears it. Absolute.
	Root string
	// Dir holds one directory per container: the bundle (config.json), the
	// overlay rootfs mount point and the writable upper and work dirs.
	// Absolute; it must be on a filesystem that can be an overlay upper
	// (ext4, xfs, tmpfs — not overlayfs itself).
	Dir string
	// CgroupParent is the cgroup, relative to this process's own cgroup in
	// every hierarchy, under which each container gets CgroupParent/<id>.
	// It must be relative (see doc.go). Default "skiff".
	CgroupParent string
}

// Runtime runs containers with runc. It is safe for concurrent use.
type Runtime struct {
	cfg    Config
	runc   string // resolved binary
	cg     []hierarchy
	nofile uint64 // RLIMIT_NOFILE given to containers
	memsw  bool   // memory.memsw.* exists (swap accounting)
}

// New checks cfg, resolves the runc binary and reads the cgroup layout. It
// creates Root and Dir (mode 0700) if they do not exist.
func New(cfg Config) (*Runtime, error) {
	if cfg.Runc == "" {
		cfg.Runc = "runc"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "skiff"
	}
	if !filepath.IsAbs(cfg.Root) || !filepath.IsAbs(cfg.Dir) {
		return nil, errors.New("runtime: Config.Root and Config.Dir must be absolute paths")
	}
	cfg.Root, cfg.Dir = filepath.Clean(cfg.Root), filepath.Clean(cfg.Dir)
	if cfg.Root == cfg.Dir || within(cfg.Root, cfg.Dir) || within(cfg.Dir, cfg.Root) {
		return nil, errors.New("runtime: Config.Root and Config.Dir must not overlap")
	}
	p := cfg.CgroupParent
	if filepath.IsAbs(p) || filepath.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return nil, fmt.Errorf("runtime: Config.CgroupParent %q must be a clean relative path (e.g. \"skiff\")", p)
	}
	bin, err := exec.LookPath(cfg.Runc)
	if err != nil {
		return nil, fmt.Errorf("runtime: OCI runtime %q not found: %w", cfg.Runc, err)
	}
	for _, d := range []string{cfg.Root, cfg.Dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
	}
	cg, err := readHierarchies()
	if err != nil {
		return nil, fmt.Errorf("runtime: reading cgroups: %w", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("runtime: getrlimit: %w", err)
	}
	r := &Runtime{cfg: cfg, runc: bin, cg: cg, nofile: min(defaultNofile, lim.Max)}
	if h := r.hierarchy("memory"); h != nil {
		_, err := os.Stat(filepath.Join(h.dir(""), "memory.memsw.limit_in_bytes"))
		r.memsw = err == nil
	}
	return r, nil
}

// defaultNofile is the open-files limit of a container (Heroku's dynos get
// 10000). It is lowered to this process's hard limit when that is smaller:
// without CAP_SYS_RESOURCE runc cannot raise a limit above it.
const defaultNofile = 10000

// Spec describes one container.
type Spec struct {
	// ID names the container in runc, in the cgroup path and in Dir:
	// [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 characters, unique among the
	// Runtime's live containers.
	ID string
	// Lowers are the read-only layer directories, bottom layer first (the
	// order of an image manifest). They are never written to.
	Lowers []string
	// Args is the command (Args[0] is looked up in PATH from Env inside
	// the container by runc). Env is KEY=value pairs. Cwd defaults to "/".
	Args, Env []string
	Cwd       string
	// Hostname defaults to ID.
	Hostname string
	// UID and GID run the process. The caller maps the image's USER to an
	// unprivileged uid; whatever the uid, the process has no capabilities.
	UID, GID uint32
	// MemoryLimit is the hard memory limit in bytes (RAM and swap
	// together); 0 means none.
	MemoryLimit int64
	// PidsLimit caps processes plus threads; 0 means none.
	PidsLimit int64
	// CPUShares is the relative CPU weight (cpu.shares); 0 leaves the
	// default (1024).
	CPUShares uint64
	// NetnsPath is a network namespace to join (e.g. /run/netns/x). When
	// empty the container gets a new network namespace with only lo, up.
	NetnsPath string
	// Init, when set, is the host path of a static init binary. It is
	// bind-mounted read-only at InitPath and runs as the container's PID 1
	// with the arguments InitArg, "--", Args...; it starts Args as its
	// child, forwards signals to every process and reaps orphans. Without
	// it the command itself is PID 1, and the kernel then ignores every
	// signal the command has no handler for (a SIGTERM would do nothing).
	Init string
	// Stdin feeds the process's standard input; nil means /dev/null. It is
	// copied by a goroutine that ends when a Read returns after the
	// container has exited; Wait does not wait for it.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output; nil discards it. If
	// both are the same writer, writes to it are serialised.
	Stdout, Stderr io.Writer
	// Terminal, when set, runs the process on a pseudo-terminal of this
	// size, as `heroku run` does: Stdin is typed into it, and Stdout gets
	// everything the process writes to it (stdout and stderr are then one
	// stream; Stderr gets only runc's own messages). See terminal.go.
	Terminal *Winsize
	// Upper, when set, is the overlay's writable upper directory instead of
	// one inside the container's directory: an empty directory the caller
	// owns, on the same filesystem as Config.Dir. It is left in place when
	// the container is removed, holding what the container changed in
	// overlay form (whiteouts, opaque directories): a build step's layer.
	Upper string
}

// Where and how a Spec.Init runs inside the container.
const (
	InitPath = "/.skiff-init"
	InitArg  = "dyno-init"
)

// Exit is how a container ended.
type Exit struct {
	// Code is the exit status as a shell reports it: the process's exit
	// code, or 128+n when signal n killed it (137 after SIGKILL or an OOM
	// kill, 143 after SIGTERM). -1 when unknown (see Err).
	Code int
	// Signal is the signal that killed the process, when Code > 128. A
	// process that calls exit(128+n) itself is indistinguishable from one
	// killed by n: runc reports both the same way.
	Signal syscall.Signal
	// OOMKilled reports that the kernel's OOM killer killed at least one
	// process of the container (the memory cgroup's oom_kill counter).
	OOMKilled bool
	// Err is set when the runtime failed rather than the process, e.g.
	// runc itself was killed or cleanup failed. Code may still be valid.
	Err error
}

// Container is a running (or finished) container, supervised by a runc
// child process.
type Container struct {
	r     *Runtime
	id    string
	dir   string
	pid   int
	cmd   *exec.Cmd
	stdin *os.File        // write end of the container's stdin, if any
	tty   console.Console // host side of the terminal runc reads input from, if any
	done  chan struct{}
	exit  Exit
}

// Errors returned by Start and Signal.
var (
	ErrExists     = errors.New("runtime: container already exists")
	ErrNotRunning = errors.New("runtime: container is not running")
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// maxLowers is overlayfs's limit on stacked lower layers (OVL_MAX_STACK).
const maxLowers = 500

func (s *Spec) check() error {
	if !idPattern.MatchString(s.ID) {
		return fmt.Errorf("runtime: invalid container id %q", s.ID)
	}
	if len(s.Lowers) == 0 || len(s.Lowers) > maxLowers {
		return fmt.Errorf("runtime: %d layers; need 1 to %d", len(s.Lowers), maxLowers)
	}
	for _, l := range s.Lowers {
		if !filepath.IsAbs(l) {
			return fmt.Errorf("runtime: layer %q is not an absolute path", l)
		}
		if fi, err := os.Stat(l); err != nil || !fi.IsDir() {
			return fmt.Errorf("runtime: layer %q is not a directory", l)
		}
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errors.New("runtime: no command (Args is empty)")
	}
	if s.Cwd != "" && !filepath.IsAbs(s.Cwd) {
		return fmt.Errorf("runtime: Cwd %q is not absolute", s.Cwd)
	}
	if s.MemoryLimit < 0 || s.PidsLimit < 0 {
		return errors.New("runtime: negative limit")
	}
	if s.Upper != "" {
		if !filepath.IsAbs(s.Upper) {
			return fmt.Errorf("runtime: Upper %q is not absolute", s.Upper)
		}
		if fi, err := os.Stat(s.Upper); err != nil || !fi.IsDir() {
			return fmt.Errorf("runtime: Upper %q is not a directory", s.Upper)
		}
	}
	if s.NetnsPath != "" && !filepath.IsAbs(s.NetnsPath) {
		return fmt.Errorf("runtime: NetnsPath %q is not absolute", s.NetnsPath)
	}
	return nil
}

// Start prepares the container's root filesystem and bundle and runs it
// with `runc run` as a child process. It returns once the container's
// process is running (runc wrote its pid), or with an error carrying runc's
// message when the container could not be started; nothing is left behind
// then. ctx bounds the start only: cancelling it afterwards does not stop
// the container (use Signal).
func (r *Runtime) Start(ctx context.Context, s Spec) (c *Container, err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.cfg.Dir, s.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, s.ID)
		}
		return nil, fmt.Errorf("runtime: %w", err)
	}
	c = &Container{r: r, id: s.ID, dir: dir, done: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := c.cleanup(); cerr != nil {
				err = fmt.Errorf("%w (cleanup: %v)", err, cerr)
			}
			c = nil
		}
	}()
	if err := r.prepareRootfs(dir, s.Lowers, s.Upper); err != nil {
		return c, err
	}
	spec, err := json.Marshal(r.ociSpec(&s))
	if err != nil {
		return c, fmt.Errorf("runtime: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), spec, 0o600); err != nil {
		return c, fmt.Errorf("runtime: %w", err)
	}

	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if sameWriter(stdout, stderr) && stdout != io.Discard {
		lw := &lockedWriter{w: stdout}
		stdout, stderr = lw, lw
	}
	// runc prints its own fatal errors to the stderr it shares with the
	// container. Until the container is known to run, stderr is held back:
	// if the start fails it is runc's message, not the app's output.
	gate := &startGate{w: stderr}
	out := &startGate{w: stdout, state: 1}
	cmd := exec.Command(r.runc, "--root", r.cfg.Root,
		"--log", filepath.Join(dir, "runc.log"), "--log-format", "json",
		"run", "--bundle", dir, "--pid-file", filepath.Join(dir, "pid"),
		"--keep", // keep the stopped container so its oom_kill counter can be read
		s.ID)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, gate
	if s.Terminal != nil {
		slave, err := c.openTerminal(s.Terminal)
		if err != nil {
			return c, err
		}
		defer slave.Close() // runc has its copy once started
		cmd.Stdin = slave
	} else if s.Stdin != nil {
		// Our own pipe rather than exec's copying goroutine, which Wait
		// would wait for even while it is blocked reading s.Stdin.
		pr, pw, err := os.Pipe()
		if err != nil {
			return c, fmt.Errorf("runtime: %w", err)
		}
		defer pr.Close() // runc has its copy once started
		cmd.Stdin, c.stdin = pr, pw
	}
	// Own process group: a terminal's ^C aimed at skiff does not reach it.
	// No Pdeathsig: it fires when the forking OS thread exits (see notes).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Never hang in Wait on a pipe held open by something that escaped.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return c, fmt.Errorf("runtime: starting %s: %w", r.runc, err)
	}
	c.cmd = cmd
	if c.tty != nil && s.Stdin != nil {
		go c.copyInput(s.Stdin)
	}
	if c.stdin != nil {
		go func() {
			_, _ = io.Copy(c.stdin, s.Stdin)
			c.stdin.Close()
		}()
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	pid, runcExited, startErr := c.awaitPid(ctx, exited)
	if startErr != nil {
		// Not started. Make sure runc and anything it forked are gone.
		if !runcExited { // ctx is done
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			return c, startErr
		}
		msg := runcLogError(filepath.Join(dir, "runc.log"))
		if msg == "" {
			msg = strings.TrimSpace(string(gate.discard()))
		}
		if msg != "" {
			return c, fmt.Errorf("runtime: runc could not start %s: %s", s.ID, msg)
		}
		return c, startErr
	}
	c.pid = pid
	gate.open()
	go c.supervise(exited)
	return c, nil
}

// awaitPid waits until runc has written the container's pid file (then
// runc's status, if already received, is put back into exited), runc has
// exited without writing it, or ctx is done.
func (c *Container) awaitPid(ctx context.Context, exited chan error) (pid int, runcExited bool, err error) {
	pidFile := filepath.Join(c.dir, "pid")
	delay := 500 * time.Microsecond
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		if b, rerr := os.ReadFile(pidFile); rerr == nil {
			if p, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && p > 0 {
				return p, false, nil
			}
		}
		select {
		case werr := <-exited:
			// runc wrote the pid file before it waited for the process,
			// so it is there now if the container ever ran.
			if b, rerr := os.ReadFile(pidFile); rerr == nil {
				if p, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && p > 0 {
					// Put the status back for supervise.
					exited <- werr
					return p, false, nil
				}
			}
			if werr == nil {
				werr = errors.New("exit status 0")
			}
			return 0, true, fmt.Errorf("runtime: runc exited before the container started: %v", werr)
		case <-ctx.Done():
			return 0, false, fmt.Errorf("runtime: starting %s: %w", c.id, ctx.Err())
		case <-timer.C:
			delay = min(2*delay, 2*time.Millisecond)
			timer.Reset(delay)
		}
	}
}

// supervise waits for runc to exit, records the exit, and removes the
// container: runc state, cgroups, overlay mount and directories.
func (c *Container) supervise(exited chan error) {
	werr := <-exited
	e := Exit{Code: -1}
	ws, ok := syscall.WaitStatus(0), false
	if ps := c.cmd.ProcessState; ps != nil {
		ws, ok = ps.Sys().(syscall.WaitStatus)
	}
	switch {
	case !ok:
		e.Err = fmt.Errorf("runtime: waiting for runc: %w", werr)
	case ws.Signaled():
		// runc itself was killed; the container may still run (cleanup
		// kills it).
		e.Err = fmt.Errorf("runtime: runc was killed by %v", ws.Signal())
	default:
		// Also when werr is exec.ErrWaitDelay: something kept the
		// output pipes open after runc exited; the status is still runc's.
		e.Code = ws.ExitStatus()
	}
	if e.Code > 128 && e.Code < 128+65 {
		e.Signal = syscall.Signal(e.Code - 128)
	}
	if n, err := c.oomKills(); err == nil && n > 0 {
		e.OOMKilled = true
	}
	if e.Err == nil {
		if msg := runcLogError(filepath.Join(c.dir, "runc.log")); msg != "" {
			e.Err = fmt.Errorf("runtime: runc: %s", msg)
		}
	}
	if err := c.cleanup(); err != nil {
		e.Err = errors.Join(e.Err, err)
	}
	c.exit = e
	close(c.done)
}

// cleanup deletes the runc container (killing what is left of it), then
// unmounts the rootfs and removes the container's directory, which discards
// the writable layer.
func (c *Container) cleanup() error {
	if c.stdin != nil {
		c.stdin.Close()
	}
	if c.tty != nil {
		c.tty.Close()
	}
	var errs []error
	if c.cmd != nil {
		if err := c.r.deleteContainer(c.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unmountAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	if err := removeDir(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ID returns the container's id.
func (c *Container) ID() string { return c.id }

// Pid returns the host pid of the container's first process.
func (c *Container) Pid() int { return c.pid }

// Wait blocks until the container has exited and has been removed, and
// returns how it ended. It may be called any number of times, from any
// goroutine.
func (c *Container) Wait() Exit {
	<-c.done
	return c.exit
}

// Done is closed when Wait would no longer block.
func (c *Container) Done() <-chan struct{} { return c.done }

// Signal sends sig to the container's first process (runc kill). Note that
// as pid 1 of its namespace the process only receives signals it handles,
// plus SIGKILL.
func (c *Container) Signal(sig syscall.Signal) error {
	return c.kill(sig, false)
}

// SignalAll sends sig to every process of the container (runc kill --all),
// as Heroku does with SIGTERM on shutdown.
func (c *Container) SignalAll(sig syscall.Signal) error {
	return c.kill(sig, true)
}

func (c *Container) kill(sig syscall.Signal, all bool) error {
	select {
	case <-c.done:
		return ErrNotRunning
	default:
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, c.id, strconv.Itoa(int(sig)))
	if out, err := c.r.runcOutput(args...); err != nil {
		select {
		case <-c.done:
			return ErrNotRunning
		default:
		}
		if strings.Contains(out, "not running") || strings.Contains(out, "does not exist") {
			return ErrNotRunning
		}
		return fmt.Errorf("runtime: runc kill %s: %v: %s", c.id, err, strings.TrimSpace(out))
	}
	return nil
}

// runcOutput runs a runc subcommand against our state root and returns its
// combined output.
func (r *Runtime) runcOutput(args ...string) (string, error) {
	cmd := exec.Command(r.runc, append([]string{"--root", r.cfg.Root}, args...)...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// deleteContainer removes container id from runc's state, killing its
// processes, and makes sure its cgroups are gone even if runc could not.
func (r *Runtime) deleteContainer(id string) error {
	state := filepath.Join(r.cfg.Root, id)
	out, err := r.runcOutput("delete", "--force", id)
	var runcErr error
	if err != nil {
		if _, serr := os.Stat(state); serr == nil {
			runcErr = fmt.Errorf("runtime: runc delete %s: %v: %s", id, err, strings.TrimSpace(out))
		}
	}
	// Whatever runc managed, no process and no cgroup may be left.
	if err := r.removeCgroups(id); err != nil {
		return errors.Join(runcErr, err)
	}
	if runcErr != nil {
		// runc could not delete it (corrupt state, say). Its processes
		// are dead and its cgroups gone now: its state can go too.
		if err := os.RemoveAll(state); err != nil {
			return errors.Join(runcErr, err)
		}
	}
	return nil
}

// runcLogError returns the error messages runc wrote to its JSON log.
func runcLogError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var msgs []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) != nil {
			continue
		}
		if entry.Level == "error" || entry.Level == "fatal" || entry.Level == "panic" {
			if len(msgs) == 0 || msgs[len(msgs)-1] != entry.Msg {
				msgs = append(msgs, entry.Msg)
			}
		}
	}
	return strings.Join(msgs, "; ")
}

// startGate buffers what is written to it until open (then passes it on,
// and everything after) or discard (then keeps it for an error message).
// It never returns an error, so a failing consumer cannot stall the
// container on a full pipe.
type startGate struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	state int   // 0 buffering, 1 open, 2 discarding
	werr  error // the writer failed: drop further output rather than block
}

const startGateMax = 1 << 20

func (g *startGate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case 0:
		if len(g.buf)+len(p) <= startGateMax {
			g.buf = append(g.buf, p...)
			return len(p), nil
		}
		// So much output can only be the app's.
		g.flushLocked()
	case 2:
		if len(g.buf)+len(p) <= startGateMax {
			g.buf = append(g.buf, p...)
		}
		return len(p), nil
	}
	if g.werr != nil {
		// The consumer failed; drain rather than block the container.
		return len(p), nil
	}
	if _, err := g.w.Write(p); err != nil {
		g.werr = err
	}
	return len(p), nil
}

func (g *startGate) flushLocked() {
	g.state = 1
	if len(g.buf) > 0 {
		if _, err := g.w.Write(g.buf); err != nil {
			g.werr = err
		}
	}
	g.buf = nil
}

func (g *startGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == 0 {
		g.flushLocked()
	}
}

func (g *startGate) discard() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.state = 2
	return g.buf
}

// sameWriter reports whether a and b are the same writer, without
// panicking on uncomparable dynamic types.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// within reports whether path is strictly inside dir.
func within(path, dir string) bool {
	return strings.HasPrefix(path, dir+"/") || (dir == "/" && path != "/")
}
