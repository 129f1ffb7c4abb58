// Package skiffserver builds the skiff binary and runs `skiff server` for
// the benchmarks: a loopback port chosen by the kernel, the first-start
// banner read for the API URL and the admin token, SIGTERM to stop.
package skiffserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build builds ./cmd/skiff of the module the benchmark runs in, statically
// (CGO_ENABLED=0, as scripts/run does: the server uses its own binary as
// each dyno's init), into dir.
func Build(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot find the skiff module (run from the repository, or pass -skiff): %v", err)
	}
	bin := filepath.Join(dir, "skiff")
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/skiff")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build skiff: %w", err)
	}
	return bin, nil
}

// Options says how to run the server.
type Options struct {
	Binary  string
	Dir     string   // for the server's log and login file
	DataDir string   // --data-dir
	Args    []string // further flags
	// Wrap is a command the server runs under, e.g. taskset -c 0; it
	// must exec the server (the same process).
	Wrap []string
	Env  []string // added to the benchmark's environment
	// StartTimeout bounds the wait for the banner; StopTimeout the wait
	// after SIGTERM before SIGKILL.
	StartTimeout, StopTimeout time.Duration
}

// Server is a running `skiff server`.
type Server struct {
	URL, Token string
	Registry   string // host:port of the embedded registry (printed before the token)
	Router     string // http://host:port of the router's HTTP listener, if it has one

	cmd  *exec.Cmd
	errs string // file holding the server's stderr
	wait time.Duration
	done chan error
	once sync.Once
	err  error
}

// Start starts the server on a loopback port and waits for its banner. The
// server runs in its own process group, so a ^C reaches only the
// benchmark, which then stops the server cleanly.
func Start(ctx context.Context, o Options) (*Server, error) {
	s := &Server{errs: filepath.Join(o.Dir, "server.log"), wait: o.StopTimeout, done: make(chan error, 1)}
	logFile, err := os.Create(s.errs)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args := append([]string{"server", "--data-dir", o.DataDir, "--api-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0"}, o.Args...)
	s.cmd = exec.Command(o.Binary, args...)
	if len(o.Wrap) > 0 {
		s.cmd = exec.Command(o.Wrap[0], append(append(o.Wrap[1:len(o.Wrap):len(o.Wrap)], o.Binary), args...)...)
	}
	// Keep the first-start login out of the user's ~/.config/skiff.
	s.cmd.Env = append(append(os.Environ(), o.Env...), "SKIFF_LOGIN_FILE="+filepath.Join(o.Dir, "login.json"))
	s.cmd.Stderr = logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start skiff server: %w", err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens any more; keep draining
			}
		}
		close(lines)
	}()
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.NewTimer(o.StartTimeout)
	defer deadline.Stop()
	for s.URL == "" || s.Token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				s.Stop()
				return nil, fmt.Errorf("skiff server exited before printing its URL and token:\n%s", s.Log())
			}
			if v, ok := strings.CutPrefix(l, "API URL: "); ok {
				s.URL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Router http: "); ok {
				s.Router = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Registry: "); ok {
				s.Registry = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Admin token: "); ok {
				s.Token = strings.TrimSpace(v)
			}
		case <-deadline.C:
			s.Stop()
			return nil, fmt.Errorf("skiff server printed no URL and token within %s:\n%s", o.StartTimeout, s.Log())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		}
	}
	if u := strings.TrimPrefix(s.URL, "http://"); !strings.HasPrefix(u, "127.0.0.1:") {
		s.Stop()
		return nil, fmt.Errorf("skiff server listens on %s, not loopback", s.URL)
	}
	return s, nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// LogFile is the file holding the server's stderr.
func (s *Server) LogFile() string { return s.errs }

// Log returns what the server wrote to stderr.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.errs)
	return string(b)
}

// ErrKilled is returned by Stop when the server ignored SIGTERM.
var ErrKilled = errors.New("skiff server ignored SIGTERM; killed")

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after the stop
// timeout). It is idempotent.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM) // fails harmlessly if it already exited
		select {
		case err := <-s.done:
			if err != nil {
				s.err = fmt.Errorf("skiff server: %v\n%s", err, s.Log())
			}
		case <-time.After(s.wait):
			s.cmd.Process.Kill()
			<-s.done
			s.err = fmt.Errorf("%w after %s", ErrKilled, s.wait)
		}
	})
	return s.err
}
