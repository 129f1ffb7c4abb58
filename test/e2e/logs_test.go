package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logLine is one line as `heroku logs` prints it (colours off).
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 ([a-z]+\[[\w.-]+\]: .*)$`)

// logLines checks that every line of out is a log line and returns them
// without their timestamps.
func logLines(t *testing.T, r result) []string {
	t.Helper()
	var out []string
	if r.Stdout == "" {
		return nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n") {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%s: %q is not a log line (<RFC 3339 µs +00:00> source[dyno]: message)", r.Cmd, l)
			continue
		}
		out = append(out, m[1])
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLogs drives Logplex with the official CLI: the history of API audit
// lines, -n, --source and --dyno filters, --tail across server-side ends
// of the stream (the server runs with --log-stream-max=2s, so the CLI
// reconnects with Last-Event-ID), and the history after a SIGKILL of the
// server.
func TestLogs(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	flags := []string{"--log-stream-max=2s", "--log-level=debug"}
	s := startServerIn(t, dataDir, true, flags...)
	h := s.heroku(t, s.AdminToken)
	admin := s.AdminEmail
	const app = "logsy"

	by := " by user " + admin
	h.ok(t, "apps:create", app)
	h.ok(t, "config:set", "FOO=bar", "-a", app)
	web := digest("logs web")
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/"+app+"/formation",
		map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": "sha256:" + web}}},
		"application/vnd.heroku+json; version=3.docker-releases", http.StatusOK, nil)
	h.ok(t, "ps:scale", "web=2", "-a", app)
	history := []string{
		"app[api]: Initial release" + by,
		"app[api]: Release v1 created" + by,
		"app[api]: Enable Logplex" + by,
		"app[api]: Release v2 created" + by,
		"app[api]: Set FOO config vars" + by,
		"app[api]: Release v3 created" + by,
		"app[api]: Deploy " + web[:8] + by,
		"app[api]: Release v4 created" + by,
		"app[api]: Scaled to web@2:Standard-1X" + by,
	}

	t.Run("logs", func(t *testing.T) {
		wantLines(t, "heroku logs", logLines(t, h.ok(t, "logs", "-a", app)), history)
	})
	t.Run("logs -n 1", func(t *testing.T) {
		wantLines(t, "heroku logs -n 1", logLines(t, h.ok(t, "logs", "-n", "1", "-a", app)), history[len(history)-1:])
	})
	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			args []string
			want []string
		}{
			{[]string{"--source", "app"}, history},
			{[]string{"--source", "heroku"}, nil},
			{[]string{"--dyno", "api"}, history},
			{[]string{"--dyno", "web.1"}, nil},
			{[]string{"--process-type", "web"}, nil},
			{[]string{"-n", "2", "--source", "app", "--dyno", "api"}, history[len(history)-2:]},
		}
		for _, tt := range tests {
			res := h.ok(t, append([]string{"logs", "-a", app}, tt.args...)...)
			wantLines(t, res.Cmd, logLines(t, res), tt.want)
		}
	})

	// --tail, while config changes make new lines for about six seconds:
	// the server ends the stream every two, the CLI reconnects and resumes.
	streamsBefore := strings.Count(s.stderr.String(), "path=/logstream/")
	tail := startTail(t, h, "logs", "--tail", "-n", "1", "-a", app)
	tail.waitFor(t, history[len(history)-1])
	var live []string
	for i := 1; i <= 12; i++ {
		key := fmt.Sprintf("K%d", i)
		s.apiJSON(t, s.AdminToken, "PATCH", "/apps/"+app+"/config-vars", map[string]string{key: "v"}, "", http.StatusOK, nil)
		live = append(live, "app[api]: Set "+key+" config vars"+by, fmt.Sprintf("app[api]: Release v%d created%s", 4+i, by))
		time.Sleep(500 * time.Millisecond)
	}
	tail.waitFor(t, live[len(live)-1])
	// Once more the server ends the stream and the CLI resumes after the
	// last line it has: nothing may come twice.
	ended := func() int { return strings.Count(s.stderr.String(), "path=/logstream/") - streamsBefore }
	endedBefore := ended()
	deadline := time.Now().Add(10 * time.Second)
	for ended() == endedBefore && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // retry: 1000, then the resumed stream's backlog
	got := tail.stop(t)
	wantLines(t, "heroku logs --tail", got, append(history[len(history)-1:], live...))
	if n := ended(); n < 3 {
		t.Errorf("the server ended %d tail streams, want at least 3 (one every 2 s)", n)
	}
	history = append(history, live...)

	// SIGKILL: what `heroku logs --tail` showed was in the history, so it
	// survives.
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s2 := startServerIn(t, dataDir, false, flags...)
	h2 := s2.heroku(t, s.AdminToken)
	wantLines(t, "heroku logs -n 1500 after SIGKILL and restart", logLines(t, h2.ok(t, "logs", "-n", "1500", "-a", app)), history)

	h2.ok(t, "config:set", "AFTER=1", "-a", app)
	wantLines(t, "heroku logs -n 3 after the restart", logLines(t, h2.ok(t, "logs", "-n", "3", "-a", app)), []string{
		history[len(history)-1], "app[api]: Set AFTER config vars" + by, "app[api]: Release v17 created" + by})
}

// tailProc is a `heroku logs --tail` running in the background.
type tailProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string // stdout lines
	stderr syncBuffer
	seen   chan struct{}
	done   chan struct{}
}

func startTail(t *testing.T, h *herokuCLI, args ...string) *tailProc {
	t.Helper()
	p := &tailProc{seen: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command(herokuBinary(t), args...)
	p.cmd.Env = h.env()
	p.cmd.Dir = t.TempDir()
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := p.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, stripANSI(sc.Text()))
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
		p.cmd.Wait()
	}()
	return p
}

func (p *tailProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitFor waits until a line ending in suffix is printed.
func (p *tailProc) waitFor(t *testing.T, suffix string) {
	t.Helper()
	timeout := time.After(cliTimeout)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.HasSuffix(l, suffix) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-p.done:
			t.Fatalf("heroku logs --tail exited before printing %q\n--- stdout:\n%s\n--- stderr:\n%s", suffix, p.output(), p.stderr.String())
		case <-timeout:
			t.Fatalf("heroku logs --tail did not print %q within %s\n--- stdout:\n%s\n--- stderr:\n%s", suffix, cliTimeout, p.output(), p.stderr.String())
		}
	}
}

// stop kills the CLI and returns its lines without timestamps.
func (p *tailProc) stop(t *testing.T) []string {
	t.Helper()
	select {
	case <-p.done:
		t.Errorf("heroku logs --tail exited by itself\n--- stderr:\n%s", p.stderr.String())
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	out := p.output()
	if out != "" {
		out += "\n"
	}
	return logLines(t, result{Cmd: "heroku logs --tail", Stdout: out})
}
