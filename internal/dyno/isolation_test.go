package dyno

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image/imagetest"
	"github.com/skiffhq/skiff/internal/platform"
)

// misbehavingApp is one image for every isolation case; MODE picks what it
// does. Everything it finds out goes to stdout, i.e. into the app's log.
const misbehavingApp = `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	switch os.Getenv("MODE") {
	case "oom":
		oom()
	case "forkbomb":
		forkbomb()
	case "probe":
		probe()
	case "fs":
		filesystem()
	case "ignoreterm":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		for {
			time.Sleep(50 * time.Millisecond)
			fmt.Println("still here")
		}
	case "nobind":
		fmt.Println("not binding $PORT")
	}
	for {
		time.Sleep(time.Hour)
	}
}

var hold [][]byte

// oom allocates and touches memory steadily, never freeing any.
func oom() {
	for mb := 8; ; mb += 8 {
		b := make([]byte, 8<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
		fmt.Printf("allocated %d MB\n", mb)
		time.Sleep(5 * time.Millisecond)
	}
}

// forkbomb forks (raw clone: the children only sleep, with no Go runtime
// threads of their own) until the kernel refuses, kills and reaps the
// children, reports, and exits.
func forkbomb() {
	runtime.GOMAXPROCS(1)
	time.Sleep(50 * time.Millisecond) // let the runtime's threads settle
	var pids []int
	var ferr error
	for len(pids) < 1000 { // a bound in case the limit were missing
		pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			ferr = errno
			break
		}
		if pid == 0 {
			for {
				syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
			}
		}
		pids = append(pids, int(pid))
	}
	for _, pid := range pids {
		syscall.RawSyscall(syscall.SYS_KILL, uintptr(pid), uintptr(syscall.SIGKILL), 0)
	}
	for _, pid := range pids {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	fmt.Printf("forked %d (%v)\n", len(pids), ferr)
	os.Exit(0)
}

// probe serves $PORT and tries to reach each address in PROBES
// (name=host:port,...) and its own, reporting which it reached.
func probe() {
	port := os.Getenv("PORT")
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "prober %s", os.Getenv("DYNO"))
	}))
	targets := strings.Split(os.Getenv("PROBES"), ",")
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			targets = append(targets, "self="+net.JoinHostPort(n.IP.String(), port))
			break
		}
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		name, addr, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 1500*time.Millisecond)
			if err != nil {
				fmt.Printf("probe %s %s: blocked (%v)\n", name, addr, err)
				return
			}
			c.Close()
			fmt.Printf("probe %s %s: reached\n", name, addr)
		}()
	}
	wg.Wait()
	fmt.Println("probes done")
	for {
		time.Sleep(time.Hour)
	}
}

// filesystem tries to write outside its filesystem and to escape it, then
// checks that what it wrote in its own is gone after a restart.
func filesystem() {
	try := func(what string, err error) {
		if err != nil {
			fmt.Printf("escape %s: denied (%v)\n", what, err)
		} else {
			fmt.Printf("escape %s: ALLOWED\n", what)
		}
	}
	write := func(path string) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write([]byte("pwned\n"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	try("proc-sys", write("/proc/sys/kernel/hostname"))
	try("proc-sys-net", write("/proc/sys/net/ipv4/ip_forward"))
	try("sysfs", write("/sys/class/net/eth0/mtu"))
	try("cgroupfs", os.Mkdir("/sys/fs/cgroup/memory/escape", 0o755))
	try("root-dir", write("/escape"))
	try("image-file", write("/etc/passwd"))
	try("mount", syscall.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))
	try("chroot", syscall.Chroot("/tmp"))
	try("sethostname", syscall.Sethostname([]byte("pwned")))
	try("mknod", syscall.Mknod("/tmp/sda", syscall.S_IFBLK|0o600, 8<<8))
	// ".." and symlinks resolve inside the container's root.
	os.Symlink("/../../../../../..", "/tmp/up")
	for _, p := range []string{"/../../../../../../etc/passwd", "/tmp/../../../../etc/passwd", "/tmp/up/etc/passwd"} {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "app:x:10000:10000:app:/tmp:/sbin/nologin") {
			fmt.Printf("dotdot %s: the image's\n", p)
		} else {
			fmt.Printf("dotdot %s: ESCAPED (%v)\n", p, err)
		}
	}
	if _, err := os.Stat("/tmp/ephemeral"); err == nil {
		fmt.Println("marker: present")
	} else {
		fmt.Println("marker: absent")
	}
	if err := write("/tmp/ephemeral"); err != nil {
		fmt.Println("marker:", err)
	} else {
		fmt.Println("marker: written")
	}
	fmt.Println("fs done")
}
`

// isoEnv is a container env with the misbehaving app's image imported and
// the dyno init (as skiff server runs dynos) in place.
type isoEnv struct {
	*env
	cr  *ContainerRunner
	img string // misbehavingApp's image
	web string // webApp's image
}

// isoShared is what the isolation cases share: the app's image layout and
// the init binary, built once.
type isoShared struct {
	layout, init string
}

func newIsoEnv(t *testing.T, sh isoShared, subnet string, tune func(*ContainerRunner, *Config)) *isoEnv {
	t.Helper()
	var cr *ContainerRunner
	e, web := newContainerEnv(t, subnet, func(r *ContainerRunner, c *Config) {
		cr = r
		r.Init = sh.init
		if tune != nil {
			tune(r, c)
		}
	})
	return &isoEnv{env: e, cr: cr, img: imagetest.Import(t, cr.Images, sh.layout).ID, web: web}
}

// app creates an app with the given config vars and one dyno of typ
// running img.
func (e *isoEnv) app(name, typ, img string, config ...string) *platform.App {
	e.t.Helper()
	app, err := e.p.CreateApp(e.ctx, e.admin, platform.AppSpec{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(config); i += 2 {
		e.config(name, config[i], config[i+1])
	}
	e.deployImage(name, img, typ)
	if typ != "web" {
		e.scale(name, typ, 1)
	}
	return app
}

// matching returns the log lines containing sub, in order.
func (l *logLines) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

// index is the position of the first log line containing sub at or after
// from, or -1.
func (l *logLines) index(sub string, from int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := max(from, 0); i < len(l.lines); i++ {
		if strings.Contains(l.lines[i], sub) {
			return i
		}
	}
	return -1
}

func (e *isoEnv) dyno(appID, name string) (Info, bool) {
	for _, d := range e.m.Dynos(appID) {
		if d.Name == name {
			return d, true
		}
	}
	return Info{}, false
}

func (e *isoEnv) state(appID, name string) string {
	d, _ := e.dyno(appID, name)
	return d.State
}

// TestContainerIsolation runs misbehaving apps in real containers through
// the dyno manager: each case has its own network, runtime and manager.
func TestContainerIsolation(t *testing.T) {
	t.Parallel()
	sh := isoShared{layout: imagetest.BuildGo(t, misbehavingApp), init: filepath.Join(t.TempDir(), "init")}
	cmd := exec.Command("go", "build", "-o", sh.init, "../runtime/testdata/init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the dyno init: %v\n%s", err, out)
	}

	// Past its memory limit the dyno is OOM-killed: R15, status 137, an
	// immediate restart, then the cool-off.
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		e := newIsoEnv(t, sh, "10.213.211.0/24", func(r *ContainerRunner, c *Config) {
			r.MemoryLimit = func(platform.Size) int64 { return 64 << 20 }
		})
		app := e.app("hungry", "worker", e.img, "MODE", "oom")
		e.eventually("OOM-killed twice, then cooling off", func() bool {
			return e.logs.count("heroku[worker.1]: Error R15 (Memory quota vastly exceeded)") == 2 &&
				e.logs.count("heroku[worker.1]: Process exited with status 137") == 2 &&
				e.state(app.ID, "worker.1") == StateCrashed
		})
		if n := e.logs.count("heroku[worker.1]: Starting process with command `/app`"); n != 2 {
			t.Errorf("started %d times, want 2 (the first restart is immediate)", n)
		}
		if r15, exit := e.logs.index("Error R15", 0), e.logs.index("Process exited with status 137", 0); r15 < 0 || r15 > exit {
			t.Errorf("R15 at line %d, exit at %d: R15 comes with the exit", r15, exit)
		}
		allocated := e.logs.matching("app[worker.1]: allocated ")
		if len(allocated) == 0 {
			t.Fatal("the app never reported an allocation")
		}
		re := regexp.MustCompile(`allocated (\d+) MB$`)
		for _, l := range allocated {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("unexpected line %q", l)
				continue
			}
			if mb, _ := strconv.Atoi(m[1]); mb > 64 {
				t.Errorf("%q: the dyno got more than its 64 MB limit", l)
			}
		}
		e.scale("hungry", "worker", 0)
		e.eventually("gone", func() bool { return len(e.m.Dynos(app.ID)) == 0 })
	})

	// A fork bomb stops at the process+thread cap; the host is unaffected.
	t.Run("forkbomb", func(t *testing.T) {
		t.Parallel()
		const limit = 64
		e := newIsoEnv(t, sh, "10.213.212.0/24", func(r *ContainerRunner, c *Config) {
			r.PidsLimit = func(platform.Size) int64 { return limit }
		})
		app := e.app("bomber", "worker", e.img, "MODE", "forkbomb")
		e.eventually("bounded twice, then cooling off", func() bool {
			return len(e.logs.matching("app[worker.1]: forked ")) == 2 && e.state(app.ID, "worker.1") == StateCrashed
		})
		re := regexp.MustCompile(`forked (\d+) \((.*)\)$`)
		for _, l := range e.logs.matching("app[worker.1]: forked ") {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("unexpected line %q", l)
				continue
			}
			if n, _ := strconv.Atoi(m[1]); n < limit/4 || n >= limit {
				t.Errorf("%q: want between %d and %d processes", l, limit/4, limit-1)
			}
			if m[2] != "resource temporarily unavailable" {
				t.Errorf("%q: fork should have failed with EAGAIN", l)
			}
		}
		if e.logs.count("heroku[worker.1]: Process exited with status 0") != 2 {
			t.Error("the app did not exit normally after the fork bomb")
		}
		if out, err := exec.Command("true").CombinedOutput(); err != nil {
			t.Errorf("the host cannot start a process: %v %s", err, out)
		}
	})

	// A dyno reaches neither another dyno nor the host; the host (the
	// router) reaches both.
	t.Run("network", func(t *testing.T) {
		t.Parallel()
		e := newIsoEnv(t, sh, "10.213.213.0/24", nil)
		b := e.app("target", "web", e.web)
		e.eventually("target up", func() bool { return e.state(b.ID, "web.1") == StateUp })
		bInfo, _ := e.dyno(b.ID, "web.1")

		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var accepted atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		probes := []string{"dyno=" + bInfo.Addr, "gateway=" + netip.AddrPortFrom(e.cr.Net.Gateway(), uint16(port)).String()}
		if ip, ok := hostIPv4(); ok {
			probes = append(probes, "hostip="+netip.AddrPortFrom(ip, uint16(port)).String())
		}
		a := e.app("prober", "web", e.img, "MODE", "probe", "PROBES", strings.Join(probes, ","))
		e.eventually("probes done", func() bool { return e.logs.count("app[web.1]: probes done") == 1 })
		for _, p := range probes {
			name, addr, _ := strings.Cut(p, "=")
			if e.logs.count(fmt.Sprintf("app[web.1]: probe %s %s: blocked", name, addr)) != 1 {
				t.Errorf("the prober was not blocked from %s %s: %q", name, addr, e.logs.matching("probe "+name))
			}
		}
		if got := e.logs.matching("app[web.1]: probe self "); len(got) != 1 || !strings.HasSuffix(got[0], ": reached") {
			t.Errorf("the prober could not reach itself (the probe is broken): %q", got)
		}
		if n := accepted.Load(); n != 0 {
			t.Errorf("the host listener accepted %d connections from the dyno", n)
		}
		aInfo, _ := e.dyno(a.ID, "web.1")
		if got := get(t, aInfo.Addr); got != "prober web.1" {
			t.Errorf("prober answered %q", got)
		}
		if got := get(t, bInfo.Addr); !strings.HasPrefix(got, "hello from web.1") {
			t.Errorf("target answered %q", got)
		}
	})

	// Writes outside the dyno's filesystem and escapes fail; what it
	// writes in its own is gone after a restart.
	t.Run("filesystem", func(t *testing.T) {
		t.Parallel()
		e := newIsoEnv(t, sh, "10.213.214.0/24", nil)
		hostname, _ := os.ReadFile("/proc/sys/kernel/hostname")
		app := e.app("escaper", "worker", e.img, "MODE", "fs")
		e.eventually("first run done", func() bool { return e.logs.count("app[worker.1]: fs done") == 1 })
		if _, err := e.m.Restart(app.ID, "", ""); err != nil {
			t.Fatal(err)
		}
		e.eventually("second run done", func() bool { return e.logs.count("app[worker.1]: fs done") == 2 })

		escapes := e.logs.matching("app[worker.1]: escape ")
		if len(escapes) != 2*10 {
			t.Errorf("%d escape lines, want 20: %q", len(escapes), escapes)
		}
		for _, l := range escapes {
			if !strings.Contains(l, ": denied (") {
				t.Errorf("%s", l)
			}
		}
		if dotdot := e.logs.matching("app[worker.1]: dotdot "); len(dotdot) != 2*3 || e.logs.count(": the image's") != 2*3 {
			t.Errorf("escapes through .. or a symlink: %q", dotdot)
		}
		if got := e.logs.matching("app[worker.1]: marker: "); strings.Join(got, "|") != strings.Join([]string{
			"app[worker.1]: marker: absent", "app[worker.1]: marker: written",
			"app[worker.1]: marker: absent", "app[worker.1]: marker: written"}, "|") {
			t.Errorf("the filesystem is not ephemeral: %q", got)
		}
		if e.logs.count("heroku[worker.1]: Restarting") != 1 || e.logs.count("heroku[worker.1]: Process exited with status 143") != 1 {
			t.Error("the restart did not stop the dyno with SIGTERM")
		}
		if now, _ := os.ReadFile("/proc/sys/kernel/hostname"); string(now) != string(hostname) {
			t.Errorf("the host's hostname changed: %q -> %q", hostname, now)
		}
		img, err := e.cr.Images.Image(e.img)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range img.Layers {
			for _, f := range []string{"tmp/ephemeral", "tmp/up", "escape"} {
				if _, err := os.Lstat(filepath.Join(l, f)); err == nil {
					t.Errorf("the dyno wrote %s into the image layer %s", f, l)
				}
			}
		}
	})

	// A process that ignores SIGTERM is killed after the grace period
	// (R12); one that doesn't exits with 143 at once.
	t.Run("sigterm", func(t *testing.T) {
		t.Parallel()
		e := newIsoEnv(t, sh, "10.213.215.0/24", func(r *ContainerRunner, c *Config) { c.StopTimeout = 300 * time.Millisecond })
		e.app("stubborn", "worker", e.img, "MODE", "ignoreterm")
		polite := e.app("polite", "web", e.web)
		e.eventually("both running", func() bool {
			return e.logs.count("app[worker.1]: still here") > 0 && e.state(polite.ID, "web.1") == StateUp
		})
		e.scale("stubborn", "worker", 0)
		e.scale("polite", "web", 0)
		// (Scaled-down dynos leave the list at once; their stop goes on.)
		e.eventually("both stopped", func() bool {
			return e.logs.count("heroku[worker.1]: Process exited") == 1 && e.logs.count("heroku[web.1]: Process exited") == 1
		})

		term := e.logs.index("heroku[worker.1]: Stopping all processes with SIGTERM", 0)
		r12 := e.logs.index("heroku[worker.1]: Error R12 (Exit timeout) -> Process failed to exit within 300ms of SIGTERM", term)
		kill := e.logs.index("heroku[worker.1]: Stopping all processes with SIGKILL", r12)
		exit := e.logs.index("heroku[worker.1]: Process exited with status 137", kill)
		if term < 0 || r12 < 0 || kill < 0 || exit < 0 {
			t.Errorf("SIGTERM at line %d, R12 at %d, SIGKILL at %d, status 137 at %d", term, r12, kill, exit)
		}
		if alive := e.logs.index("app[worker.1]: still here", term); alive < 0 || alive > kill {
			t.Errorf("no sign of life between SIGTERM (line %d) and SIGKILL (line %d)", term, kill)
		}
		if e.logs.count("heroku[web.1]: Process exited with status 143") != 1 || e.logs.count("heroku[web.1]: Error R12") != 0 {
			t.Errorf("the polite dyno did not exit on SIGTERM: %q", e.logs.matching("heroku[web.1]"))
		}
	})

	// A web process that never binds $PORT: R10, SIGKILL, crashed.
	t.Run("boot-timeout", func(t *testing.T) {
		t.Parallel()
		e := newIsoEnv(t, sh, "10.213.216.0/24", func(r *ContainerRunner, c *Config) { c.BootTimeout = 500 * time.Millisecond })
		app := e.app("sleepy", "web", e.img, "MODE", "nobind")
		e.eventually("R10 twice, then cooling off", func() bool {
			return e.logs.count("heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 500ms of launch") == 2 &&
				e.logs.count("heroku[web.1]: Process exited with status 137") == 2 && e.state(app.ID, "web.1") == StateCrashed
		})
		if e.logs.count("heroku[web.1]: Stopping process with SIGKILL") != 2 || e.logs.count("app[web.1]: not binding $PORT") != 2 {
			t.Errorf("log: %q", e.logs.matching("[web.1]"))
		}
	})
}

// hostIPv4 is an IPv4 address of the host outside the dyno networks (its
// LAN address, say), if it has one.
func hostIPv4() (netip.Addr, bool) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP.To4())
			if ok && !netip.MustParsePrefix("10.213.0.0/16").Contains(ip) {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}
