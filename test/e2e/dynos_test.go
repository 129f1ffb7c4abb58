package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// dynoApp is the image the dyno tests run: web dynos serve $PORT, others
// print a line a second.
// Neither handles SIGTERM: the dyno's init passes the signal on, and the
// default action ends them.
const dynoApp = `package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if strings.HasPrefix(os.Getenv("DYNO"), "run.") {
		fmt.Println("one-off:", strings.Join(os.Args[1:], " "))
		return
	}
	if !strings.HasPrefix(os.Getenv("DYNO"), "web") {
		for {
			fmt.Println("working", os.Getenv("GREETING"))
			time.Sleep(time.Second)
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`

// startDynoServer starts a server that runs dynos on its own bridge and
// subnet, with the test image already in its image store (until the
// registry lands, images go into the store directly). It returns the server
// and the image id.
func startDynoServer(t *testing.T, dataDir string, fresh bool, bridge, subnet string) *server {
	t.Helper()
	return startServerIn(t, dataDir, fresh, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet,
		"--rendezvous-addr", "127.0.0.1:0")
}

func importImage(t *testing.T, dataDir string) string {
	t.Helper()
	return importLayout(t, dataDir, imagetest.BuildGo(t, dynoApp))
}

// importLayout puts the image of an OCI layout into the image store of a
// server's data dir and returns its id.
func importLayout(t *testing.T, dataDir, layout string) string {
	t.Helper()
	store, err := image.Open(filepath.Join(dataDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := store.ImportLayout(layout)
	if err != nil {
		t.Fatal(err)
	}
	return refs[0].ID
}

// psStates runs `heroku ps` and returns "name=state" for each dyno, sorted.
func psStates(t *testing.T, h *herokuCLI, app string) string {
	t.Helper()
	res := h.run(t, "ps", "-a", app)
	var out []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		name, rest, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, "===") {
			continue
		}
		out = append(out, name+"="+strings.Fields(rest)[0])
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func waitPS(t *testing.T, h *herokuCLI, app, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = psStates(t, h, app); got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("heroku ps: %q, want %q", got, want)
}

// leftovers lists what a server's dynos left on the host: overlay mounts
// under its data dir, network namespaces and interfaces named after its
// bridge, and runc containers in its state dir.
func leftovers(t *testing.T, dataDir, bridge string) []string {
	t.Helper()
	var out []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, dataDir) {
			out = append(out, "mount: "+line)
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), bridge) {
				out = append(out, "netns: "+e.Name())
			}
		}
	}
	if b, err := exec.Command("ip", "-o", "link").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, bridge) {
				out = append(out, "link: "+line)
			}
		}
	}
	if b, err := exec.Command("runc", "--root", filepath.Join(dataDir, "runc"), "list", "-q").Output(); err == nil && strings.TrimSpace(string(b)) != "" {
		out = append(out, "runc: "+strings.TrimSpace(string(b)))
	}
	return out
}

func TestDynosWithHerokuCLI(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	img := importImage(t, dataDir)
	const bridge, subnet = "ske2e1", "10.213.220.0/24"
	s := startDynoServer(t, dataDir, true, bridge, subnet)
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "dynoapp")
	s.apiJSON(t, s.AdminToken, "PATCH", "/apps/dynoapp/formation",
		map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": img}, {"type": "worker", "docker_image": img}}},
		"application/vnd.heroku+json; version=3.docker-releases", 200, nil)
	waitPS(t, h, "dynoapp", "web.1=up")

	res := h.ok(t, "ps", "-a", "dynoapp")
	wantContains(t, res, "stdout", "=== web (Standard-1X): /app (1)")

	h.ok(t, "ps:scale", "web=2", "worker=1", "-a", "dynoapp")
	waitPS(t, h, "dynoapp", "web.1=up web.2=up worker.1=up")

	// A config change restarts every dyno on the new release.
	h.ok(t, "config:set", "GREETING=hi", "-a", "dynoapp")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var dynos []struct {
			Name, State string
			Release     struct{ Version int }
		}
		s.apiJSON(t, s.AdminToken, "GET", "/apps/dynoapp/dynos", nil, "", 200, &dynos)
		onV4 := 0
		for _, d := range dynos {
			if d.State == "up" && d.Release.Version == 4 {
				onV4++
			}
		}
		if onV4 == 3 && len(dynos) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynos not restarted on v4: %+v", dynos)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.ok(t, "ps:restart", "-a", "dynoapp")
	h.ok(t, "ps:restart", "-p", "worker", "-a", "dynoapp")
	waitPS(t, h, "dynoapp", "web.1=up web.2=up worker.1=up")

	// Dyno output and the dyno manager's lines are in the app's log. The
	// restarts above stopped dynos that have no SIGTERM handler: the init
	// passed the signal on, so they exited of it (143), as on Heroku.
	res = h.ok(t, "logs", "-a", "dynoapp", "-n", "1500")
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[worker\.1\]: working hi$`)
	wantMatch(t, res, "stdout", `(?m)^\S+ heroku\[web\.1\]: State changed from starting to up$`)
	wantMatch(t, res, "stdout", `(?m)^\S+ heroku\[web\.1\]: Process exited with status 143$`)
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[api\]: Set GREETING config vars by user admin@skiff\.local$`)
	wantNotContains(t, res, "stdout", "Error R12")
	res = s.skiff(t, s.AdminToken, "logs", "-a", "dynoapp", "-n", "1500", "--dyno", "worker")
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[worker\.1\]: working hi$`)
	wantNotContains(t, res, "stdout", "web.1")

	// The skiff client shows and restarts dynos too.
	res = s.skiff(t, s.AdminToken, "ps", "-a", "dynoapp")
	// Grouped by command, as Heroku's ps does: web and worker run the same.
	wantContains(t, res, "stdout", "=== web (Standard-1X): /app (3)")
	wantMatch(t, res, "stdout", `(?m)^web\.2: up 20`)
	wantMatch(t, res, "stdout", `(?m)^worker\.1: up 20`)
	res = s.skiff(t, s.AdminToken, "ps:restart", "web.2", "-a", "dynoapp")
	wantContains(t, res, "stderr", "Restarting dyno web.2 on ⬢ dynoapp... done")
	waitPS(t, h, "dynoapp", "web.1=up web.2=up worker.1=up")

	// One-off dynos: detached runs (attached ones: run_test.go).
	res = h.ok(t, "run:detached", "/app migrate", "-a", "dynoapp")
	wantMatch(t, res, "stderr", `Running /app migrate on \S*dynoapp\.\.\. done, run\.\d+`)
	res = s.skiff(t, s.AdminToken, "run:detached", "/app", "seed", "-a", "dynoapp", "--env", "A=1;B=2")
	wantMatch(t, res, "stderr", `Running /app seed on (⬢ )?dynoapp\.\.\. done, run\.\d+ \(Standard-1X\)`)

	// A graceful stop takes every dyno down and leaves nothing behind.
	if err := s.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, s.stderr.String())
	}
	if l := leftovers(t, dataDir, bridge); len(l) > 0 {
		t.Errorf("after a graceful stop:\n%s", strings.Join(l, "\n"))
	}

	// Restarted, the server runs the formation again.
	s = startDynoServer(t, dataDir, false, bridge, subnet)
	h = s.heroku(t, h.token)
	waitPS(t, h, "dynoapp", "web.1=up web.2=up worker.1=up")

	// Killed outright, it finds its old containers at the next start,
	// removes them and starts the formation afresh.
	old := runcContainers(t, dataDir)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s = startDynoServer(t, dataDir, false, bridge, subnet)
	h = s.heroku(t, h.token)
	waitPS(t, h, "dynoapp", "web.1=up web.2=up worker.1=up")
	for _, id := range runcContainers(t, dataDir) {
		for _, o := range old {
			if id == o {
				t.Errorf("container %s from before the kill is still there", id)
			}
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if l := leftovers(t, dataDir, bridge); len(l) > 0 {
		t.Errorf("after the last stop:\n%s", strings.Join(l, "\n"))
	}
}

func runcContainers(t *testing.T, dataDir string) []string {
	t.Helper()
	b, err := exec.Command("runc", "--root", filepath.Join(dataDir, "runc"), "list", "-q").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	return strings.Fields(string(b))
}
