package dyno

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
	"github.com/skiffhq/skiff/internal/network"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/runtime"
)

// webApp serves $PORT and says who it is; worker dynos just print; with
// MODE=crash it exits 3 at once.
const webApp = `package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if os.Getenv("MODE") == "crash" {
		fmt.Println("crashing")
		os.Exit(3)
	}
	if strings.HasPrefix(os.Getenv("DYNO"), "run.") {
		fmt.Println("one-off ran:", strings.Join(os.Args[1:], " "), os.Getenv("EXTRA"))
		os.Exit(7)
	}
	if strings.HasPrefix(os.Getenv("DYNO"), "worker") {
		for {
			fmt.Println("working")
			time.Sleep(time.Second)
		}
	}
	fmt.Println("listening on", os.Getenv("PORT"))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s greeting=%s uid=%d", os.Getenv("DYNO"), os.Getenv("GREETING"), os.Getuid())
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`

// newContainerEnv is env with the real runner: image store, network and
// runc. It returns the id of webApp's image; tune, if given, adjusts the
// runner and the manager's config before the manager starts.
func newContainerEnv(t *testing.T, subnet string, tune ...func(*ContainerRunner, *Config)) (*env, string) {
	t.Helper()
	base := t.TempDir()
	images, err := image.Open(filepath.Join(base, "images"))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := images.ImportLayout(imagetest.BuildGo(t, webApp))
	if err != nil {
		t.Fatal(err)
	}
	// Names unique among concurrently running envs (each has its own
	// subnet): in particular the veth prefix, since closing a network
	// removes every veth with its prefix that it does not know.
	pfx := netip.MustParsePrefix(subnet)
	octet := pfx.Addr().As4()[2]
	suffix := fmt.Sprintf("%d%d", octet, time.Now().UnixNano()%100000)
	// Registered first, so run last: nothing of the env may be left.
	t.Cleanup(func() {
		left, _ := filepath.Glob("/run/netns/skdy" + suffix + "-*")
		for _, pattern := range []string{"/sys/fs/cgroup/*/skiff-dyno-test-" + suffix, "/sys/fs/cgroup/*/*/skiff-dyno-test-" + suffix, "/sys/fs/cgroup/*/*/*/skiff-dyno-test-" + suffix} {
			m, _ := filepath.Glob(pattern)
			left = append(left, m...)
		}
		if _, err := stdnet.InterfaceByName("skdy" + suffix); err == nil {
			left = append(left, "bridge skdy"+suffix)
		}
		if len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
	net, err := network.Open(network.Config{Bridge: "skdy" + suffix, Subnet: pfx,
		Prefix: "skdy" + suffix, VethPrefix: fmt.Sprintf("vd%d-", octet)})
	if err != nil {
		t.Fatal(err)
	}
	// These cleanups are registered before newEnv's, so they run after the
	// manager has stopped every dyno (cleanups run last-registered first):
	// reap the runtime, then remove the network.
	t.Cleanup(func() {
		if err := net.Close(true); err != nil {
			t.Errorf("network close: %v", err)
		}
	})
	rt, err := runtime.New(runtime.Config{Root: filepath.Join(base, "runc"), Dir: filepath.Join(base, "containers"),
		CgroupParent: "skiff-dyno-test-" + suffix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Reap(); err != nil {
			t.Errorf("runtime reap: %v", err)
		}
	})
	runner := &ContainerRunner{Images: images, Net: net, Runtime: rt}
	e := newEnv(t, func(c *Config) {
		c.Runner = runner
		c.StopTimeout = 5 * time.Second
		c.BootTimeout = 10 * time.Second
		for _, f := range tune {
			f(runner, c)
		}
	})
	return e, refs[0].ID
}

func (e *env) deployImage(app, id string, types ...string) {
	e.t.Helper()
	var ups []platform.ImageUpdate
	for _, typ := range types {
		ups = append(ups, platform.ImageUpdate{Type: typ, Image: id})
	}
	if _, err := e.p.DeployImages(e.ctx, e.admin, app, ups); err != nil {
		e.t.Fatal(err)
	}
}

func get(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestContainersRunTheFormation(t *testing.T) {
	t.Parallel()
	e, img := newContainerEnv(t, "10.213.210.0/24")
	app, err := e.p.CreateApp(context.Background(), e.admin, platform.AppSpec{Name: "real"})
	if err != nil {
		t.Fatal(err)
	}
	e.deployImage("real", img, "web", "worker")
	e.eventually("web.1 up", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3" })
	d := e.m.Dynos(app.ID)[0]
	if got := get(t, d.Addr); got != fmt.Sprintf("hello from web.1 greeting= uid=%d", UnprivilegedUID) {
		t.Errorf("web.1 answered %q", got)
	}
	if d.Command != "/app" {
		t.Errorf("command = %q, want the image's entrypoint /app", d.Command)
	}
	e.eventually("output in the log", func() bool { return e.logs.count("app[web.1]: listening on 5000") == 1 })

	// Scale out, then a config change restarts every dyno on the new release.
	e.scale("real", "web", 2)
	e.scale("real", "worker", 1)
	e.eventually("three dynos", func() bool { return states(e.m.Dynos(app.ID)) == "web.1=up@v3 web.2=up@v3 worker.1=up@v3" })
	e.config("real", "GREETING", "hi")
	e.eventually("restarted on v4", func() bool {
		return states(e.m.Dynos(app.ID)) == "web.1=up@v4 web.2=up@v4 worker.1=up@v4"
	})
	for _, d := range e.m.Dynos(app.ID)[:2] {
		if got := get(t, d.Addr); !strings.Contains(got, "hello from "+d.Name+" greeting=hi") {
			t.Errorf("%s answered %q", d.Name, got)
		}
	}
	e.eventually("worker output", func() bool { return e.logs.count("app[worker.1]: working") > 0 })

	// A one-off dyno runs once on the current release and is then gone.
	d1, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "/app migrate", Env: map[string]string{"EXTRA": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d1.Name, "run.") || d1.Type != "run" || d1.Release != 4 {
		t.Errorf("one-off = %+v", d1)
	}
	e.eventually("one-off done and gone", func() bool {
		return e.logs.count("app["+d1.Name+"]: one-off ran: migrate x") == 1 &&
			e.logs.count("heroku["+d1.Name+"]: State changed from up to complete") == 1 &&
			len(e.m.Dynos(app.ID)) == 3
	})
	if e.logs.count("heroku["+d1.Name+"]: Process exited with status 7") != 1 {
		t.Error("no exit line for the one-off")
	}
	if _, err := e.m.RunOneOff(context.Background(), app.ID, OneOff{Command: "/app", Size: "Private-S"}); !errors.Is(err, ErrOneOff) {
		t.Errorf("one-off of a Private size: err = %v", err)
	}

	// A crashing release: immediate restart, then the cool-off.
	e.config("real", "MODE", "crash")
	e.eventually("crashed twice", func() bool {
		ds := e.m.Dynos(app.ID)
		return len(ds) == 3 && ds[0].State == StateCrashed && e.logs.count("heroku[web.1]: Process exited with status 3") == 2
	})
	e.scale("real", "web", 0)
	e.scale("real", "worker", 0)
	e.eventually("all gone", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
}

func TestCommand(t *testing.T) {
	t.Parallel()
	img := image.Config{Entrypoint: []string{"/app"}, Cmd: []string{"serve", "--port=1"}}
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"", []string{"/app", "serve", "--port=1"}},
		{"/app migrate", []string{"/app", "migrate"}},
		{"  rake   db:migrate ", []string{"rake", "db:migrate"}},
		{"bundle exec puma -p $PORT", []string{"/bin/sh", "-c", "bundle exec puma -p $PORT"}},
		{"echo 'a b'", []string{"/bin/sh", "-c", "echo 'a b'"}},
		{"a && b", []string{"/bin/sh", "-c", "a && b"}},
		{"FOO=1 app", []string{"/bin/sh", "-c", "FOO=1 app"}},
		{"exit 3" + exitStatusEcho, []string{"/bin/sh", "-c", "trap : INT; (\nexit 3\n)" + exitStatusEcho}},
	} {
		if got := command(img, tc.cmd); strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("command(%q) = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}
