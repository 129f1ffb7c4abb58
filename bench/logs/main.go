// Command logs benchmarks Skiff's log pipeline beside rsyslog in the same
// run: the ingest rate (lines/s) of the HTTPS log-input endpoint into one
// app's channel with two drains attached (rsyslog over TCP and an HTTPS
// receiver), against rsyslog taking the same lines over TCP into a file;
// and the tail latency (line sent → line on a tail session) at half the
// measured maximum rate. Figures are printed with their ratios; nothing is
// asserted.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/bench/skiffserver"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/pki"
)

type options struct {
	dynos       bool
	dynoLines   int
	bridge      string
	subnet      string
	skiff       string
	workdir     string
	lines       int
	batch       int
	stream      bool
	relay       bool
	concurrency int
	tail        time.Duration
	pin         bool
	sink        string
	warmup      int
}

func main() {
	var o options
	flag.StringVar(&o.skiff, "skiff", "", "skiff binary to benchmark (default: build ./cmd/skiff of this module)")
	flag.StringVar(&o.workdir, "workdir", os.TempDir(), "where the temporary directory is made")
	flag.IntVar(&o.lines, "lines", 200000, "lines sent in each ingest measurement")
	flag.IntVar(&o.batch, "batch", 500, "lines per log-input request (and per rsyslog write): ~60 KB, within the ~100 KB batches of Logplex's HTTPS drains")
	flag.BoolVar(&o.stream, "stream", false, "send log-input as one chunked request per connection (-batch lines per write), as rsyslog gets its lines, instead of one request per batch")
	flag.BoolVar(&o.relay, "relay", true, "also measure a second peer: rsyslog that forwards every line to another rsyslog (omfwd, one syslog drain) besides its file")
	flag.IntVar(&o.concurrency, "concurrency", 4, "client connections sending at once")
	flag.DurationVar(&o.tail, "tail", 5*time.Second, "length of the tail latency measurement")
	flag.BoolVar(&o.dynos, "dynos", true, "also measure a dyno's output (needs root and runc)")
	flag.IntVar(&o.dynoLines, "dyno-lines", 200000, "lines the dyno writes to stdout at once")
	flag.StringVar(&o.bridge, "bridge", "skdrbench", "dyno bridge of the benchmarked server; must not exist yet")
	flag.StringVar(&o.subnet, "subnet", "10.213.242.0/24", "dyno subnet of the benchmarked server")
	flag.BoolVar(&o.pin, "pin", cpus() >= 2, "run each daemon under test (the rsyslog peers, skiff server) alone on CPU 0 and the rest (this process: load generator, HTTPS receiver, syslog sink; rsyslog drains) on the other CPUs, as if they were other machines")
	flag.IntVar(&o.warmup, "warmup", 100000, "lines each daemon gets before the measured ingest (connections, buffers and files set up)")
	flag.StringVar(&o.sink, "sink", "count", "syslog drains' receiver, for skiff and for the relaying rsyslog: count (octet-counted frames counted in this process) or rsyslog (rsyslogd writing a file)")
	flag.Parse()
	if o.sink != "count" && o.sink != "rsyslog" {
		fatalf("-sink count or -sink rsyslog, please")
	}
	if o.pin && os.Getenv("BENCH_LOGS_PINNED") == "" {
		pinSelf()
	}
	if o.lines < o.batch || o.batch < 1 || o.concurrency < 1 || o.tail <= 0 {
		fatalf("-lines ≥ -batch ≥ 1, -concurrency ≥ 1 and -tail > 0, please")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

// pinSelf runs this benchmark again under taskset on CPUs 1…n-1, leaving
// CPU 0 to the daemon being measured. The processes it starts inherit
// that; daemons are started under taskset -c 0 (daemon).
func pinSelf() {
	exe, err := os.Executable()
	if err != nil {
		fatalf("-pin: %v", err)
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		fatalf("-pin needs taskset (util-linux): %v", err)
	}
	n := cpus()
	args := append([]string{"taskset", "-c", fmt.Sprintf("1-%d", n-1), exe}, os.Args[1:]...)
	fatalf("-pin: %v", syscall.Exec(taskset, args, append(os.Environ(), "BENCH_LOGS_PINNED="+strconv.Itoa(n))))
}

// cpus is the machine's CPU count (runtime.NumCPU counts those this
// process may use, one less once pinned).
func cpus() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_LOGS_PINNED")); err == nil {
		return n
	}
	return runtime.NumCPU()
}

// daemon is the command prefix for a daemon being measured: alone on CPU
// 0 when pinned.
func daemon(o options) []string {
	if o.pin {
		return []string{"taskset", "-c", "0"}
	}
	return nil
}

// daemonEnv keeps a pinned server configured as on the whole machine: Go
// would otherwise size its scheduler (GOMAXPROCS) to the one CPU it may
// use. rsyslog's threads do not depend on it.
func daemonEnv(o options) []string {
	if o.pin && os.Getenv("GOMAXPROCS") == "" {
		return []string{"GOMAXPROCS=" + strconv.Itoa(cpus())}
	}
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/logs: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench/logs: "+format+"\n", args...) }

// message is line i of a run: fixed width, so a file's size counts lines.
func message(i int) string {
	return fmt.Sprintf("bench line %09d padding-to-a-typical-log-line-length-of-about-a-hundred-bytes..", i)
}

func frame(b []byte, msg string) []byte {
	m := "<190>1 2026-11-23T10:00:00.000000+00:00 host app worker.1 - " + msg
	b = strconv.AppendInt(b, int64(len(m)), 10)
	b = append(b, ' ')
	return append(b, m...)
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp(o.workdir, "bench-logs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.skiff
	if bin == "" {
		logf("building ./cmd/skiff")
		if bin, err = skiffserver.Build(ctx, dir); err != nil {
			return err
		}
	}

	// The peer: rsyslog, lines over TCP into a file.
	peer, err := startRsyslog(ctx, filepath.Join(dir, "peer"), "", daemon(o))
	if err != nil {
		return err
	}
	defer peer.stop()
	logf("rsyslog: %d lines over %d TCP connections into a file", o.lines, o.concurrency)
	if _, err := peer.ingest(o, o.warmup); err != nil {
		return err
	}
	peerCPU, peerSelf := cpuTime(peer.cmd.Process.Pid), cpuTime(os.Getpid())
	peerRate, err := peer.ingest(o, o.lines)
	if err != nil {
		return err
	}
	peerCPU, peerSelf = cpuTime(peer.cmd.Process.Pid)-peerCPU, cpuTime(os.Getpid())-peerSelf

	// Skiff, with two drains: rsyslog (TCP) and an HTTPS receiver.
	var relayRate float64
	var relayCPU, relaySinkCPU time.Duration
	relayGot := 0
	if o.relay {
		if relayRate, relayCPU, relaySinkCPU, relayGot, err = relay(ctx, dir, o); err != nil {
			return err
		}
	}

	drainSink, err := startReceiver(ctx, filepath.Join(dir, "drain"), o)
	if err != nil {
		return err
	}
	defer drainSink.stop()
	ca, err := pki.Open(filepath.Join(dir, "ca"), "bench CA")
	if err != nil {
		return err
	}
	cert, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		return err
	}
	var httpsLines atomic.Int64
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(r.Header.Get("Logplex-Msg-Count"))
		httpsLines.Add(int64(n))
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	hs.StartTLS()
	defer hs.Close()
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	dataDir := filepath.Join(dir, "data")
	args := []string{"--dynos=false", "--rate-limit", "100000000", "--drain-ca-file", filepath.Join(dir, "ca", pki.CertFile),
		"--metrics-addr", metricsAddr,
		// No router: the bench needs none, and another server on the
		// machine may hold the default ports.
		"--router-http-addr", "off", "--router-https-addr", "off"}
	var imageID string // the image's OCI layout directory, then its id
	if o.dynos {
		logf("building the dyno image")
		if imageID, err = skiffserver.BuildImage(dir, dynoApp); err != nil {
			return err
		}
		args = append(args, "--dynos=true", "--dyno-bridge", o.bridge, "--dyno-subnet", o.subnet)
	}
	srv, err := skiffserver.Start(ctx, skiffserver.Options{Binary: bin, Dir: dir, DataDir: dataDir,
		Args: args, Wrap: daemon(o), Env: daemonEnv(o),
		StartTimeout: time.Minute, StopTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			logf("%v", err)
		}
	}()
	c := &client{url: srv.URL, token: srv.Token, http: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2}}}
	const app = "bench-logs"
	if err := c.json("POST", "/apps", map[string]string{"name": app}, nil); err != nil {
		return err
	}
	for _, u := range []string{"syslog://" + drainSink.address(), hs.URL + "/logs"} {
		if err := c.json("POST", "/apps/"+app+"/log-drains", map[string]string{"url": u}, nil); err != nil {
			return err
		}
	}
	time.Sleep(200 * time.Millisecond) // the drains start

	if o.warmup > 0 {
		w := o
		w.lines = o.warmup
		if err := c.ingest(app, w, 0); err != nil {
			return err
		}
		time.Sleep(time.Second) // committed, the drains caught up
	}
	logf("skiff: %d lines through POST /apps/%s/log-input, %d connections, two drains", o.lines, app, o.concurrency)
	before, err := scrape(metricsAddr)
	if err != nil {
		return err
	}
	srvCPU := cpuTime(srv.Pid())
	// What the drains' receivers and this process (the client, and the
	// HTTPS receiver) use, until the drains have caught up.
	sinkCPU, selfCPU := cpuTime(drainSink.pid()), cpuTime(os.Getpid())
	start := time.Now()
	if err := c.ingest(app, o, 0); err != nil {
		return err
	}
	accepted := time.Since(start)
	after, err := waitCommitted(metricsAddr, before, o.lines)
	if err != nil {
		return err
	}
	committed := time.Since(start)
	srvCPU = cpuTime(srv.Pid()) - srvCPU
	stored := after["skiff_logplex_lines_stored_total"] - before["skiff_logplex_lines_stored_total"]
	queueDropped := after["skiff_logplex_dropped_queue_total"] - before["skiff_logplex_dropped_queue_total"]
	time.Sleep(2 * time.Second) // let the drains catch up before counting
	final, _ := scrape(metricsAddr)
	sinkCPU, selfCPU = cpuTime(drainSink.pid())-sinkCPU, cpuTime(os.Getpid())-selfCPU

	skiffRate := stored / committed.Seconds()
	mode := "per batch"
	if o.stream {
		mode = "per write, one chunked request per connection"
	}
	where := fmt.Sprintf("all processes on all %d CPUs", cpus())
	if o.pin {
		where = fmt.Sprintf("the daemon measured alone on CPU 0, load generator and receivers on CPUs 1-%d", cpus()-1)
	}
	fmt.Printf("ingest (%d lines of ~100 B, %d %s, %d connections; %s; syslog drains received by %s)\n", o.lines, o.batch, mode, o.concurrency, where, o.sink)
	fmt.Printf("  %-44s %12.0f lines/s\n", "rsyslog imtcp → omfile (peer)", peerRate)
	if o.relay {
		fmt.Printf("  %-44s %12.0f lines/s  (%.2f× the peer)  its drain got %d lines; CPU %.2f µs/line, its drain's receiver %.2f µs/line\n",
			"rsyslog imtcp → omfile + omfwd (a drain)", relayRate, relayRate/peerRate, relayGot,
			float64(relayCPU.Microseconds())/float64(o.lines), float64(relaySinkCPU.Microseconds())/float64(o.lines))
	}
	fmt.Printf("  %-44s %12.0f lines/s  (%.2f× rsyslog)\n", "skiff log-input, accepted (204)", float64(o.lines)/accepted.Seconds(), float64(o.lines)/accepted.Seconds()/peerRate)
	fmt.Printf("  %-44s %12.0f lines/s  (%.2f× rsyslog)  stored %.0f, queue drops %.0f\n", "skiff log-input, committed (history, drains)", skiffRate, skiffRate/peerRate, stored, queueDropped)
	fmt.Printf("  %-44s %9.2f µs/line skiff (drains included), %.2f µs/line rsyslog (%.2f×)\n", "CPU per line",
		float64(srvCPU.Microseconds())/float64(o.lines), float64(peerCPU.Microseconds())/float64(o.lines),
		float64(srvCPU)/float64(max(peerCPU, 1)))
	perLine := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(o.lines) }
	if drainSink.pid() == os.Getpid() {
		fmt.Printf("  %-44s %9.2f µs/line bench client, HTTPS receiver and syslog counter (%.2f µs/line client with the peer)\n",
			"CPU per line of the rest", perLine(selfCPU), perLine(peerSelf))
	} else {
		fmt.Printf("  %-44s %9.2f µs/line rsyslog drain, %.2f µs/line bench client and HTTPS receiver (%.2f µs/line client with the peer)\n",
			"CPU per line of the rest", perLine(sinkCPU), perLine(selfCPU), perLine(peerSelf))
	}
	printDrains(before, final)
	fmt.Printf("    https receiver got %d lines, syslog receiver %d\n", httpsLines.Load(), drainSink.count())

	// At the peer's rate: do both drains keep up with Skiff taking lines
	// as fast as rsyslog can?
	if !o.stream {
		time.Sleep(time.Second)
		before, _ = scrape(metricsAddr)
		start := time.Now()
		if err := c.ingest(app, o, peerRate); err != nil {
			return err
		}
		if _, err := waitCommitted(metricsAddr, before, o.lines); err != nil {
			return err
		}
		paced := float64(o.lines) / time.Since(start).Seconds()
		time.Sleep(2 * time.Second)
		final, _ = scrape(metricsAddr)
		fmt.Printf("  %-44s %12.0f lines/s  (%.2f× rsyslog)  drains delivered: %s\n", "skiff log-input paced at rsyslog's rate", paced, paced/peerRate,
			deliveredShare(before, final, float64(o.lines)))
	}

	// Tail latency at half the committed rate.
	rate := skiffRate / 2
	before = final
	p50, p99, n, err := c.tailLatency(ctx, app, rate, o.tail)
	if err != nil {
		return err
	}
	fmt.Printf("tail latency at %.0f lines/s (half the committed rate), %d lines: p50 %s, p99 %s\n", rate, n, p50, p99)
	time.Sleep(2 * time.Second)
	final, _ = scrape(metricsAddr)
	fmt.Printf("  logplex at that rate: stored %.0f, queue drops %.0f\n",
		final["skiff_logplex_lines_stored_total"]-before["skiff_logplex_lines_stored_total"],
		final["skiff_logplex_dropped_queue_total"]-before["skiff_logplex_dropped_queue_total"])
	printDrains(before, final)

	if o.dynos {
		// Imported once the server runs: its start-up garbage collection
		// removes images no release holds.
		if imageID, err = importImage(imageID, dataDir); err != nil {
			return err
		}
		if err := c.dynoIngest(app, imageID, metricsAddr, o, peerRate); err != nil {
			return err
		}
	}
	return nil
}

// dynoApp writes $LINES lines to stdout at once, then idles.
const dynoApp = `package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Getenv("LINES"))
	time.Sleep(time.Second) // for the benchmark to move it off the server's CPU
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "dyno line %09d padding-to-a-typical-log-line-length-of-about-a-hundred-bytes..\n", i)
	}
	w.Flush()
	for {
		time.Sleep(time.Hour)
	}
}
`

// importImage puts the OCI layout into the server's image store.
func importImage(layout, dataDir string) (string, error) {
	store, err := image.Open(filepath.Join(dataDir, "images"))
	if err != nil {
		return "", err
	}
	refs, err := store.ImportLayout(layout)
	if err != nil {
		return "", fmt.Errorf("import the dyno image: %w", err)
	}
	return refs[0].ID, nil
}

// dynoIngest runs one worker dyno that writes o.dynoLines lines at once and
// measures, from the metrics, how fast they are committed.
func (c *client) dynoIngest(app, imageID, metricsAddr string, o options, peerRate float64) error {
	if err := c.json("PATCH", "/apps/"+app+"/config-vars", map[string]string{"LINES": strconv.Itoa(o.dynoLines)}, nil); err != nil {
		return err
	}
	base, err := scrape(metricsAddr)
	if err != nil {
		return err
	}
	logf("skiff: a worker dyno writes %d lines to stdout at once", o.dynoLines)
	if err := c.jsonAs("PATCH", "/apps/"+app+"/formation", "application/vnd.heroku+json; version=3.docker-releases",
		map[string]any{"updates": []map[string]any{{"type": "worker", "docker_image": imageID, "quantity": 1}}}, nil); err != nil {
		return err
	}
	if o.pin {
		// The dyno is the load generator here: off the server's CPU.
		if err := pinDyno(o); err != nil {
			return err
		}
	}
	var t0 time.Time
	var m map[string]float64
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if m, err = scrape(metricsAddr); err != nil {
			return err
		}
		stored := m["skiff_logplex_lines_stored_total"] - base["skiff_logplex_lines_stored_total"]
		dropped := m["skiff_logplex_dropped_queue_total"] - base["skiff_logplex_dropped_queue_total"]
		if t0.IsZero() && stored > 10 {
			t0 = time.Now()
		}
		if stored+dropped >= float64(o.dynoLines) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dyno's lines did not arrive: %.0f stored", stored)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(t0).Seconds()
	stored := m["skiff_logplex_lines_stored_total"] - base["skiff_logplex_lines_stored_total"]
	dropped := m["skiff_logplex_dropped_queue_total"] - base["skiff_logplex_dropped_queue_total"]
	fmt.Printf("dyno output (%d lines written at once to stdout; the first committed line starts the clock)\n", o.dynoLines)
	fmt.Printf("  %-44s %12.0f lines/s  (%.2f× rsyslog)\n", "skiff dyno stdout, read", (stored+dropped)/took, (stored+dropped)/took/peerRate)
	fmt.Printf("  %-44s %12.0f lines/s  (%.2f× rsyslog)  stored %.0f, queue drops %.0f\n", "skiff dyno stdout, committed", stored/took, stored/took/peerRate, stored, dropped)
	time.Sleep(2 * time.Second)
	final, _ := scrape(metricsAddr)
	printDrains(base, final)
	return c.jsonAs("PATCH", "/apps/"+app+"/formation", "", map[string]any{"updates": []map[string]any{{"type": "worker", "quantity": 0}}}, nil)
}

// pinDyno moves the benchmark's dyno (found by its environment) to the
// CPUs the benchmark runs on, in the second it waits before writing.
func pinDyno(o options) error {
	want := "LINES=" + strconv.Itoa(o.dynoLines)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		found := false
		for _, p := range procs { // its init and the program it starts
			env, err := os.ReadFile(p)
			if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), want) {
				continue
			}
			pid := filepath.Base(filepath.Dir(p))
			out, err := exec.Command("taskset", "-a", "-p", "-c", fmt.Sprintf("1-%d", cpus()-1), pid).CombinedOutput()
			if err != nil {
				return fmt.Errorf("taskset the dyno: %v: %s", err, out)
			}
			found = true
		}
		if found {
			return nil
		}
	}
	return fmt.Errorf("the dyno's process did not show up")
}

// printDrains prints each drain's delivered and dropped lines between two
// scrapes.
func printDrains(before, after map[string]float64) {
	for _, k := range sortedKeys(after) {
		if strings.HasPrefix(k, "skiff_drain_lines_delivered_total{") || strings.HasPrefix(k, "skiff_drain_lines_dropped_total{") {
			fmt.Printf("    %s %.0f\n", regexp.MustCompile(`app_id="[^"]*",`).ReplaceAllString(k, ""), after[k]-before[k])
		}
	}
}

// waitCommitted waits until the server has committed n lines since the
// scrape before (every line stored, or counted as dropped by the channel's
// queue) and returns the metrics then.
func waitCommitted(addr string, before map[string]float64, n int) (map[string]float64, error) {
	for {
		after, err := scrape(addr)
		if err != nil {
			return nil, err
		}
		delta := func(k string) float64 { return after[k] - before[k] }
		in := delta("skiff_logplex_lines_in_total")
		if in+delta("skiff_logplex_dropped_queue_total") >= float64(n) && delta("skiff_logplex_lines_stored_total") >= in {
			return after, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveredShare says, per drain scheme, what share of n lines the drains
// delivered between two scrapes.
func deliveredShare(before, after map[string]float64, n float64) string {
	var parts []string
	for _, k := range sortedKeys(after) {
		if strings.HasPrefix(k, "skiff_drain_lines_delivered_total{") {
			scheme := k[strings.Index(k, `scheme="`)+8:]
			scheme = scheme[:strings.IndexByte(scheme, '"')]
			parts = append(parts, fmt.Sprintf("%s %.1f %%", scheme, 100*(after[k]-before[k])/n))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape reads the metrics endpoint into series → value.
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out, sc.Err()
}

// rsyslog is a Debian rsyslogd writing each message's text to a file.
type rsyslog struct {
	cmd  *exec.Cmd
	addr string
	out  string
}

// relay measures the second peer: rsyslog writing its file and forwarding
// every line to another rsyslog (its one syslog drain), as rsyslog does by
// default (the forwarding action in the main queue: a slow drain slows it).
// The rate counts until the file holds every line, as Skiff's committed
// rate does; the drain's count is taken 2 s later, as Skiff's drains' are.
func relay(ctx context.Context, dir string, o options) (rate float64, cpu, sinkCPU time.Duration, got int, err error) {
	sink, err := startReceiver(ctx, filepath.Join(dir, "relay-drain"), o)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer sink.stop()
	r, err := startRsyslog(ctx, filepath.Join(dir, "relay"), sink.address(), daemon(o))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer r.stop()
	if _, err := r.ingest(o, o.warmup); err != nil {
		return 0, 0, 0, 0, err
	}
	time.Sleep(200 * time.Millisecond) // its drain has the warm-up
	base := sink.count()
	cpu, sinkCPU = cpuTime(r.cmd.Process.Pid), cpuTime(sink.pid())
	if rate, err = r.ingest(o, o.lines); err != nil {
		return 0, 0, 0, 0, err
	}
	time.Sleep(2 * time.Second)
	cpu, sinkCPU = cpuTime(r.cmd.Process.Pid)-cpu, cpuTime(sink.pid())-sinkCPU
	return rate, cpu, sinkCPU, sink.count() - base, nil
}

// receiver is a syslog drain's receiving end: rsyslogd writing a file, or
// a counter in this process.
type receiver interface {
	address() string
	count() int
	pid() int // the process whose CPU time it uses
	stop()
}

func startReceiver(ctx context.Context, dir string, o options) (receiver, error) {
	if o.sink == "rsyslog" {
		return startRsyslog(ctx, dir, "", nil)
	}
	return startCounter()
}

// counter takes octet-counted syslog frames (RFC 6587) over TCP and
// counts them: a receiver that costs little, for a benchmark that
// measures what sends to it.
type counter struct {
	ln net.Listener
	n  atomic.Int64
}

func startCounter() (*counter, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &counter{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.serve(conn)
		}
	}()
	return c, nil
}

func (c *counter) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 256<<10)
	n := int64(0)
	defer func() { c.n.Add(n) }()
	for {
		size := 0
		for {
			b, err := br.ReadByte()
			if err != nil {
				return
			}
			if b == ' ' {
				break
			}
			if b < '0' || b > '9' || size > maxFrame {
				logf("syslog sink: not an octet-counted frame")
				return
			}
			size = size*10 + int(b-'0')
		}
		if _, err := br.Discard(size); err != nil {
			return
		}
		if n++; br.Buffered() == 0 {
			c.n.Add(n)
			n = 0
		}
	}
}

// maxFrame bounds a frame the counter takes.
const maxFrame = 64 << 10

func (c *counter) address() string { return c.ln.Addr().String() }
func (c *counter) count() int      { return int(c.n.Load()) }
func (c *counter) pid() int        { return os.Getpid() }
func (c *counter) stop()           { c.ln.Close() }

func (r *rsyslog) address() string { return r.addr }
func (r *rsyslog) pid() int        { return r.cmd.Process.Pid }

// startRsyslog starts rsyslogd writing each message's text to a file and,
// if forward is set, forwarding each message to that address (TCP,
// octet-counted RFC 5424). wrap prefixes its command (taskset).
func startRsyslog(ctx context.Context, dir, forward string, wrap []string) (*rsyslog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &rsyslog{out: filepath.Join(dir, "messages")}
	port := filepath.Join(dir, "port")
	fwd := ""
	if forward != "" {
		host, p, _ := net.SplitHostPort(forward)
		fwd = fmt.Sprintf(` action(type="omfwd" target=%q port=%q protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")`, host, p)
	}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
template(name="text" type="string" string="%%msg%%\n")
ruleset(name="in") { action(type="omfile" file=%q template="text")%s }
input(type="imtcp" port="0" listenPortFileName=%q ruleset="in")
`, dir, r.out, fwd, port)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	argv := append(wrap[:len(wrap):len(wrap)], "rsyslogd", "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "pid"))
	r.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("rsyslogd: %w", err)
	}
	for range 1000 {
		if b, err := os.ReadFile(port); err == nil && len(bytes.TrimSpace(b)) > 0 {
			r.addr = "127.0.0.1:" + string(bytes.TrimSpace(b))
			return r, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.stop()
	return nil, fmt.Errorf("rsyslogd did not start")
}

func (r *rsyslog) stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// count is how many lines the file holds.
func (r *rsyslog) count() int {
	f, err := os.Open(r.out)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}

// ingest sends lines lines over o.concurrency connections and returns
// the rate at which they reached the file.
func (r *rsyslog) ingest(o options, lines int) (float64, error) {
	if lines <= 0 {
		return 0, nil
	}
	base := r.count()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.concurrency)
	per := lines / o.concurrency
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", r.addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			var b []byte
			for i := w * per; i < (w+1)*per; i++ {
				b = frame(b, message(i))
				if (i+1)%o.batch == 0 || i == (w+1)*per-1 {
					if _, err := conn.Write(b); err != nil {
						errs <- err
						return
					}
					b = b[:0]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	want := base + per*o.concurrency
	for deadline := time.Now().Add(5 * time.Minute); r.count() < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("rsyslog wrote %d of %d lines", r.count()-base, want-base)
		}
	}
	return float64(want-base) / time.Since(start).Seconds(), nil
}

type client struct {
	url, token string
	http       *http.Client
}

// do sends a request; accept "" asks for API v3, else for that variant.
func (c *client) do(method, path, accept, ctype string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", cmp.Or(accept, "application/vnd.heroku+json; version=3"))
	req.Header.Set("Content-Type", ctype)
	return c.http.Do(req)
}

func (c *client) json(method, path string, in, out any) error {
	return c.jsonAs(method, path, "", in, out)
}

// jsonAs sends a JSON request with another Accept header (a variant).
func (c *client) jsonAs(method, path, accept string, in, out any) error {
	b, _ := json.Marshal(in)
	resp, err := c.do(method, path, accept, "application/json", b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// ingest posts o.lines lines in batches over o.concurrency workers.
// ingest posts o.lines lines, o.batch per request over o.concurrency
// connections: as fast as the server takes them, or at rate lines/s.
func (c *client) ingest(app string, o options, rate float64) error {
	if o.stream {
		return c.ingestStream(app, o)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.concurrency)
	batches := int64(o.lines / o.batch)
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			for {
				k := next.Add(1) - 1
				if k >= batches {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(k*int64(o.batch)) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				b = b[:0]
				for i := k * int64(o.batch); i < (k+1)*int64(o.batch); i++ {
					b = frame(b, message(int(i)))
				}
				if err := c.post(app, b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// ingestStream sends o.lines lines over o.concurrency chunked requests,
// o.batch lines per write, as the rsyslog peer gets them over TCP.
func (c *client) ingestStream(app string, o options) error {
	errs := make(chan error, o.concurrency)
	per := o.lines / o.concurrency
	for w := range o.concurrency {
		go func() {
			pr, pw := io.Pipe()
			go func() {
				var b []byte
				for i := w * per; i < (w+1)*per; i++ {
					b = frame(b, message(i))
					if (i+1)%o.batch == 0 || i == (w+1)*per-1 {
						if _, err := pw.Write(b); err != nil {
							return
						}
						b = b[:0]
					}
				}
				pw.Close()
			}()
			req, err := http.NewRequest("POST", c.url+"/apps/"+app+"/log-input", pr)
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
			req.Header.Set("Content-Type", "application/logplex-1")
			resp, err := c.http.Do(req)
			pr.Close()
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("log-input stream: status %d", resp.StatusCode)
			}
			errs <- err
		}()
	}
	var first error
	for range o.concurrency {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// cpuTime is the CPU time (user and system) a process has used so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command (in parentheses, which may hold spaces).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func (c *client) post(app string, body []byte) error {
	resp, err := c.do("POST", "/apps/"+app+"/log-input", "", "application/logplex-1", body)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("log-input: status %d", resp.StatusCode)
	}
	return nil
}

// tailLatency sends lines carrying their send time at rate lines/s for d
// and measures when each arrives on a tail session.
func (c *client) tailLatency(ctx context.Context, app string, rate float64, d time.Duration) (p50, p99 time.Duration, n int, err error) {
	var sess struct {
		URL string `json:"logplex_url"`
	}
	if err := c.json("POST", "/apps/"+app+"/log-sessions", map[string]any{"tail": true, "lines": 0}, &sess); err != nil {
		return 0, 0, 0, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", sess.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	var mu sync.Mutex
	var lat []time.Duration
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			now := time.Now()
			_, msg, ok := strings.Cut(sc.Text(), "app[worker.1]: lat ")
			if !ok {
				continue
			}
			f := strings.Fields(msg)
			ns, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				continue
			}
			mu.Lock()
			lat = append(lat, now.Sub(time.Unix(0, ns)))
			mu.Unlock()
		}
	}()
	time.Sleep(200 * time.Millisecond) // the stream is open
	const tick = 10 * time.Millisecond
	per := max(1, int(rate*tick.Seconds()))
	t := time.NewTicker(tick)
	defer t.Stop()
	end := time.Now().Add(d)
	sent := 0
	var b []byte
	for time.Now().Before(end) {
		<-t.C
		b = b[:0]
		stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
		for range per {
			b = frame(b, "lat "+stamp+" "+strconv.Itoa(sent))
			sent++
		}
		if err := c.post(app, b); err != nil {
			return 0, 0, 0, err
		}
	}
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0, fmt.Errorf("no line reached the tail session")
	}
	slices.Sort(lat)
	if len(lat) < sent {
		logf("tail session got %d of %d lines (the rest reported as L11)", len(lat), sent)
	}
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat), nil
}
