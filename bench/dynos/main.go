// Command dynos benchmarks Skiff's dyno manager with real containers: the
// time from a formation change (`ps:scale web=N`) to all N web dynos `up`
// for N = 1, 10, 50 with a cached image, the time from a release to its
// first dyno `up`, and the platform's memory per running dyno.
//
// It builds (or takes) the skiff binary with CGO_ENABLED=0 (so that it can
// be the dynos' init), builds a static Go web app image, imports it into a
// fresh data directory's image store, starts `skiff server --dynos=true`
// on its own bridge and subnet, and drives everything through the Platform
// API on loopback. As a reference point measured in the same run, it runs
// the same image's root filesystem with a bare `runc run` (no Skiff: no
// overlay, no init, no veth) and times it to the same event, the app
// accepting on its port. Timings are printed, never asserted.
//
//	go run ./bench/dynos [-sizes 1,10,50] [-repeats 5,3,2] [-skiff bin/skiff]
//
// It must run as root with runc installed. See bench/README.md for what each
// figure means.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/skiffhq/skiff/bench/skiffserver"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// dynoApp is the image's program: a web app that serves $PORT (as the e2e
// tests' dyno app does). It has no SIGTERM handler: the dyno's init passes
// the signal on and the default action ends it.
const dynoApp = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`

const (
	appName  = "bench-dynos"
	dockerV3 = "application/vnd.heroku+json; version=3.docker-releases"
	// barePort is $PORT in the bare runc containers (each has its own netns).
	barePort = 5000
)

type options struct {
	skiff        string
	workdir      string
	sizes        []int
	repeats      []int
	warmReleases int
	poll         time.Duration
	pause        time.Duration
	timeout      time.Duration
	bridge       string
	subnet       string
	bare         bool
	serverLog    string
}

func main() {
	var o options
	var sizes, repeats string
	flag.StringVar(&o.skiff, "skiff", "", "skiff binary (static, CGO_ENABLED=0) to benchmark (default: build ./cmd/skiff of this module)")
	flag.StringVar(&o.workdir, "workdir", os.TempDir(), "directory under which the temporary data directory is made (ext4, xfs or tmpfs: overlay upper dirs live there)")
	flag.StringVar(&sizes, "sizes", "1,10,50", "web dyno counts to scale to, comma-separated")
	flag.StringVar(&repeats, "repeats", "5,3,2", "how many times each size is measured (one entry per size, or one for all)")
	flag.IntVar(&o.warmReleases, "warm-releases", 3, "release → first up with the image already cached: measured on this many new apps")
	flag.DurationVar(&o.poll, "poll", 5*time.Millisecond, "interval of GET /apps/{app}/dynos while waiting")
	flag.DurationVar(&o.pause, "pause", 5*time.Second, "idle time before each scale-up (the kernel frees the last run's network namespaces in the background)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on any one wait (scale up, scale down) after this long")
	flag.StringVar(&o.bridge, "bridge", "skbench0", "dyno bridge of the benchmarked server (also its netns and cgroup prefix); must not exist yet")
	flag.StringVar(&o.subnet, "subnet", "10.213.230.0/24", "dyno subnet of the benchmarked server")
	flag.BoolVar(&o.bare, "bare", true, "also measure the reference point: the same root filesystem under a bare `runc run`")
	flag.StringVar(&o.serverLog, "server-log", "", "copy the server's log (stderr, --log-level info) to this file at the end")
	flag.Parse()
	var err error
	if o.sizes, err = intList(sizes); err != nil || len(o.sizes) == 0 {
		fatalf("-sizes %q: want positive whole numbers, comma-separated", sizes)
	}
	if o.repeats, err = intList(repeats); err != nil || (len(o.repeats) != 1 && len(o.repeats) != len(o.sizes)) {
		fatalf("-repeats %q: want one positive count, or one per size", repeats)
	}
	if len(o.repeats) == 1 {
		o.repeats = slices.Repeat(o.repeats, len(o.sizes))
	}
	if o.warmReleases < 0 || o.poll <= 0 || o.timeout <= 0 || o.pause < 0 {
		fatalf("-warm-releases and -pause must be ≥ 0, -poll and -timeout > 0")
	}
	if _, err := netip.ParsePrefix(o.subnet); err != nil {
		fatalf("-subnet: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/dynos: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench/dynos: "+format+"\n", args...) }

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// row is one line of the timing table.
type row struct {
	name    string
	multi   bool            // more than one container per run: the first-up column applies
	samples []time.Duration // the measured figure, one per run
	first   []time.Duration // first dyno up, when more than one is started
	patch   []time.Duration // the API call itself
	stop    []time.Duration // scale to 0 until every container is removed
	cpu     []cpuUse        // the host's CPU while the measured figure ran
}

// memory is what was read with 0 and with n dynos up.
type memory struct {
	n                      int
	rss0, rssN             int64 // skiff server VmRSS, kB
	avail0, availN         int64 // host MemAvailable, kB
	groups                 []procGroup
	cgroupUsage, cgroupRSS int64 // all dynos' memory cgroups together, bytes (-1: unknown)
}

type report struct {
	date, load, kernel, runcVersion, dataFS string
	imageMB                                 float64
	rows                                    []*row
	mem                                     *memory
	bareRows                                []*row
	bareMem                                 *memory
	ramps                                   []string
}

func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (dynos are containers: runc, overlayfs, network namespaces)")
	}
	runcBin, err := exec.LookPath("runc")
	if err != nil {
		return fmt.Errorf("runc not found: %w", err)
	}
	if _, err := net.InterfaceByName(o.bridge); err == nil {
		return fmt.Errorf("interface %s already exists: another bench/dynos is running, or one was killed (remove it with `ip link del %s`, or start a skiff server with --dyno-bridge %s to reap it)", o.bridge, o.bridge, o.bridge)
	}
	rep := &report{date: time.Now().UTC().Format(time.RFC3339), load: load1(), kernel: kernelRelease(), runcVersion: runcVersion(runcBin)}
	tmp, err := os.MkdirTemp(o.workdir, "skiff-bench-dynos-")
	if err != nil {
		return err
	}
	rep.dataFS = fsType(tmp)
	defer func() {
		if rmErr := removeTemp(tmp); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	bin := o.skiff
	if bin == "" {
		logf("building skiff with CGO_ENABLED=0")
		if bin, err = skiffserver.Build(ctx, tmp); err != nil {
			return err
		}
	}
	dataDir := filepath.Join(tmp, "data")
	logf("building the test image (a static Go web app)")
	layout, err := skiffserver.BuildImage(tmp, dynoApp)
	if err != nil {
		return err
	}
	store, err := image.Open(filepath.Join(dataDir, "images"))
	if err != nil {
		return err
	}
	refs, err := store.ImportLayout(layout)
	if err != nil {
		return fmt.Errorf("import the test image: %w", err)
	}
	imageID := refs[0].ID
	store = nil // the server owns the store from now on ("one Store at a time")
	rep.imageMB = float64(dirSize(layout)) / (1 << 20)

	srv, err := skiffserver.Start(ctx, skiffserver.Options{Binary: bin, Dir: tmp, DataDir: dataDir,
		Args: []string{"--dynos=true", "--dyno-bridge", o.bridge, "--dyno-subnet", o.subnet,
			"--rate-limit", "100000000", "--log-level", "info", "--rendezvous-addr", "127.0.0.1:0"},
		// SIGKILL after 90 s: dynos get 30 s each to stop, in parallel.
		StartTimeout: 60 * time.Second, StopTimeout: 90 * time.Second})
	if err != nil {
		return err
	}
	logf("skiff server at %s (pid %d), dynos on bridge %s (%s)", srv.URL, srv.Pid(), o.bridge, o.subnet)
	defer func() {
		if stopErr := srv.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		if o.serverLog != "" {
			if b, rerr := os.ReadFile(srv.LogFile()); rerr == nil {
				_ = os.WriteFile(o.serverLog, b, 0o644)
			}
		}
	}()
	a := &apiClient{c: newClient(), base: srv.URL, token: srv.Token}
	b := &bench{o: o, a: a, srv: srv, dataDir: dataDir}

	if err := b.measureSkiff(ctx, rep, imageID); err != nil {
		return err
	}
	logf("stopping the skiff server (SIGTERM)")
	if err := srv.Stop(); err != nil {
		return err
	}
	if _, err := net.InterfaceByName(o.bridge); err == nil {
		return fmt.Errorf("the server exited but bridge %s is still there", o.bridge)
	}

	if o.bare && ctx.Err() == nil {
		store, err := image.Open(filepath.Join(dataDir, "images"))
		if err != nil {
			return err
		}
		img, err := store.Image(imageID)
		if err != nil {
			return err
		}
		if err := measureBare(ctx, o, rep, runcBin, tmp, img.Layers); err != nil {
			return fmt.Errorf("bare runc reference: %w", err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	printReport(o, rep)
	return nil
}

// ---- the Skiff measurements ----

type bench struct {
	o       options
	a       *apiClient
	srv     *skiffserver.Server
	dataDir string
}

func (b *bench) measureSkiff(ctx context.Context, rep *report, imageID string) error {
	// 1. Release → first up, on a layer cache that has never seen the image
	// (the first dyno start unpacks its layer).
	if err := b.a.createApp(ctx, appName); err != nil {
		return err
	}
	cold := &row{name: "release → first up (layer not yet unpacked)"}
	d, patch, err := b.releaseToUp(ctx, appName, imageID)
	if err != nil {
		return err
	}
	cold.samples, cold.patch = append(cold.samples, d), append(cold.patch, patch)
	rep.rows = append(rep.rows, cold)

	// 2. Release → first up with the image cached: each on a new app, whose
	// first release of the image starts web.1. The app is deleted after.
	warm := &row{name: "release → first up (image cached)"}
	for i := 1; i <= b.o.warmReleases; i++ {
		name := fmt.Sprintf("%s-r%d", appName, i)
		if err := b.a.createApp(ctx, name); err != nil {
			return err
		}
		d, patch, err := b.releaseToUp(ctx, name, imageID)
		if err != nil {
			return err
		}
		warm.samples, warm.patch = append(warm.samples, d), append(warm.patch, patch)
		if st, _, err := b.a.do(ctx, "DELETE", "/apps/"+name, "", nil); err != nil || st != http.StatusOK {
			return fmt.Errorf("delete app %s: status %d, %v", name, st, err)
		}
		if err := b.waitContainers(ctx, 1); err != nil { // bench-dynos' web.1 remains
			return err
		}
	}
	if b.o.warmReleases > 0 {
		rep.rows = append(rep.rows, warm)
	}

	// 3. Scale web to 0, then to each N and back to 0, several times.
	if _, err := b.scale(ctx, 0); err != nil {
		return err
	}
	if err := b.waitContainers(ctx, 0); err != nil {
		return err
	}
	largest := slices.Max(b.o.sizes)
	for i, n := range b.o.sizes {
		r := &row{name: fmt.Sprintf("scale web=0 → %d: all %d up", n, n), multi: n > 1}
		if n == 1 {
			r.name = "scale web=0 → 1: up"
		}
		for k := 0; k < b.o.repeats[i]; k++ {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			memRun := n == largest && k == b.o.repeats[i]-1 && rep.mem == nil
			sleep(ctx, b.o.pause)
			var mem *memory
			if memRun {
				mem = &memory{n: n}
				mem.rss0 = statusKB(b.srv.Pid(), "VmRSS")
				mem.avail0 = meminfoKB("MemAvailable")
			}
			logf("scale web=%d (run %d of %d)", n, k+1, b.o.repeats[i])
			cpu0 := readCPU()
			start := time.Now()
			patch, err := b.scale(ctx, n)
			if err != nil {
				return err
			}
			first, all, ups, err := b.waitUp(ctx, appName, n, start)
			if err != nil {
				return err
			}
			r.samples, r.first, r.patch = append(r.samples, all), append(r.first, first), append(r.patch, patch)
			r.cpu = append(r.cpu, readCPU().since(cpu0))
			if n == largest && k == 0 && n > 1 {
				rep.ramps = append(rep.ramps, ramp(n, ups))
			}
			if memRun {
				settle(ctx)
				mem.rssN = statusKB(b.srv.Pid(), "VmRSS")
				mem.availN = meminfoKB("MemAvailable")
				mem.groups = processGroups(b.srv.Pid(), "skiff server")
				mem.cgroupUsage, mem.cgroupRSS = cgroupMemory(b.srv.Pid(), b.o.bridge)
				rep.mem = mem
			}
			start = time.Now()
			if _, err := b.scale(ctx, 0); err != nil {
				return err
			}
			if err := b.waitContainers(ctx, 0); err != nil {
				return err
			}
			r.stop = append(r.stop, time.Since(start))
		}
		rep.rows = append(rep.rows, r)
	}
	return nil
}

// settle gives the server a second to finish what a change set off (GC,
// goroutines ending) before memory is read.
func settle(ctx context.Context) { sleep(ctx, time.Second) }

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// releaseToUp releases imageID as app's web image and waits for its first
// web dyno to be up. It returns the time from sending the PATCH to the poll
// that saw the dyno up, and the PATCH's own latency.
func (b *bench) releaseToUp(ctx context.Context, app, imageID string) (time.Duration, time.Duration, error) {
	body, _ := json.Marshal(map[string]any{"updates": []map[string]string{{"type": "web", "docker_image": imageID}}})
	logf("releasing the image on %s", app)
	start := time.Now()
	st, _, err := b.a.do(ctx, "PATCH", "/apps/"+app+"/formation", dockerV3, body)
	patch := time.Since(start)
	if err != nil || st != http.StatusOK {
		return 0, 0, fmt.Errorf("release on %s: status %d, %v", app, st, err)
	}
	first, _, _, err := b.waitUp(ctx, app, 1, start)
	return first, patch, err
}

// scale sets app's web quantity and returns the PATCH's latency.
func (b *bench) scale(ctx context.Context, n int) (time.Duration, error) {
	body := fmt.Appendf(nil, `{"updates":[{"type":"web","quantity":%d}]}`, n)
	start := time.Now()
	st, _, err := b.a.do(ctx, "PATCH", "/apps/"+appName+"/formation", "", body)
	if err != nil || st != http.StatusOK {
		return 0, fmt.Errorf("scale web=%d: status %d, %v", n, st, err)
	}
	return time.Since(start), nil
}

type dynoJSON struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Type  string `json:"type"`
}

// waitUp polls the app's dynos until n web dynos are listed and all are up.
// It returns when the first and the last were first seen up (measured from
// start to the receipt of the response that showed it), and each dyno's.
func (b *bench) waitUp(ctx context.Context, app string, n int, start time.Time) (first, all time.Duration, ups map[string]time.Duration, err error) {
	deadline := time.Now().Add(b.o.timeout)
	ups = map[string]time.Duration{}
	var last []dynoJSON
	for i := 0; time.Now().Before(deadline) && i < int(b.o.timeout/b.o.poll)+1; i++ {
		var ds []dynoJSON
		st, body, err := b.a.do(ctx, "GET", "/apps/"+app+"/dynos", "", nil)
		if err != nil || st != http.StatusOK {
			return 0, 0, nil, fmt.Errorf("GET dynos of %s: status %d, %v", app, st, err)
		}
		seen := time.Since(start)
		if err := json.Unmarshal(body, &ds); err != nil {
			return 0, 0, nil, fmt.Errorf("GET dynos of %s: %v", app, err)
		}
		last = ds
		up := 0
		for _, d := range ds {
			if d.State == "crashed" {
				return 0, 0, nil, fmt.Errorf("dyno %s of %s crashed (see the server log)", d.Name, app)
			}
			if d.State == "up" {
				up++
				if _, ok := ups[d.Name]; !ok {
					ups[d.Name] = seen
				}
			}
		}
		if up > 0 && first == 0 {
			first = seen
		}
		if up == n && len(ds) == n {
			return first, seen, ups, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, nil, ctx.Err()
		case <-time.After(b.o.poll):
		}
	}
	return 0, 0, nil, fmt.Errorf("%s: %d web dynos not all up within %s; last seen: %+v", app, n, b.o.timeout, last)
}

// waitContainers waits until the server runs exactly want containers: as
// many container directories under <data>/dynos and supervising `runc run`
// children. The API forgets a dyno as soon as it is scaled away; its
// container is stopped and removed after that.
func (b *bench) waitContainers(ctx context.Context, want int) error {
	deadline := time.Now().Add(b.o.timeout)
	dirs, runcs := -1, -1
	for i := 0; time.Now().Before(deadline) && i < int(b.o.timeout/(10*time.Millisecond))+1; i++ {
		ents, err := os.ReadDir(filepath.Join(b.dataDir, "dynos"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		dirs = len(ents)
		runcs = 0
		for _, p := range children(b.srv.Pid()) {
			if p.comm == "runc" {
				runcs++
			}
		}
		if dirs == want && runcs == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("containers not down to %d within %s: %d container dirs, %d runc processes", want, b.o.timeout, dirs, runcs)
}

// ramp says when the 1st, 10th, … dyno of a large scale-up was first seen up.
func ramp(n int, ups map[string]time.Duration) string {
	ts := make([]time.Duration, 0, len(ups))
	for _, d := range ups {
		ts = append(ts, d)
	}
	slices.Sort(ts)
	var parts []string
	done := map[int]bool{}
	for _, k := range []int{1, n / 10, n / 4, n / 2, 3 * n / 4, n} {
		if k >= 1 && k <= len(ts) && !done[k] {
			done[k] = true
			parts = append(parts, fmt.Sprintf("%s up at %s", ordinal(k), fmtMs(ts[k-1])))
		}
	}
	return fmt.Sprintf("scale web=0 → %d, first run: %s ms", n, strings.Join(parts, ", "))
}

func ordinal(k int) string {
	switch {
	case k%100 >= 11 && k%100 <= 13:
		return strconv.Itoa(k) + "th"
	case k%10 == 1:
		return strconv.Itoa(k) + "st"
	case k%10 == 2:
		return strconv.Itoa(k) + "nd"
	case k%10 == 3:
		return strconv.Itoa(k) + "rd"
	}
	return strconv.Itoa(k) + "th"
}

// ---- the test image ----

// ---- the skiff server ----

// ---- HTTP client ----

func newClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			DisableCompression:  true,
		},
	}
}

type apiClient struct {
	c     *http.Client
	base  string
	token string
}

// do sends one request and returns the status, body and latency.
func (a *apiClient) do(ctx context.Context, method, path, accept string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if accept == "" {
		accept = "application/vnd.heroku+json; version=3"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

func (a *apiClient) createApp(ctx context.Context, name string) error {
	st, b, err := a.do(ctx, "POST", "/apps", "", []byte(`{"name":"`+name+`"}`))
	if err != nil || st != http.StatusCreated {
		return fmt.Errorf("create app %s: status %d, %v %s", name, st, err, b)
	}
	return nil
}

// ---- processes and memory ----

type procInfo struct {
	pid, ppid int
	comm      string
}

func allProcs() []procInfo {
	ents, _ := os.ReadDir("/proc")
	out := make([]procInfo, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		s := string(b)
		l, r := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if l < 0 || r < l {
			continue
		}
		f := strings.Fields(s[r+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, procInfo{pid: pid, ppid: ppid, comm: s[l+1 : r]})
	}
	return out
}

func children(pid int) []procInfo {
	var out []procInfo
	for _, p := range allProcs() {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// procGroup is the processes at one depth below a root with one name.
type procGroup struct {
	depth  int
	comm   string
	count  int
	rssKB  int64
	anonKB int64
	pssKB  int64
	parent string
}

// processGroups sums VmRSS and Pss of root's descendants, grouped by depth
// and command name (e.g. depth 1 "runc", 2 ".skiff-init", 3 "app"); rootName
// names root.
func processGroups(root int, rootName string) []procGroup {
	ps := allProcs()
	kids := map[int][]procInfo{}
	for _, p := range ps {
		kids[p.ppid] = append(kids[p.ppid], p)
	}
	idx := map[[2]string]*procGroup{}
	var order []*procGroup
	type item struct {
		p      procInfo
		depth  int
		parent string
	}
	queue := []item{}
	for _, k := range kids[root] {
		queue = append(queue, item{k, 1, rootName})
	}
	for len(queue) > 0 && len(queue) < 100000 {
		it := queue[0]
		queue = queue[1:]
		key := [2]string{strconv.Itoa(it.depth), it.p.comm}
		g := idx[key]
		if g == nil {
			g = &procGroup{depth: it.depth, comm: it.p.comm, parent: it.parent}
			idx[key] = g
			order = append(order, g)
		}
		g.count++
		g.rssKB += statusKB(it.p.pid, "VmRSS")
		g.anonKB += statusKB(it.p.pid, "RssAnon")
		g.pssKB += pssKB(it.p.pid)
		for _, k := range kids[it.p.pid] {
			queue = append(queue, item{k, it.depth + 1, it.p.comm})
		}
	}
	out := make([]procGroup, 0, len(order))
	for _, g := range order {
		out = append(out, *g)
	}
	slices.SortStableFunc(out, func(a, b procGroup) int { return a.depth - b.depth })
	return out
}

// statusKB reads a "Key:   123 kB" line of /proc/pid/status.
func statusKB(pid int, key string) int64 {
	return fieldKB("/proc/"+strconv.Itoa(pid)+"/status", key)
}

// pssKB is the process's proportional set size: shared pages (the runc
// binary, the init binary) divided among the processes mapping them.
func pssKB(pid int) int64 {
	return fieldKB("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss")
}

func meminfoKB(key string) int64 { return fieldKB("/proc/meminfo", key) }

func fieldKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	return 0
}

// cgroupMemory reads the memory cgroup that holds all of the server's
// dynos (<server's memory cgroup>/<bridge>): usage (RSS, page cache, kernel
// memory) and RSS alone, in bytes; -1 when it cannot be read.
func cgroupMemory(pid int, bridge string) (usage, rss int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case slices.Contains(strings.Split(parts[1], ","), "memory"): // v1
			dir := filepath.Join("/sys/fs/cgroup/memory", parts[2], bridge)
			usage = readInt(filepath.Join(dir, "memory.usage_in_bytes"))
			rss = fieldInt(filepath.Join(dir, "memory.stat"), "total_rss")
			if usage >= 0 {
				return usage, rss
			}
		case parts[0] == "0" && parts[1] == "": // v2
			for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				dir := filepath.Join(root, parts[2], bridge)
				if u := readInt(filepath.Join(dir, "memory.current")); u >= 0 {
					return u, fieldInt(filepath.Join(dir, "memory.stat"), "anon")
				}
			}
		}
	}
	return -1, -1
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func fieldInt(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// ---- the reference point: bare runc ----

// bareEnv runs containers with `runc run` straight from the image's
// unpacked layer (read-only root, no overlay), without Skiff: no init, no
// veth or bridge (runc gives each a new network namespace with only lo),
// no seccomp profile; the same namespaces, capabilities (none), user and
// Standard-1X limits as a dyno.
type bareEnv struct {
	runc, dir, state, rootfs string
}

type bareCtr struct {
	id, bundle string
	cmd        *exec.Cmd
	done       chan struct{}
}

func measureBare(ctx context.Context, o options, rep *report, runcBin, tmp string, layers []string) (err error) {
	if len(layers) != 1 {
		return fmt.Errorf("the test image has %d layers, want 1", len(layers))
	}
	env := &bareEnv{runc: runcBin, dir: filepath.Join(tmp, "bare"), state: filepath.Join(tmp, "bare", "state"), rootfs: layers[0]}
	if err := os.MkdirAll(env.state, 0o700); err != nil {
		return err
	}
	defer func() {
		if cerr := env.reap(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	seq := 0
	largest := slices.Max(o.sizes)
	for i, n := range o.sizes {
		r := &row{name: fmt.Sprintf("bare runc: %d started together: all accept", n), multi: n > 1}
		if n == 1 {
			r.name = "bare runc: 1 container: accepts"
		}
		for k := 0; k < o.repeats[i]; k++ {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			memRun := n == largest && k == o.repeats[i]-1
			sleep(ctx, o.pause)
			var mem *memory
			if memRun {
				mem = &memory{n: n, cgroupUsage: -1, cgroupRSS: -1}
				mem.avail0 = meminfoKB("MemAvailable")
			}
			logf("bare runc: %d container(s) (run %d of %d)", n, k+1, o.repeats[i])
			ctrs := make([]*bareCtr, n)
			times := make([]time.Duration, n)
			errs := make([]error, n)
			cpu0 := readCPU()
			start := time.Now()
			var wg sync.WaitGroup
			for j := range n {
				seq++
				id := fmt.Sprintf("skbench-bare-%d", seq)
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := env.start(id)
					if err != nil {
						errs[j] = err
						return
					}
					ctrs[j] = c
					errs[j] = c.waitAccept(ctx, o.timeout, o.poll)
					times[j] = time.Since(start)
				}()
			}
			wg.Wait()
			cpu := readCPU().since(cpu0)
			if memRun {
				settle(ctx)
				mem.availN = meminfoKB("MemAvailable")
				mem.groups = processGroups(os.Getpid(), "bench/dynos")
				rep.bareMem = mem
			}
			stopStart := time.Now()
			for _, c := range ctrs {
				if c != nil {
					c.kill(env)
				}
			}
			for _, c := range ctrs {
				if c != nil {
					if err := c.remove(env); err != nil && errors.Join(errs...) == nil {
						errs[0] = err
					}
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			slices.Sort(times)
			r.samples, r.first = append(r.samples, times[n-1]), append(r.first, times[0])
			r.cpu = append(r.cpu, cpu)
			r.stop = append(r.stop, time.Since(stopStart))
		}
		rep.bareRows = append(rep.bareRows, r)
	}
	return nil
}

func (e *bareEnv) spec(id string) *specs.Spec {
	mem, pids, shares := int64(1024<<20), int64(256), uint64(1024)
	return &specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: e.rootfs, Readonly: true},
		Process: &specs.Process{
			User: specs.User{UID: imagetest.AppUID, GID: imagetest.AppGID},
			Args: []string{"/app"},
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "PORT=" + strconv.Itoa(barePort), "DYNO=web.1"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Inheritable: []string{},
				Permitted: []string{}, Ambient: []string{}},
			NoNewPrivileges: true,
		},
		Hostname: id,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem},
				Pids:    &specs.LinuxPids{Limit: &pids},
				CPU:     &specs.LinuxCPU{Shares: &shares},
			},
			// Relative: under this program's own cgroup; runc delete removes it.
			CgroupsPath: "skbench-bare/" + id,
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func (e *bareEnv) start(id string) (*bareCtr, error) {
	bundle := filepath.Join(e.dir, id)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e.spec(id))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return nil, err
	}
	c := &bareCtr{id: id, bundle: bundle, done: make(chan struct{})}
	c.cmd = exec.Command(e.runc, "--root", e.state, "run", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "pid"), id)
	c.cmd.Dir = bundle
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	c.cmd.Stdout, c.cmd.Stderr = &out, &out
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// waitAccept waits for the container's pid file, then until a TCP
// connection to its port, from inside its network namespace, succeeds.
func (c *bareCtr) waitAccept(ctx context.Context, timeout, poll time.Duration) error {
	deadline := time.Now().Add(timeout)
	pid := 0
	for i := 0; time.Now().Before(deadline) && i < int(timeout/time.Millisecond)+1; i++ {
		if pid == 0 {
			if b, err := os.ReadFile(filepath.Join(c.bundle, "pid")); err == nil {
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		wait := time.Millisecond
		if pid > 0 {
			if dialIn(pid, "127.0.0.1:"+strconv.Itoa(barePort)) == nil {
				return nil
			}
			wait = poll
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return fmt.Errorf("bare container %s exited before accepting (runc: %v)", c.id, c.cmd.ProcessState)
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("bare container %s did not accept within %s", c.id, timeout)
}

// dialIn connects to addr from inside the network namespace of pid, on an
// OS thread of its own that goes back to ours (or is discarded).
func dialIn(pid int, addr string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked unless restored: the thread then dies with the goroutine
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(self)
		target, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func (c *bareCtr) kill(e *bareEnv) {
	_ = exec.Command(e.runc, "--root", e.state, "kill", c.id, "KILL").Run()
}

func (c *bareCtr) remove(e *bareEnv) error {
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
	if out, err := exec.Command(e.runc, "--root", e.state, "delete", "--force", c.id).CombinedOutput(); err != nil {
		if _, serr := os.Stat(filepath.Join(e.state, c.id)); serr == nil {
			return fmt.Errorf("runc delete %s: %v: %s", c.id, err, out)
		}
	}
	return os.RemoveAll(c.bundle)
}

// reap deletes whatever bare container is left (after an error) and the
// cgroup parent the containers were made under.
func (e *bareEnv) reap() error {
	var errs []error
	if out, err := exec.Command(e.runc, "--root", e.state, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command(e.runc, "--root", e.state, "delete", "--force", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", id, err, b))
			}
		}
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			var dirs []string
			if parts[1] == "" {
				dirs = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}
			} else {
				for _, c := range strings.Split(parts[1], ",") {
					dirs = append(dirs, filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(c, "name=")))
				}
			}
			for _, d := range dirs {
				p := filepath.Join(d, parts[2], "skbench-bare")
				if err := syscall.Rmdir(p); err != nil && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, fmt.Errorf("rmdir %s: %w", p, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// ---- output ----

func printReport(o options, rep *report) {
	fmt.Printf("skiff bench/dynos  %s  %d CPUs  %s %s/%s  kernel %s  %s  data dir on %s\n",
		rep.date, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, rep.kernel, rep.runcVersion, rep.dataFS)
	fmt.Printf("load average %s at start; image: static Go net/http app, %.1f MB as an OCI layout; GET /apps/{app}/dynos polled every %s\n",
		rep.load, rep.imageMB, o.poll)
	fmt.Printf("times in ms from sending the PATCH (bare runc: from exec of `runc run`) to the poll that saw it; p50 is nearest-rank\n\n")
	rows := append(slices.Clone(rep.rows), rep.bareRows...)
	w := 0
	for _, r := range rows {
		w = max(w, len(r.name))
	}
	fmt.Printf("%-*s %4s %8s %8s %10s %9s %9s %9s  %s\n", w, "scenario", "runs", "p50", "max", "1st up p50", "PATCH p50", "stop p50", "CPU (sys)", "all runs")
	for _, r := range rows {
		first, stop, patch := "-", "-", "-"
		if r.multi {
			first = fmtMs(p50(r.first))
		}
		if len(r.stop) > 0 {
			stop = fmtMs(p50(r.stop))
		}
		if len(r.patch) > 0 {
			patch = fmtMs(p50(r.patch))
		}
		var all []string
		for _, s := range r.samples {
			all = append(all, fmtMs(s))
		}
		cpu := "-"
		if len(r.cpu) > 0 {
			var busy, sys float64
			for _, c := range r.cpu {
				busy, sys = busy+c.busy, sys+c.sys
			}
			cpu = fmt.Sprintf("%.0f%% (%.0f)", 100*busy/float64(len(r.cpu)), 100*sys/float64(len(r.cpu)))
		}
		fmt.Printf("%-*s %4d %8s %8s %10s %9s %9s %9s  %s\n", w, r.name, len(r.samples), fmtMs(p50(r.samples)), fmtMs(slices.Max(r.samples)),
			first, patch, stop, cpu, strings.Join(all, " "))
	}
	for _, s := range rep.ramps {
		fmt.Printf("\n%s\n", s)
	}
	if m := rep.mem; m != nil {
		fmt.Printf("\nmemory with %d web dynos up (Skiff); per dyno = with %d minus with 0, divided by %d\n", m.n, m.n, m.n)
		perKB := func(kb int64) string { return fmt.Sprintf("%.2f MiB", float64(kb)/1024/float64(m.n)) }
		fmt.Printf("  skiff server VmRSS: %.1f MiB with 0 dynos, %.1f MiB with %d → %s per dyno (the platform process)\n",
			float64(m.rss0)/1024, float64(m.rssN)/1024, m.n, perKB(m.rssN-m.rss0))
		printGroups(m)
		if m.cgroupUsage >= 0 {
			fmt.Printf("  the dynos' memory cgroups (<cgroup>/%s): usage %s per dyno, of which RSS %s (app and init; page cache included in usage)\n",
				o.bridge, perKB(m.cgroupUsage/1024), perKB(m.cgroupRSS/1024))
		}
		fmt.Printf("  host MemAvailable dropped by %s per dyno (everything, kernel included; rough: the kernel frees earlier runs' namespaces meanwhile)\n",
			perKB(m.avail0-m.availN))
	}
	if m := rep.bareMem; m != nil {
		perKB := func(kb int64) string { return fmt.Sprintf("%.2f MiB", float64(kb)/1024/float64(m.n)) }
		fmt.Printf("\nmemory with %d bare runc containers up (reference)\n", m.n)
		printGroups(m)
		fmt.Printf("  host MemAvailable dropped by %s per container (rough)\n", perKB(m.avail0-m.availN))
	}
}

func printGroups(m *memory) {
	for _, g := range m.groups {
		per := func(kb int64) float64 { return float64(kb) / 1024 / float64(g.count) }
		fmt.Printf("  %-13q ×%-3d (depth %d, parent %s): RSS %5.2f, PSS %5.2f, RssAnon %5.2f MiB per process\n",
			g.comm, g.count, g.depth, g.parent, per(g.rssKB), per(g.pssKB), per(g.anonKB))
	}
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)+1)/2-1]
}

func fmtMs(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	if v < 1000 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// ---- machine ----

// cpuTimes are the host's CPU counters (/proc/stat "cpu" line), in ticks.
type cpuTimes struct{ busy, sys, total int64 }

// cpuUse is the host's CPU over an interval: the share of all cores busy,
// and the share of all cores in the kernel (system, irq, softirq).
type cpuUse struct{ busy, sys float64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var v [10]int64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseInt(f[i], 10, 64)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user.
	var c cpuTimes
	for i := 0; i < 8; i++ {
		c.total += v[i]
	}
	c.busy = c.total - v[3] - v[4]
	c.sys = v[2] + v[5] + v[6]
	return c
}

func (c cpuTimes) since(old cpuTimes) cpuUse {
	t := c.total - old.total
	if t <= 0 {
		return cpuUse{}
	}
	return cpuUse{busy: float64(c.busy-old.busy) / float64(t), sys: float64(c.sys-old.sys) / float64(t)}
}

func load1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "n/a"
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func runcVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "runc ?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("fs 0x%x", st.Type)
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// removeTemp removes the temporary directory, but never through a mount:
// if the server was killed, overlay mounts of its dynos may remain there.
func removeTemp(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return fmt.Errorf("not removing %s: %s is mounted (a skiff server on that data dir reaps it)", dir, f[4])
		}
	}
	return os.RemoveAll(dir)
}
