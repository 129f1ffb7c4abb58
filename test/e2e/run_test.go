package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"

	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// TestRunAttached: `heroku run` and `skiff run` attach to one-off dynos
// through the rendezvous service (TLS, certificate from the server's local
// CA), on a busybox image with a shell.
func TestRunAttached(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	img := importLayout(t, dataDir, imagetest.Busybox(t, imagetest.WithUser("app")))
	const bridge, subnet = "skra1", "10.213.244.0/24"
	s := startDynoServer(t, dataDir, true, bridge, subnet)
	ca := filepath.Join(dataDir, "pki", "ca.pem")
	h := s.heroku(t, s.AdminToken)
	heroku := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		var answers []answer
		if stdin != "" { // written at once; the CLI forwards it once attached
			answers = []answer{{input: strings.TrimSuffix(stdin, "\n")}}
		}
		return runProcess(t, herokuBinary(t), args, append(h.env(), "NODE_EXTRA_CA_CERTS="+ca), answers)
	}
	skiff := func(t *testing.T, stdin string, args ...string) result {
		t.Helper()
		var answers []answer
		if stdin != "" {
			answers = []answer{{input: strings.TrimSuffix(stdin, "\n")}}
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SKIFF_API_URL=" + s.URL,
			"SKIFF_API_KEY=" + s.AdminToken, "SKIFF_CA_CERT=" + ca}
		return runProcess(t, skiffBinary(t), args, env, answers)
	}
	h.ok(t, "apps:create", "runapp")
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/runapp/formation",
		map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": img}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	h.ok(t, "ps:scale", "web=0", "-a", "runapp")

	t.Run("stdin and output", func(t *testing.T) {
		res := heroku(t, "one\ntwo\n", "run", "echo hi; cat", "-a", "runapp")
		if res.Code != 0 {
			t.Fatal(res.describe("exit status 0"))
		}
		wantMatch(t, res, "stderr", `Running echo hi; cat on \S*runapp\.\.\. up, run\.\d+`)
		wantMatch(t, res, "stdout", `(?m)^hi$`)
		// The terminal echoes the input, then cat prints it; Ctrl-D
		// (sent by the CLI at the end of its stdin) ended cat's input.
		for _, line := range []string{"one", "two"} {
			if n := len(regexp.MustCompile(`(?m)^`+line+`$`).FindAllString(res.Stdout, -1)); n != 2 {
				t.Errorf("%q %d times in the output, want 2 (echo and cat)\n%s", line, n, res.Stdout)
			}
		}
	})

	t.Run("exit code", func(t *testing.T) {
		res := heroku(t, "", "run", "-x", "for i in 1 2 3 4 5; do echo line$i; done; exit 3", "-a", "runapp")
		if res.Code != 3 {
			t.Fatal(res.describe("exit status 3"))
		}
		wantContains(t, res, "stderr", "Process exited with code 3")
		wantEqual(t, res, "stdout", "line1\nline2\nline3\nline4\nline5\n")
		res = heroku(t, "", "run", "-x", "true", "-a", "runapp")
		if res.Code != 0 || res.Stdout != "" {
			t.Fatal(res.describe("exit status 0 and no output"))
		}
	})

	t.Run("skiff run", func(t *testing.T) {
		res := skiff(t, "", "run", "-x", "-a", "runapp", "--", "echo out; echo err >&2; exit 4")
		if res.Code != 4 {
			t.Fatal(res.describe("exit status 4"))
		}
		wantEqual(t, res, "stdout", "out\nerr\n") // one terminal: both streams, in order
		wantMatch(t, res, "stderr", `Running echo out; echo err >&2; exit 4 on (⬢ )?runapp\.\.\. up, run\.\d+`)
		wantContains(t, res, "stderr", "Process exited with code 4")
		res = skiff(t, "abc\n", "run", "-a", "runapp", "--", "read x; echo got $x; tty")
		if res.Code != 0 {
			t.Fatal(res.describe("exit status 0"))
		}
		wantMatch(t, res, "stdout", `(?m)^got abc$`)
		wantMatch(t, res, "stdout", `(?m)^/dev/pts/\d+$`)
		// Without a terminal: plain pipes, and Ctrl-D still ends the input.
		res = skiff(t, "abc\n", "run", "--no-tty", "-x", "-a", "runapp", "--", "cat; tty; echo done")
		if res.Code != 1 && res.Code != 0 {
			t.Fatal(res.describe("exit status 0 or 1"))
		}
		wantEqual(t, res, "stdout", "abc\nnot a tty\ndone\n")
	})

	// Either client on a terminal: raw mode, its size sent as COLUMNS and
	// LINES (JSON numbers from the heroku CLI), Ctrl-C typed through.
	const typed = "stty size; echo $((6*7))x; cat"
	for _, client := range []struct {
		name string
		cmd  func() *exec.Cmd
	}{
		{"heroku", func() *exec.Cmd {
			c := exec.Command(herokuBinary(t), "run", "-x", typed, "-a", "runapp")
			c.Env = append(h.env(), "NODE_EXTRA_CA_CERTS="+ca)
			return c
		}},
		{"skiff", func() *exec.Cmd {
			c := exec.Command(skiffBinary(t), "run", "-x", "-a", "runapp", "--", typed)
			c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SKIFF_API_URL=" + s.URL,
				"SKIFF_API_KEY=" + s.AdminToken, "SKIFF_CA_CERT=" + ca}
			return c
		}},
	} {
		t.Run("terminal "+client.name, func(t *testing.T) { onTerminal(t, s, client.cmd()) })
	}

	t.Run("client disconnect", func(t *testing.T) {
		cmd := exec.Command(herokuBinary(t), "run", "echo started; sleep 600", "-a", "runapp")
		cmd.Env = append(h.env(), "NODE_EXTRA_CA_CERTS="+ca)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		name := waitRunDyno(t, s, "up")
		res := h.ok(t, "ps", "-a", "runapp")
		wantMatch(t, res, "stdout", `(?m)^`+regexp.QuoteMeta(name)+` \(Standard-1X\): up .*: echo started; sleep 600$`)
		waitFor(t, "the dyno's output at the client", func() bool { return strings.Contains(out.String(), "started") })
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		waitRunDyno(t, s, "")
		res = h.ok(t, "logs", "-a", "runapp", "-n", "1500", "--dyno", name)
		wantMatch(t, res, "stdout", `(?m)^\S+ heroku\[`+regexp.QuoteMeta(name)+`\]: Client connection closed\. Sending SIGHUP to all processes$`)
		wantMatch(t, res, "stdout", `(?m)^\S+ heroku\[`+regexp.QuoteMeta(name)+`\]: Process exited with status 129$`)
		wantMatch(t, res, "stdout", "(?m)^\\S+ heroku\\["+regexp.QuoteMeta(name)+"\\]: Starting process with command `echo started; sleep 600`$")
		wantNotContains(t, res, "stdout", "app["+name+"]") // the output was the client's
	})

	t.Run("secrets", func(t *testing.T) {
		var d struct {
			Name      string `json:"name"`
			AttachURL string `json:"attach_url"`
		}
		s.apiJSON(t, s.AdminToken, "POST", "/apps/runapp/dynos", map[string]any{"command": "sleep 600", "attach": true}, "", 201, &d)
		var waiting struct{ State, Command string }
		s.apiJSON(t, s.AdminToken, "GET", "/apps/runapp/dynos/"+d.Name, nil, "", 200, &waiting)
		if waiting.State != "starting" || waiting.Command != "sleep 600" {
			t.Errorf("before its client attached: %+v, want starting with its command", waiting)
		}
		u, err := url.Parse(d.AttachURL)
		if err != nil || u.Scheme != "rendezvous" || u.Hostname() != "127.0.0.1" {
			t.Fatalf("attach_url %q", d.AttachURL)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		attach := func(line string) (string, *tls.Conn) {
			c, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: u.Hostname()})
			if err != nil {
				t.Fatalf("TLS to the rendezvous service: %v", err)
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, line+"\r\n")
			b := make([]byte, len("rendezvous\r\n"))
			n, _ := io.ReadFull(c, b)
			return string(b[:n]), c
		}
		if got, c := attach(strings.Repeat("0", 32)); got != "" {
			t.Errorf("a wrong secret got %q", got)
		} else {
			c.Close()
		}
		got, c := attach(strings.TrimPrefix(u.Path, "/"))
		if got != "rendezvous\r\n" {
			t.Fatalf("the right secret got %q", got)
		}
		if got, again := attach(strings.TrimPrefix(u.Path, "/")); got != "" {
			t.Errorf("a used secret got %q", got)
		} else {
			again.Close()
		}
		waitRunDyno(t, s, "up")
		c.Close() // the client leaves: the dyno goes
		waitRunDyno(t, s, "")
	})

	t.Run("boot timeout", func(t *testing.T) {
		// A web dyno that never binds $PORT, on an app whose boot timeout
		// is 1 s instead of 60.
		sleeper := importLayout(t, dataDir, imagetest.Busybox(t, imagetest.WithCmd("sleep", "600")))
		h.ok(t, "apps:create", "bootapp")
		res := h.fails(t, "config:set", "SKIFF_BOOT_TIMEOUT=soon", "-a", "bootapp")
		wantContains(t, res, "stderr", `Invalid SKIFF_BOOT_TIMEOUT "soon": want a whole number of seconds from 1 to 600.`)
		h.ok(t, "config:set", "SKIFF_BOOT_TIMEOUT=1", "-a", "bootapp")
		s.apiJSON(t, s.AdminToken, "PATCH", "/apps/bootapp/formation",
			map[string]any{"updates": []map[string]any{{"type": "web", "docker_image": sleeper}}},
			"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
		waitFor(t, "R10 after 1 s", func() bool {
			res := h.ok(t, "logs", "-a", "bootapp", "-n", "1500", "--dyno", "web.1")
			return strings.Contains(res.Stdout, "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 second of launch")
		})
		h.ok(t, "ps:scale", "web=0", "-a", "bootapp")
	})

	if err := s.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if l := leftovers(t, dataDir, bridge); len(l) > 0 {
		t.Errorf("after the stop:\n%s", strings.Join(l, "\n"))
	}
}

// waitRunDyno waits until the app runapp has a one-off dyno in state (and
// returns its name), or none at all when state is "".
func waitRunDyno(t *testing.T, s *server, state string) string {
	t.Helper()
	name := ""
	waitFor(t, "a run dyno "+state, func() bool {
		var dynos []struct{ Name, Type, State string }
		s.apiJSON(t, s.AdminToken, "GET", "/apps/runapp/dynos", nil, "", 200, &dynos)
		name = ""
		for _, d := range dynos {
			if d.Type == "run" && (state == "" || d.State == state) {
				name = d.Name
			}
		}
		return (state == "") == (name == "")
	})
	return name
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// onTerminal runs cmd, a client running "stty size; echo $((6*7))x; cat"
// with -x on runapp, on a terminal of 100×30: it types a line, sees it
// echoed and catted, then Ctrl-C, which must end the client with 130.
func onTerminal(t *testing.T, s *server, cmd *exec.Cmd) {
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := master.Resize(console.WinSize{Width: 100, Height: 30}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	cmd.Env = append(cmd.Env, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer waitRunDyno(t, s, "") // gone once the CLI is
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var screen syncBuffer
	go io.Copy(&screen, master)
	see := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(screen.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("%q never appeared on the terminal:\n%q", what, screen.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	see("up, run.")
	see("30 100\r\n42x\r\n")
	io.WriteString(master, "hello\r")
	see("hello\r\nhello\r\n")      // the dyno's terminal echoes, then cat
	io.WriteString(master, "\x03") // Ctrl-C kills cat, and -x reports it
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != 130 {
			t.Errorf("run -x: %v, want exit status 130\n%q", err, screen.String())
		}
		see("Process exited with code 130") // the terminal may show it a little later
	case <-time.After(60 * time.Second):
		t.Fatalf("run did not end\n%s", screen.String())
	}
}
