package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSkiffRouterCommand runs `skiff router` over a table file: it routes
// by Host, prints router lines, reloads the file when it changes and on
// SIGHUP, and keeps the old table when the new one is bad.
func TestSkiffRouterCommand(t *testing.T) {
	t.Parallel()
	backend := func(name string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return l.Addr().String()
	}
	one, two := backend("one"), backend("two")
	dir := t.TempDir()
	table := filepath.Join(dir, "table.json")
	write := func(body string) {
		t.Helper()
		// Replace atomically, as an editor or a deploy tool would.
		if err := os.WriteFile(table+".tmp", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(table+".tmp", table); err != nil {
			t.Fatal(err)
		}
	}
	route := func(addr string) string {
		return fmt.Sprintf(`{"routes":[{"app":"shop","hosts":["shop.example.com"],"backends":[{"name":"web.1","addr":%q}]}]}`, addr)
	}
	write(route(one))

	cmd := exec.Command(skiffBinary(t), "router", "--table", table, "--http-addr", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	var stdout syncBuffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
	}()
	waitLog := func(re string) []string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l := <-logs:
				if m := regexp.MustCompile(re).FindStringSubmatch(l); m != nil {
					return m
				}
			case <-timeout:
				t.Fatalf("skiff router logged no line matching %s", re)
			}
		}
	}
	addr := waitLog(`msg="router listening" addr=(\S+)`)[1]
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "shop.example.com"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	if got := get(); got != "200 one" {
		t.Fatalf("first table: %q", got)
	}

	write(route(two)) // picked up by the file watch
	waitLog(`msg="routing table reloaded" on=change`)
	if got := get(); got != "200 two" {
		t.Fatalf("after the change: %q", got)
	}

	write(`{"routes":[{"app":"shop","hosts":["shop.example.com"],"backends":[{"addr":"nowhere"}]}]}`)
	waitLog(`routing table not reloaded; the previous one stays.*address \\"nowhere\\"`)
	if got := get(); got != "200 two" {
		t.Fatalf("after a bad table: %q", got)
	}

	write(route(one))
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`msg="routing table reloaded" on=(SIGHUP|change)`)
	if got := get(); got != "200 one" {
		t.Fatalf("after SIGHUP: %q", got)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if !regexp.MustCompile(`(?m)^\S+ heroku\[router\]: at=info method=GET path="/" host=shop\.example\.com request_id=\S+ fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=3 protocol=http$`).MatchString(stdout.String()) {
		t.Errorf("router lines on stdout:\n%s", stdout.String())
	}
	if strings.Count(stdout.String(), "heroku[router]") != 4 {
		t.Errorf("want 4 router lines:\n%s", stdout.String())
	}
}
