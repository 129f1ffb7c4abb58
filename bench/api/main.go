// Command api benchmarks Skiff's Platform API: requests/s and latency of
// GET /apps/{app}, PATCH /apps/{app}/config-vars (each one a new release)
// and paginated GET /apps/{app}/releases on an app with 10 000 releases.
//
// It builds (or takes) the skiff binary, starts `skiff server` on a fresh
// data directory and a loopback port, seeds one app through the API, runs
// each scenario for -duration with -concurrency keep-alive workers, and
// prints a table. As a reference point measured in the same run, the
// "floor" is a trivial net/http handler (a fixed 1 KB JSON body, in its own
// process) driven by the same client: what the HTTP stack alone does on
// this machine. Timings are printed, never asserted.
//
//	go run ./bench/api [-duration 10s] [-concurrency 16] [-releases 10000] [-skiff bin/skiff] [-json]
//
// See bench/README.md for what each figure means.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/skiffhq/skiff/bench/skiffserver"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const appName = "bench-api"

// maxSamples bounds the latencies kept per scenario (memory); requests past
// it are still counted, and percentiles come from the first maxSamples.
const maxSamples = 4_000_000

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	releases    int
	skiff       string
	workdir     string
	jsonOut     bool
	seedTimeout time.Duration
}

func main() {
	var o options
	floor := flag.Bool("floor-server", false, "internal: serve the floor handler on a loopback port and print its URL")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario runs (after its warm-up)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each scenario")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent client workers (and keep-alive connections)")
	flag.IntVar(&o.releases, "releases", 10000, "releases the benchmarked app has before the read scenarios")
	flag.StringVar(&o.skiff, "skiff", "", "skiff binary to benchmark (default: build ./cmd/skiff of this module)")
	flag.StringVar(&o.workdir, "workdir", os.TempDir(), "directory under which the temporary data directory is made")
	flag.BoolVar(&o.jsonOut, "json", false, "print results as JSON lines instead of a table")
	flag.DurationVar(&o.seedTimeout, "seed-timeout", 10*time.Minute, "give up if seeding the releases takes longer")
	flag.Parse()
	if *floor {
		if err := serveFloor(); err != nil {
			fmt.Fprintln(os.Stderr, "floor server:", err)
			os.Exit(1)
		}
		return
	}
	if o.concurrency < 1 || o.releases < 3 || o.duration <= 0 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench/api: -concurrency must be ≥ 1, -releases ≥ 3, -duration > 0, -warmup ≥ 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench/api: "+format+"\n", args...) }

// result is one scenario's figures.
type result struct {
	Kind        string  `json:"kind"` // "scenario"
	Scenario    string  `json:"scenario"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	VsFloor     float64 `json:"vs_floor,omitempty"` // rps / floor rps
	Concurrency int     `json:"concurrency"`
	Note        string  `json:"note,omitempty"`
	firstErr    error
}

// runInfo describes the run: machine, toolchain, settings.
type runInfo struct {
	Kind        string  `json:"kind"` // "run"
	Date        string  `json:"date"`
	CPUs        int     `json:"cpus"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	GoVersion   string  `json:"go_version"`
	OSArch      string  `json:"os_arch"`
	DataFS      string  `json:"data_fs"`
	Load1       string  `json:"load1"` // 1-minute load average at the start: other work skews the figures
	Concurrency int     `json:"concurrency"`
	Duration    float64 `json:"duration_s"`
	Releases    int     `json:"releases"`
}

func run(ctx context.Context, o options) (err error) {
	load := load1()
	tmp, err := os.MkdirTemp(o.workdir, "skiff-bench-api-")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.RemoveAll(tmp); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	bin := o.skiff
	if bin == "" {
		logf("building skiff")
		if bin, err = skiffserver.Build(ctx, tmp); err != nil {
			return err
		}
	}
	info := runInfo{Kind: "run", Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH,
		DataFS: fsType(tmp), Load1: load, Concurrency: o.concurrency, Duration: o.duration.Seconds(), Releases: o.releases}

	client := newClient(o.concurrency)
	defer client.CloseIdleConnections()
	var results []*result

	// The floor: the same client against a trivial handler in its own process.
	floorRes, err := runFloor(ctx, o, client, tmp)
	if err != nil {
		return err
	}
	results = append(results, floorRes)
	client.CloseIdleConnections()

	srv, err := skiffserver.Start(ctx, skiffserver.Options{Binary: bin, Dir: tmp, DataDir: filepath.Join(tmp, "data"),
		Args:         []string{"--dynos=false", "--rate-limit", "100000000", "--log-level", "warn"},
		StartTimeout: 30 * time.Second, StopTimeout: 15 * time.Second})
	if err != nil {
		return err
	}
	logf("skiff server at %s (pid %d)", srv.URL, srv.Pid())
	defer func() {
		if stopErr := srv.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	a := &apiClient{c: client, base: srv.URL, token: srv.Token}

	if st, _, err := a.do(ctx, "POST", "/apps", nil, []byte(`{"name":"`+appName+`"}`)); err != nil || st != http.StatusCreated {
		return fmt.Errorf("create app: status %d, %v", st, err)
	}
	seed, err := seedReleases(ctx, o, a)
	if err != nil {
		return err
	}
	results = append(results, seed)

	for _, sc := range scenarios(a, o.releases, o.concurrency) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("running %s for %s (+%s warm-up)", sc.name, o.duration, o.warmup)
		r := measure(ctx, sc.name, o.concurrency, o.warmup, o.duration, 0, sc.reset, sc.op)
		if sc.note != nil {
			r.Note = sc.note()
		}
		results = append(results, r)
	}
	client.CloseIdleConnections()

	for _, r := range results[1:] {
		if floorRes.RPS > 0 {
			r.VsFloor = r.RPS / floorRes.RPS
		}
	}
	for _, r := range results {
		if r.firstErr != nil {
			logf("%s: %d errors, first: %v", r.Scenario, r.Errors, r.firstErr)
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.Encode(info)
		for _, r := range results {
			enc.Encode(r)
		}
	} else {
		printTable(info, results)
	}
	return nil
}

// ---- the skiff server ----

// ---- HTTP client ----

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

type apiClient struct {
	c     *http.Client
	base  string
	token string
}

// do sends one request and discards the body (counting it), returning the
// status and the response headers.
func (a *apiClient) do(ctx context.Context, method, path string, hdr map[string]string, body []byte) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if n == 0 {
		return resp.StatusCode, resp.Header, errors.New("empty body")
	}
	return resp.StatusCode, resp.Header, nil
}

func wantStatus(st int, err error, want ...int) error {
	if err != nil {
		return err
	}
	if !slices.Contains(want, st) {
		return fmt.Errorf("status %d, want %v", st, want)
	}
	return nil
}

// contentRange parses "version A..B".
func contentRange(h http.Header) (first, last int, err error) {
	cr := h.Get("Content-Range")
	spec, ok := strings.CutPrefix(cr, "version ")
	a, b, ok2 := strings.Cut(spec, "..")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("Content-Range %q", cr)
	}
	if first, err = strconv.Atoi(a); err == nil {
		last, err = strconv.Atoi(b)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("Content-Range %q", cr)
	}
	return first, last, nil
}

// ---- measuring ----

// measure runs op from concurrency workers, first for warmup (unrecorded),
// then for dur, stopping early after limit requests when limit > 0. Every
// worker loop is bounded by the deadline and by the request budget.
// reset, when not nil, runs between the warm-up and the measurement.
func measure(ctx context.Context, name string, concurrency int, warmup, dur time.Duration, limit int64, reset func(), op func(ctx context.Context, worker int) error) *result {
	if warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, warmup+30*time.Second)
		loop(wctx, concurrency, time.Now().Add(warmup), 0, op, nil)
		cancel()
	}
	if reset != nil {
		reset()
	}
	mctx, cancel := context.WithTimeout(ctx, dur+60*time.Second)
	defer cancel()
	start := time.Now()
	workers := make([]workerStats, concurrency)
	loop(mctx, concurrency, start.Add(dur), limit, op, workers)
	elapsed := time.Since(start)

	r := &result{Kind: "scenario", Scenario: name, Seconds: elapsed.Seconds(), Concurrency: concurrency}
	var lat []time.Duration
	for _, w := range workers {
		r.Requests += w.requests
		r.Errors += w.errors
		lat = append(lat, w.lat...)
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
	}
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	slices.Sort(lat)
	r.P50ms, r.P90ms, r.P99ms = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99)
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	return r
}

type workerStats struct {
	requests, errors int64
	lat              []time.Duration
	firstErr         error
}

func loop(ctx context.Context, concurrency int, deadline time.Time, limit int64, op func(context.Context, int) error, stats []workerStats) {
	var budget atomic.Int64
	budget.Store(limit)
	perWorker := maxSamples / concurrency
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			var st *workerStats
			if stats != nil {
				st = &stats[w]
				st.lat = make([]time.Duration, 0, min(perWorker, 1<<16))
			}
			for i := 0; i < math.MaxInt32 && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) || (limit > 0 && budget.Add(-1) < 0) {
					return
				}
				err := op(ctx, w)
				d := time.Since(t0)
				if st == nil {
					continue
				}
				if ctx.Err() != nil {
					return // cancelled mid-request: not a server error
				}
				st.requests++
				if err != nil {
					st.errors++
					if st.firstErr == nil {
						st.firstErr = err
					}
				}
				if len(st.lat) < perWorker {
					st.lat = append(st.lat, d)
				}
			}
		})
	}
	wg.Wait()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the nearest-rank percentile of sorted latencies, in ms.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return ms(sorted[max(0, min(i, len(sorted)-1))])
}

// ---- seeding ----

// patcher makes PATCH config-vars bodies that always change the config (so
// each creates a release) while keeping it small: worker w sets BENCH_W<w>
// to a value never used before.
type patcher struct{ n atomic.Int64 }

func (p *patcher) body(worker int) []byte {
	return fmt.Appendf(nil, `{"BENCH_W%d":"%d"}`, worker, p.n.Add(1))
}

// latestVersion is the app's newest release version, as the CLI asks for it.
func latestVersion(ctx context.Context, a *apiClient) (int, error) {
	st, h, err := a.do(ctx, "GET", "/apps/"+appName+"/releases", map[string]string{"Range": "version ..; max=1, order=desc"}, nil)
	if err := wantStatus(st, err, http.StatusOK, http.StatusPartialContent); err != nil {
		return 0, fmt.Errorf("latest release: %w", err)
	}
	first, _, err := contentRange(h)
	return first, err
}

// seedReleases brings the app to o.releases releases through the API with
// concurrent PATCH config-vars. Its rate is the PATCH throughput under load
// on a growing releases table.
func seedReleases(ctx context.Context, o options, a *apiClient) (*result, error) {
	have, err := latestVersion(ctx, a)
	if err != nil {
		return nil, err
	}
	need := int64(o.releases - have)
	name := fmt.Sprintf("seed: PATCH config-vars (v%d→v%d)", have, o.releases)
	logf("seeding %d releases with %d concurrent PATCH config-vars", need, o.concurrency)
	var p patcher
	path := "/apps/" + appName + "/config-vars"
	op := func(ctx context.Context, w int) error {
		st, _, err := a.do(ctx, "PATCH", path, nil, p.body(w))
		return wantStatus(st, err, http.StatusOK)
	}
	var res *result
	sctx, cancel := context.WithTimeout(ctx, o.seedTimeout)
	defer cancel()
	for round := 0; round < 3 && need > 0; round++ { // failed PATCHes leave releases to make up
		done := make(chan struct{})
		go progress(a, have, o.releases, done)
		r := measure(sctx, name, o.concurrency, 0, o.seedTimeout, need, nil, op)
		close(done)
		if res == nil {
			res = r
		} else { // percentiles stay those of the first round
			res.Requests += r.Requests
			res.Errors += r.Errors
			res.Seconds += r.Seconds
			res.RPS = float64(res.Requests) / res.Seconds
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if have, err = latestVersion(ctx, a); err != nil {
			return nil, err
		}
		need = int64(o.releases - have)
	}
	if need != 0 {
		return nil, fmt.Errorf("seeding left the app at v%d, want v%d (first error: %v)", have, o.releases, res.firstErr)
	}
	logf("seeded: %d releases in %.1fs (%.0f/s)", res.Requests, res.Seconds, res.RPS)
	return res, nil
}

// progress reports the seeding every 5s until done.
func progress(a *apiClient, from, to int, done chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v, err := latestVersion(ctx, a)
			cancel()
			if err == nil {
				logf("  … v%d of v%d", v, to)
			}
		}
	}
}

// ---- scenarios ----

type scenario struct {
	name  string
	op    func(ctx context.Context, worker int) error
	reset func() // between warm-up and measurement
	note  func() string
}

func scenarios(a *apiClient, releases, concurrency int) []scenario {
	app := "/apps/" + appName
	var p patcher

	// The paginated walk: each worker starts at `version ..; max=200` and
	// follows Next-Range to the end, then starts over. One page is one
	// request; Content-Range must continue where the last page ended.
	type walker struct {
		next    string // Range of the next page; "" starts a walk
		expect  int    // first version the next page must hold
		started time.Time
	}
	walkers := make([]walker, concurrency)
	var walks atomic.Int64
	var walkTime atomic.Int64
	walkOp := func(ctx context.Context, w int) error {
		wk := &walkers[w]
		if wk.next == "" {
			wk.next, wk.expect, wk.started = "version ..; max=200", 1, time.Now()
		}
		st, h, err := a.do(ctx, "GET", app+"/releases", map[string]string{"Range": wk.next}, nil)
		if err = wantStatus(st, err, http.StatusOK, http.StatusPartialContent); err == nil {
			var first, last int
			if first, last, err = contentRange(h); err == nil && first != wk.expect {
				err = fmt.Errorf("page starts at v%d, want v%d", first, wk.expect)
			}
			next := h.Get("Next-Range")
			switch {
			case err != nil:
			case next == "" && (st != http.StatusOK || last != releases):
				err = fmt.Errorf("walk ended at v%d with status %d, want v%d and 200", last, st, releases)
			case next != "" && st != http.StatusPartialContent:
				err = fmt.Errorf("Next-Range with status %d", st)
			case next == "":
				walks.Add(1)
				walkTime.Add(int64(time.Since(wk.started)))
				wk.next = ""
			default:
				wk.next, wk.expect = next, last+1
			}
		}
		if err != nil {
			wk.next = "" // start over
		}
		return err
	}

	return []scenario{
		{name: "GET /apps/{app}", op: func(ctx context.Context, w int) error {
			st, _, err := a.do(ctx, "GET", app, nil, nil)
			return wantStatus(st, err, http.StatusOK)
		}},
		{name: "GET releases, version ..; max=200 + Next-Range", op: walkOp, reset: func() {
			walks.Store(0)
			walkTime.Store(0)
		}, note: func() string {
			n := walks.Load()
			if n == 0 {
				return ""
			}
			pages := (releases + 199) / 200
			return fmt.Sprintf("%d full walks of %d releases (%d pages), mean %.0f ms per walk",
				n, releases, pages, ms(time.Duration(walkTime.Load()/n)))
		}},
		{name: "GET releases, version ..; max=15, order=desc", op: func(ctx context.Context, w int) error {
			st, h, err := a.do(ctx, "GET", app+"/releases", map[string]string{
				"Range": "version ..; max=15, order=desc", "Accept": "application/vnd.heroku+json; version=3.sdk"}, nil)
			if err = wantStatus(st, err, http.StatusPartialContent); err != nil {
				return err
			}
			first, last, err := contentRange(h)
			if err == nil && (first != releases || last != releases-14) {
				err = fmt.Errorf("Content-Range %d..%d, want %d..%d", first, last, releases, releases-14)
			}
			return err
		}},
		// Last: it adds releases to the app.
		{name: "PATCH /apps/{app}/config-vars", op: func(ctx context.Context, w int) error {
			st, _, err := a.do(ctx, "PATCH", app+"/config-vars", nil, p.body(w))
			return wantStatus(st, err, http.StatusOK)
		}},
	}
}

// ---- the floor ----

// floorBody is a fixed JSON document of about 1 KB, the size of an app.
var floorBody = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":"01234567-89ab-cdef-0123-456789abcdef","name":"floor","padding":"`)
	b.WriteString(strings.Repeat("x", 1024-b.Len()-3))
	b.WriteString("\"}\n")
	return b.Bytes()
}()

// serveFloor is the -floor-server mode: a trivial handler on a loopback
// port, until SIGTERM.
func serveFloor() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	length := strconv.Itoa(len(floorBody))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", length)
		w.Write(floorBody)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("FLOOR URL: http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runFloor starts this program again in -floor-server mode (its own
// process, like skiff) and measures it.
func runFloor(ctx context.Context, o options, client *http.Client, tmp string) (*result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-floor-server")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "FLOOR URL: "); ok {
				urlc <- v
			}
		}
	}()
	var url string
	select {
	case url = <-urlc:
	case err := <-done:
		return nil, fmt.Errorf("floor server exited: %v", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("floor server printed no URL within 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	name := "floor: net/http, fixed 1 KB JSON"
	logf("running %s for %s (+%s warm-up)", name, o.duration, o.warmup)
	a := &apiClient{c: client, base: url}
	return measure(ctx, name, o.concurrency, o.warmup, o.duration, 0, nil, func(ctx context.Context, w int) error {
		st, _, err := a.do(ctx, "GET", "/apps/floor", nil, nil)
		return wantStatus(st, err, http.StatusOK)
	}), nil
}

// ---- output ----

func printTable(info runInfo, results []*result) {
	fmt.Printf("skiff bench/api  %s  %d CPUs (GOMAXPROCS %d)  %s %s  data dir on %s\n",
		info.Date, info.CPUs, info.GOMAXPROCS, info.GoVersion, info.OSArch, info.DataFS)
	fmt.Printf("load average %s at start; concurrency %d, %gs per scenario, app with %d releases; latencies in ms\n\n",
		info.Load1, info.Concurrency, info.Duration, info.Releases)
	w := 0
	for _, r := range results {
		w = max(w, len(r.Scenario))
	}
	fmt.Printf("%-*s %9s %9s %8s %8s %8s %7s %9s\n", w, "scenario", "requests", "req/s", "p50", "p90", "p99", "errors", "vs floor")
	for _, r := range results {
		vs := "-"
		if r.VsFloor > 0 {
			vs = fmt.Sprintf("%.3f", r.VsFloor)
		}
		fmt.Printf("%-*s %9d %9.0f %8s %8s %8s %7d %9s\n", w, r.Scenario, r.Requests, r.RPS,
			fmtMs(r.P50ms), fmtMs(r.P90ms), fmtMs(r.P99ms), r.Errors, vs)
	}
	for _, r := range results {
		if r.Note != "" {
			fmt.Printf("\n%s: %s\n", r.Scenario, r.Note)
		}
	}
}

func fmtMs(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// load1 is the 1-minute load average (Linux), or "n/a".
func load1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "n/a"
}

// fsType names the filesystem holding dir (Linux statfs magic numbers).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x794C7630: "overlayfs", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0x65735546: "fuse"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("fs 0x%x", st.Type)
}
