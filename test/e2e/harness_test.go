package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hostlock"
)

// Time limits. They are generous: they only stop a hung process, they do not
// measure anything.
const (
	buildTimeout   = 5 * time.Minute  // go build ./cmd/skiff, cold cache
	installTimeout = 10 * time.Minute // npm install heroku, cold cache
	bannerTimeout  = 30 * time.Second // server start until its banner
	stopTimeout    = 10 * time.Second // SIGTERM until exit, then SIGKILL
	cliTimeout     = 90 * time.Second // one heroku CLI invocation
	promptTimeout  = 30 * time.Second // waiting for an interactive prompt
)

// workDir holds what is shared by the whole run (the skiff binary); TestMain
// removes it at the end.
var workDir string

func TestMain(m *testing.M) {
	// The dyno tests use fixed bridge names and subnets: serialise with
	// any other run of this package on the host.
	lock, err := hostlock.Acquire("e2e-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "skiff-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	lock.Release()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// Build and install, once per `go test` run.

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error

	buildOnce sync.Once
	skiffPath string
	buildErr  error

	cliOnce    sync.Once
	herokuPath string
	cliErr     error
)

// repoRoot returns the module root (the directory of go.mod).
func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			rootErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			rootErr = errors.New("go env GOMOD: not inside the skiff module")
			return
		}
		rootDir = filepath.Dir(gomod)
	})
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return rootDir
}

// skiffBinary builds ./cmd/skiff once per run and returns the binary's path.
func skiffBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		path := filepath.Join(workDir, "skiff")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/skiff")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as scripts/run builds it: it is the dynos' init
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/skiff: %v\n%s", err, out)
			return
		}
		skiffPath = path
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return skiffPath
}

// herokuBinary runs scripts/install-heroku-cli once per run (it is idempotent
// and cached) and returns the path of the `heroku` binary it prints. A
// failed install fails the test: nothing is skipped.
func herokuBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	cliOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "install-heroku-cli"))
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			cliErr = fmt.Errorf("scripts/install-heroku-cli: %v\n%s%s", err, stdout.String(), stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		path := strings.TrimSpace(lines[len(lines)-1])
		if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			cliErr = fmt.Errorf("scripts/install-heroku-cli printed %q, which is not an executable file (%v)", path, err)
			return
		}
		herokuPath = path
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return herokuPath
}

// ---------------------------------------------------------------------------
// The server.

// server is one running `skiff server`.
type server struct {
	URL        string // http://127.0.0.1:PORT, from the banner
	AdminEmail string // from the banner (first start only)
	AdminToken string // from the banner (first start only)
	Registry   string // host:port of the embedded registry, from the banner
	DataDir    string
	Home       string

	RouterURL, RouterTLSURL string // the router's, from the banner

	cmd      *exec.Cmd
	stdout   syncBuffer
	stderr   syncBuffer
	done     chan struct{} // closed once the process has exited
	waitErr  error         // valid after done
	stopOnce sync.Once
	stopErr  error
}

// startServer starts a server on a fresh data directory and waits for its
// full first-start banner.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), true)
}

// startServerIn starts a server on dataDir. fresh says whether this is the
// first start on that directory (the banner then also carries the admin's
// email and token). The server is stopped at the test's cleanup.
//
// Servers run no dynos unless extra flags say otherwise (parallel servers
// must not share one dyno bridge): a test that wants dynos passes
// "--dynos=true" with its own --dyno-bridge and --dyno-subnet.
func startServerIn(t *testing.T, dataDir string, fresh bool, extra ...string) *server {
	t.Helper()
	bin := skiffBinary(t)
	s := &server{DataDir: dataDir, Home: t.TempDir(), done: make(chan struct{})}
	// No registry unless asked for (--registry-addr 127.0.0.1:0 in extra):
	// with one, releases must name images it holds.
	args := []string{"server", "--data-dir", dataDir, "--api-addr", "127.0.0.1:0", "--base-domain", "localhost", "--dynos=false",
		"--registry-addr", "off", "--router-http-addr", "127.0.0.1:0", "--router-https-addr", "127.0.0.1:0",
		"--rendezvous-addr", "127.0.0.1:0"} // parallel servers must not share a fixed port
	wantRegistry := slices.Contains(extra, "--registry-addr")
	s.cmd = exec.Command(bin, append(args, extra...)...)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Home, "TMPDIR=" + os.TempDir()}
	s.cmd.Dir = s.Home
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start skiff server: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("skiff server (%s) stdout:\n%s", s.URL, s.stdout.String())
			t.Logf("skiff server (%s) stderr:\n%s", s.URL, s.stderr.String())
		}
	})

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.stdout.Write([]byte(line + "\n"))
			select {
			case lines <- line:
			default: // nobody listens any more; the buffer keeps it
			}
		}
		io.Copy(io.Discard, pipe)
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	timeout := time.After(bannerTimeout)
	for s.URL == "" || (wantRegistry && s.Registry == "") || (fresh && (s.AdminEmail == "" || s.AdminToken == "")) {
		select {
		case line := <-lines:
			if v, ok := strings.CutPrefix(line, "API URL: "); ok {
				s.URL = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Registry: "); ok {
				s.Registry = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Router http: "); ok {
				s.RouterURL = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Router https: "); ok {
				s.RouterTLSURL = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Admin email: "); ok {
				s.AdminEmail = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Admin token: "); ok {
				s.AdminToken = strings.TrimSpace(v)
			}
		case <-s.done:
			t.Fatalf("skiff server exited before printing its banner: %v\nstdout:\n%s\nstderr:\n%s",
				s.waitErr, s.stdout.String(), s.stderr.String())
		case <-timeout:
			t.Fatalf("skiff server printed no complete banner within %s\nstdout:\n%s\nstderr:\n%s",
				bannerTimeout, s.stdout.String(), s.stderr.String())
		}
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(s.URL) {
		t.Fatalf("banner API URL = %q, want http://127.0.0.1:PORT", s.URL)
	}
	return s
}

// stop sends SIGTERM, waits for the exit (SIGKILL after stopTimeout) and
// returns the process's exit error. It is idempotent; cleanup calls it too.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		pid := s.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-s.done:
			s.stopErr = s.waitErr
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-s.done
			s.stopErr = fmt.Errorf("no exit within %s of SIGTERM; killed", stopTimeout)
		}
		// Anything the server left in its process group goes too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
	return s.stopErr
}

// skiff runs the skiff client (same binary) against the server with the
// given token and returns its result.
func (s *server) skiff(t *testing.T, token string, args ...string) result {
	t.Helper()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"SKIFF_API_URL=" + s.URL,
		"SKIFF_API_KEY=" + token,
	}
	return runProcess(t, skiffBinary(t), args, env, nil)
}

// createAccount creates an account through `skiff accounts:create` (as the
// admin) and returns the token it prints.
func (s *server) createAccount(t *testing.T, email, password string) string {
	t.Helper()
	args := []string{"accounts:create", email}
	if password != "" {
		args = append(args, "--password", password)
	}
	res := s.skiff(t, s.AdminToken, args...)
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	m := regexp.MustCompile(`(?m)^Token: (\S+)$`).FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("%s", res.describe("a line `Token: <token>` on stdout"))
	}
	return m[1]
}

// api sends one Platform API request and returns the status and body. body
// is JSON-encoded unless nil; accept "" means version=3.
func (s *server) api(t *testing.T, token, method, path string, body any, accept string) (int, []byte) {
	t.Helper()
	return s.request(t, token, method, path, body, map[string]string{"Accept": accept})
}

// apiWithRange GETs path with a Range header, as the CLI sends it.
func (s *server) apiWithRange(t *testing.T, token, path, rng string) (int, []byte) {
	t.Helper()
	return s.request(t, token, "GET", path, nil, map[string]string{"Range": rng})
}

func (s *server) request(t *testing.T, token, method, path string, body any, headers map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// apiJSON is api for a JSON answer with status want, decoded into out.
func (s *server) apiJSON(t *testing.T, token, method, path string, body any, accept string, want int, out any) {
	t.Helper()
	status, b := s.api(t, token, method, path, body, accept)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body: %s", method, path, status, want, b)
	}
	if out != nil {
		decode(t, b, out)
	}
}

func decode(t *testing.T, body []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

// show renders a value for a failure message, following pointers.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// The official heroku CLI.

// herokuCLI runs the official CLI against one server, as one user: its own
// HOME (the CLI writes ~/.gitconfig, ~/.netrc and caches there) and, unless
// token is empty, HEROKU_API_KEY.
type herokuCLI struct {
	srv   *server
	token string
	home  string
}

func (s *server) heroku(t *testing.T, token string) *herokuCLI {
	t.Helper()
	herokuBinary(t)
	return &herokuCLI{srv: s, token: token, home: t.TempDir()}
}

// env is the whole environment of a CLI run: nothing is inherited but PATH,
// so neither the developer's HEROKU_* settings nor XDG_* directories leak in.
// The variables are those of heroku-cli.md §0, plus plain output.
func (c *herokuCLI) env() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"HEROKU_HOST=" + c.srv.URL,
		"HEROKU_PARTICLEBOARD_URL=" + c.srv.URL,
		"DISABLE_TELEMETRY=true",
		"HEROKU_SKIP_NEW_VERSION_CHECK=true",
		"HEROKU_DISABLE_AUTOUPDATE=1",
		"HEROKU_LOGS_COLOR=0",
		"HEROKU_NETRC_WRITE=true", // login writes ~/.netrc, never an OS keychain
		"NO_COLOR=1",
		"FORCE_COLOR=0",
		"OCLIF_COLUMNS=1000", // no wrapping of error messages at 80 columns
	}
	if c.token != "" {
		env = append(env, "HEROKU_API_KEY="+c.token)
	}
	return env
}

// run runs `heroku args...` and returns its result whatever the exit status.
func (c *herokuCLI) run(t *testing.T, args ...string) result {
	t.Helper()
	return runProcess(t, herokuBinary(t), args, c.env(), nil)
}

// ok runs `heroku args...` and fails the test unless it exits 0.
func (c *herokuCLI) ok(t *testing.T, args ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.Code != 0 {
		t.Fatalf("%s", res.describe("exit status 0"))
	}
	return res
}

// fails runs `heroku args...` and fails the test if it exits 0.
func (c *herokuCLI) fails(t *testing.T, args ...string) result {
	t.Helper()
	res := c.run(t, args...)
	if res.Code == 0 {
		t.Fatalf("%s", res.describe("a non-zero exit status"))
	}
	return res
}

// answer is one step of an interactive dialogue: once prompt has appeared
// on the process's stderr, input is written to its stdin.
type answer struct {
	prompt string
	input  string
}

// runDialogue runs `heroku args...` with stdin a pipe, answering each prompt
// in turn. Each answer is written only once its prompt is on screen: the
// CLI's prompt library (inquirer, via @heroku-cli/command/lib/prompter.js)
// opens a fresh readline per question, and a readline that finds two lines
// in the pipe consumes both, so the next question would see EOF.
func (c *herokuCLI) runDialogue(t *testing.T, answers []answer, args ...string) result {
	t.Helper()
	return runProcess(t, herokuBinary(t), args, c.env(), answers)
}

// ---------------------------------------------------------------------------
// Processes.

// result is what one process run produced. Stdout and Stderr have ANSI
// escape sequences removed.
type result struct {
	Cmd    string
	Stdout string
	Stderr string
	Code   int
	Took   time.Duration
}

func (r result) describe(want string) string {
	return fmt.Sprintf("%s: exit status %d, want %s\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, r.Code, want, r.Stdout, r.Stderr)
}

var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])`)

func stripANSI(s string) string { return ansiEscape.ReplaceAllString(s, "") }

// runProcess runs bin with args and exactly env, in a fresh directory outside
// any git repository (the CLI edits git remotes when run inside one), in its
// own process group, which is killed when the run ends or times out.
func runProcess(t *testing.T, bin string, args, env []string, answers []answer) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout syncBuffer
	stderr := syncBuffer{changed: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	var stdin io.WriteCloser
	if answers != nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Base(bin) + " " + strings.Join(args, " ")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pid := cmd.Process.Pid
	defer syscall.Kill(-pid, syscall.SIGKILL) // stragglers in the group

	var dialogueErr error
	if stdin != nil {
		dialogueErr = converse(ctx, stdin, &stderr, answers)
		stdin.Close()
	}
	err := cmd.Wait()
	res := result{
		Cmd:    name,
		Stdout: stripANSI(stdout.String()),
		Stderr: stripANSI(stderr.String()),
		Took:   time.Since(start),
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	default:
		t.Fatalf("%s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: killed after %s\n--- stdout:\n%s\n--- stderr:\n%s", name, cliTimeout, res.Stdout, res.Stderr)
	}
	if dialogueErr != nil {
		t.Fatalf("%s: %v\n--- stdout:\n%s\n--- stderr:\n%s", name, dialogueErr, res.Stdout, res.Stderr)
	}
	t.Logf("%s: exit %d in %.1fs", name, res.Code, res.Took.Seconds())
	return res
}

// converse writes each answer once its prompt shows up on screen (stderr,
// where the CLI's prompter writes).
func converse(ctx context.Context, stdin io.Writer, screen *syncBuffer, answers []answer) error {
	seen := 0 // offset in the screen text after the last prompt answered
	for _, a := range answers {
		deadline := time.After(promptTimeout)
		for {
			text := stripANSI(screen.String())
			if i := strings.Index(text[min(seen, len(text)):], a.prompt); i >= 0 {
				seen += i + len(a.prompt)
				break
			}
			select {
			case <-screen.changed:
			case <-deadline:
				return fmt.Errorf("prompt %q did not appear within %s", a.prompt, promptTimeout)
			case <-ctx.Done():
				return fmt.Errorf("prompt %q: %w", a.prompt, ctx.Err())
			}
		}
		if _, err := io.WriteString(stdin, a.input+"\n"); err != nil {
			return fmt.Errorf("answering %q: %w", a.prompt, err)
		}
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use that can signal
// writes on changed (if non-nil).
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.changed != nil {
		select {
		case b.changed <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------------------
// Assertions on output. what names the stream for the failure message.

func wantContains(t *testing.T, r result, stream, want string) {
	t.Helper()
	if !strings.Contains(r.stream(stream), want) {
		t.Errorf("%s: %s does not contain %q\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, stream, want, r.Stdout, r.Stderr)
	}
}

func wantNotContains(t *testing.T, r result, stream, unwanted string) {
	t.Helper()
	if strings.Contains(r.stream(stream), unwanted) {
		t.Errorf("%s: %s contains %q\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, stream, unwanted, r.Stdout, r.Stderr)
	}
}

// wantMatch checks a multi-line regexp against the stream and returns the
// submatches (nil if none).
func wantMatch(t *testing.T, r result, stream, re string) []string {
	t.Helper()
	m := regexp.MustCompile("(?m)" + re).FindStringSubmatch(r.stream(stream))
	if m == nil {
		t.Errorf("%s: %s does not match /%s/\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, stream, re, r.Stdout, r.Stderr)
	}
	return m
}

func wantEqual(t *testing.T, r result, stream, want string) {
	t.Helper()
	if got := r.stream(stream); got != want {
		t.Errorf("%s: %s = %q, want %q\n--- stderr:\n%s", r.Cmd, stream, got, want, r.Stderr)
	}
}

func (r result) stream(name string) string {
	switch name {
	case "stdout":
		return r.Stdout
	case "stderr":
		return r.Stderr
	}
	panic("stream must be stdout or stderr, not " + name)
}
