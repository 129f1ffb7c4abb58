// Command router benchmarks Skiff's router beside nginx, HAProxy and
// Caddy: the same Host routing over the same four backends, measured with
// wrk in the same run, reported as ratios to nginx. See bench/README.md.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/bench/skiffserver"
	"github.com/skiffhq/skiff/internal/pki"
)

const host = "app.bench.test"

var (
	skiffProcs int
	verbose    bool
	skiffB     string
	balances   []string
)

func main() {
	backend := flag.String("backend", "", "internal: run one backend on this address")
	duration := flag.Duration("duration", 10*time.Second, "measured time of each wrk run")
	conns := flag.Int("connections", 64, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	skiff := flag.String("skiff", "", "skiff binary (default: build ./cmd/skiff)")
	flag.StringVar(&skiffB, "skiff-b", "", "a second skiff binary, run as the proxies skiff-b and skiff-b-p2c (to compare two builds in the same run)")
	only := flag.String("only", "", "comma-separated subset of: direct,nginx,haproxy,haproxy-log,caddy,skiff,skiff-b, each also as name-p2c")
	balance := flag.String("balance", "random,p2c", "the balances each proxy runs with: random, p2c or both")
	scen := flag.String("scenarios", "http,https,https-new", "comma-separated scenarios")
	keep := flag.Bool("keep", false, "keep the temporary directory (configs, logs)")
	flag.BoolVar(&verbose, "v", false, "print every run's figures to standard error as it ends")
	flag.IntVar(&skiffProcs, "skiff-procs", 0, "GOMAXPROCS for skiff router (0: Go's default, the number of cores)")
	rounds := flag.Int("rounds", 3, "rounds per scenario; the proxies take turns in each round and the median round is reported")
	flag.Parse()
	balances = strings.Split(*balance, ",")
	if *backend != "" {
		runBackend(*backend)
		return
	}
	if err := run(*duration, *conns, *threads, *rounds, *skiff, *only, *scen, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench/router:", err)
		os.Exit(1)
	}
}

// runBackend is one of the four dynos: a small Go HTTP server.
func runBackend(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	body := []byte("hello, world\n")
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
}

type proc struct {
	name string
	cmd  *exec.Cmd
}

func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func start(dir, name string, args ...string) (*proc, error) {
	cmd := exec.Command(args[0], args[1:]...)
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if strings.HasPrefix(name, "skiff") && skiffProcs > 0 {
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", skiffProcs))
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd}, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d", port)
}

type target struct {
	name        string
	http, https int
	procs       []*proc
}

func run(d time.Duration, conns, threads, rounds int, skiffBin, only, scen string, keep bool) error {
	dir, err := os.MkdirTemp("", "bench-router-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	}
	ctx := context.Background()
	if skiffBin == "" {
		if skiffBin, err = skiffserver.Build(ctx, dir); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Four backends, each its own process.
	var backends []string
	var all, backendProcs []*proc
	defer func() {
		for _, p := range all {
			p.stop()
		}
	}()
	for i := 0; i < 4; i++ {
		port := freePort()
		p, err := start(dir, fmt.Sprintf("backend%d", i), self, "-backend", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		all = append(all, p)
		backendProcs = append(backendProcs, p)
		if err := waitPort(port); err != nil {
			return err
		}
		backends = append(backends, fmt.Sprintf("127.0.0.1:%d", port))
	}
	certFile, keyFile, combined, err := writeCert(dir)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	use := func(n string) bool { return len(want) == 0 || want[n] }
	var targets []*target
	if use("direct") {
		targets = append(targets, &target{name: "direct", http: portOf(backends[0])})
	}
	// Each proxy runs twice: with random balance (nginx's "random",
	// HAProxy's "random(1)", Caddy's "random", Skiff's default) and, as
	// name-p2c, with power-of-two-choices on in-flight requests (nginx's
	// "random two least_conn", HAProxy's "random(2)", which is also what
	// HAProxy's plain "random" means, Caddy's "random_choose 2", Skiff's
	// "p2c"). Each is compared with the nginx of the same balance.
	type starter func(t *target, p2c bool) error
	type proxy struct {
		name string
		p2c  bool
		fn   starter
	}
	var list []proxy
	for _, s := range []proxy{
		{name: "nginx", fn: func(t *target, p2c bool) error { return startNginx(dir, t, backends, certFile, keyFile, p2c) }},
		{name: "haproxy", fn: func(t *target, p2c bool) error { return startHAProxy(dir, t, backends, combined, false, p2c) }},
		{name: "haproxy-log", fn: func(t *target, p2c bool) error { return startHAProxy(dir, t, backends, combined, true, p2c) }},
		{name: "caddy", fn: func(t *target, p2c bool) error { return startCaddy(dir, t, backends, certFile, keyFile, p2c) }},
		{name: "skiff", fn: func(t *target, p2c bool) error { return startSkiff(dir, t, skiffBin, backends, certFile, keyFile, p2c) }},
		{name: "skiff-b", fn: func(t *target, p2c bool) error { return startSkiff(dir, t, skiffB, backends, certFile, keyFile, p2c) }},
	} {
		for _, b := range balances {
			v := s
			if b == "p2c" {
				v.name, v.p2c = s.name+"-p2c", true
			}
			list = append(list, v)
		}
	}
	for _, s := range list {
		if !use(s.name) || strings.HasPrefix(s.name, "skiff-b") && skiffB == "" {
			continue
		}
		t := &target{name: s.name, http: freePort(), https: freePort()}
		if err := s.fn(t, s.p2c); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		all = append(all, t.procs...)
		for _, p := range []int{t.http, t.https} {
			if err := waitPort(p); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		targets = append(targets, t)
	}
	fmt.Printf("# bench/router: %d cores (%s), wrk -t%d -c%d -d%s, 4 Go backends, body 13 bytes; machine shared with other work\n",
		runtime.NumCPU(), runtime.GOARCH, threads, conns, d)
	fmt.Printf("# %d interleaved rounds per scenario, each starting with the next proxy: the median round is shown; a ratio is the median of the rounds' ratios to the nginx of the same balance\n", rounds)
	for _, sc := range strings.Split(scen, ",") {
		runs := map[string][]result{}
		var order []string
		for round := 0; round < rounds; round++ {
			// Each round starts with the next proxy, so that none is
			// always the one right after another's load (or right
			// after the idle pause between rounds).
			for k := range targets {
				t := targets[(k+round)%len(targets)]
				port, scheme := t.http, "http"
				var extra []string
				switch sc {
				case "http":
				case "https":
					port, scheme = t.https, "https"
				case "https-new":
					port, scheme = t.https, "https"
					extra = []string{"-H", "Connection: close"}
				default:
					return fmt.Errorf("unknown scenario %q", sc)
				}
				if port == 0 {
					continue
				}
				// Check routing works before measuring.
				if err := probe(scheme, port); err != nil {
					return fmt.Errorf("%s %s: %w", t.name, sc, err)
				}
				url := fmt.Sprintf("%s://localhost:%d/", scheme, port)
				args := append([]string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", d.String(), "--latency", "-H", "Host: " + host}, extra...)
				if round == 0 { // warm up
					exec.Command("wrk", append(append([]string{}, args[:4]...), "-d", "2s", "-H", "Host: "+host, url)...).Run()
					order = append(order, t.name)
				}
				cpu0, back0, idle0 := t.cpu(), cpuOf(backendProcs), idleTime()
				wrk := exec.Command("wrk", append(args, url)...)
				out, err := wrk.CombinedOutput()
				if err != nil {
					return fmt.Errorf("wrk %s %s: %v\n%s", t.name, sc, err, out)
				}
				res := parseWrk(string(out))
				res.name = t.name
				if reqs := res.rps * d.Seconds(); reqs > 0 {
					if t.name != "direct" {
						res.cpuPerReq = time.Duration(float64(t.cpu()-cpu0) / reqs)
					}
					res.backendPerReq = time.Duration(float64(cpuOf(backendProcs)-back0) / reqs)
					ps := wrk.ProcessState
					res.wrkPerReq = time.Duration(float64(ps.UserTime()+ps.SystemTime()) / reqs)
				}
				res.idle = float64(idleTime()-idle0) / float64(time.Duration(runtime.NumCPU())*d)
				runs[t.name] = append(runs[t.name], res)
				if verbose {
					fmt.Fprintf(os.Stderr, "round %d %s %s: %.0f req/s p99 %s proxy %.1fµs backends %.1fµs wrk %.1fµs idle %.1f%%\n",
						round+1, sc, t.name, res.rps, res.p99, float64(res.cpuPerReq)/1e3, float64(res.backendPerReq)/1e3, float64(res.wrkPerReq)/1e3, 100*res.idle)
				}
			}
		}
		var results []result
		for _, n := range order {
			m := median(runs[n])
			m.ratios = pairedRatios(runs[n], runs[refOf(n)])
			results = append(results, m)
		}
		printResults(sc, results)
		headToHead(runs, order)
	}
	return nil
}

// refOf is the proxy a proxy is compared with: the nginx of its balance.
func refOf(name string) string {
	if strings.HasSuffix(name, "-p2c") {
		return "nginx-p2c"
	}
	return "nginx"
}

// pairedRatios compares rs with ref round by round (the two ran a few
// seconds apart, under the same load from elsewhere) and returns the
// median of each ratio: requests/s, p99, CPU per request. Zero where
// there is no reference.
func pairedRatios(rs, ref []result) [3]float64 {
	var out [3]float64
	for k := range out {
		out[k] = medianOf(roundRatios(rs, ref, k))
	}
	return out
}

// roundRatios is, round by round, rs's figure k over ref's: 0 requests/s,
// 1 p99, 2 CPU per request. Rounds where either is missing are left out;
// nil when the two did not run the same rounds.
func roundRatios(rs, ref []result, k int) []float64 {
	if len(ref) != len(rs) {
		return nil
	}
	var rr []float64
	for i := range rs {
		var a, b float64
		switch k {
		case 0:
			a, b = rs[i].rps, ref[i].rps
		case 1:
			a, b = float64(rs[i].p99), float64(ref[i].p99)
		case 2:
			a, b = float64(rs[i].cpuPerReq), float64(ref[i].cpuPerReq)
		}
		if a > 0 && b > 0 {
			rr = append(rr, a/b)
		}
	}
	return rr
}

// median is the run with the median throughput (its latencies with it),
// plus the errors of all runs.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	m := s[len(s)/2]
	m.errors, m.non2x = 0, 0
	for _, r := range rs {
		m.errors += r.errors
		m.non2x += r.non2x
	}
	return m
}

// cpu is the CPU time (user + system) used so far by the target's
// processes: every process in their process groups (nginx's workers,
// too).
func (t *target) cpu() time.Duration { return cpuOf(t.procs) }

// cpuOf is the CPU time (user + system) used so far by every process in
// the process groups of procs.
func cpuOf(procs []*proc) time.Duration {
	groups := map[int]bool{}
	for _, p := range procs {
		if p.cmd != nil && p.cmd.Process != nil {
			groups[p.cmd.Process.Pid] = true
		}
	}
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		if !groups[pgrp] {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// idleTime is the machine's idle CPU time so far, all CPUs (the idle and
// iowait columns of /proc/stat's first line).
func idleTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 {
		return 0
	}
	idle, _ := strconv.ParseInt(f[4], 10, 64)
	iowait, _ := strconv.ParseInt(f[5], 10, 64)
	return time.Duration(idle+iowait) * time.Second / 100 // USER_HZ
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func probe(scheme string, port int) error {
	tr := &http.Transport{TLSClientConfig: insecureTLS()}
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s://localhost:%d/", scheme, port), nil)
	req.Host = host
	res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "hello, world\n" {
		return fmt.Errorf("probe: %d %q", res.StatusCode, b)
	}
	return nil
}

type result struct {
	name          string
	rps           float64
	cpuPerReq     time.Duration // proxy CPU time (user+system, all its processes) per request
	backendPerReq time.Duration // the four backends' CPU time per request
	wrkPerReq     time.Duration // wrk's CPU time per request
	idle          float64       // share of the machine's CPU time left idle during the run
	ratios        [3]float64    // medians of the rounds' ratios to the reference: requests/s, p99, CPU per request
	p50, p99      time.Duration
	errors, non2x int
}

var (
	reRPS  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reP    = regexp.MustCompile(`\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
	reErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2 = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func parseWrk(out string) result {
	var r result
	if m := reRPS.FindStringSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range reP.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := reErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	if m := reNon2.FindStringSubmatch(out); m != nil {
		r.non2x, _ = strconv.Atoi(m[1])
	}
	return r
}

// printResults prints one scenario's table: the random-balance proxies
// first, then the p2c ones, each compared with the nginx of its balance.
func printResults(sc string, rs []result) {
	p2c := func(r result) bool { return strings.HasSuffix(r.name, "-p2c") }
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b result) int {
		switch {
		case p2c(a) == p2c(b):
			return 0
		case p2c(a):
			return 1
		}
		return -1
	})
	fmt.Printf("\n## %s\n\n| proxy | requests/s | p50 | p99 | ×nginx req/s | ×nginx p99 | proxy CPU/request | ×nginx CPU | backends CPU/request | wrk CPU/request | idle | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", sc)
	for _, r := range rs {
		var rt [3]string
		for k, v := range r.ratios {
			if v > 0 {
				rt[k] = fmt.Sprintf("%.2f", v)
			}
		}
		ratio, pr, cr := rt[0], rt[1], rt[2]
		cpu := "–"
		if r.cpuPerReq > 0 {
			cpu = fmt.Sprintf("%.1fµs", float64(r.cpuPerReq)/1e3)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %.1fµs | %.1fµs | %.0f%% | %d |\n", r.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), ratio, pr, cpu, cr,
			float64(r.backendPerReq)/1e3, float64(r.wrkPerReq)/1e3, 100*r.idle, r.errors+r.non2x)
	}
}

// writeCert issues a certificate for the bench host from a local CA.
func writeCert(dir string) (certFile, keyFile, combined string, err error) {
	ca, err := pki.Open(filepath.Join(dir, "pki"), "bench CA")
	if err != nil {
		return
	}
	c, err := ca.Issue([]string{host, "localhost"}, 24*time.Hour)
	if err != nil {
		return
	}
	var certPEM []byte
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	certFile, keyFile, combined = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "combined.pem")
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM, combined: append(append([]byte{}, certPEM...), keyPEM...)} {
		if err = os.WriteFile(f, b, 0o600); err != nil {
			return
		}
	}
	return
}

func startNginx(dir string, t *target, backends []string, cert, key string, p2c bool) error {
	d := filepath.Join(dir, t.name)
	balance := "random"
	if p2c {
		balance = "random two least_conn"
	}
	os.MkdirAll(d, 0o755)
	var ups strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&ups, "    server %s;\n", b)
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log %[1]s/access.log combined buffer=64k flush=1s;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream app {
    %[8]s;
%[2]s    keepalive 128;
  }
  server {
    listen 127.0.0.1:%[3]d;
    listen 127.0.0.1:%[4]d ssl http2;
    ssl_certificate %[5]s;
    ssl_certificate_key %[6]s;
    ssl_protocols TLSv1.2 TLSv1.3;
    server_name %[7]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-Start $msec;
      proxy_set_header Via "1.1 nginx";
      proxy_buffering off;
    }
  }
}
`, d, ups.String(), t.http, t.https, cert, key, host, balance)
	cf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := start(dir, t.name, "nginx", "-p", d, "-c", cf, "-g", "daemon off;")
	t.procs = append(t.procs, p)
	return err
}

// startHAProxy starts HAProxy routing the bench host. With logged, it
// also does what nginx and Skiff's router do per request here: a log line
// for each (HTTP log format, into an in-memory ring, HAProxy's buffered
// log that needs no syslog daemon) and the request id and forwarded-proto
// headers.
func startHAProxy(dir string, t *target, backends []string, combined string, logged, p2c bool) error {
	// HAProxy's "random" is random(2), power-of-two-choices; random(1)
	// is the plain random balance.
	balance := "random(1)"
	if p2c {
		balance = "random(2)"
	}
	var srv strings.Builder
	for i, b := range backends {
		fmt.Fprintf(&srv, "  server s%d %s\n", i, b)
	}
	ring, global, defaults, fe := "", "", "", ""
	if logged {
		ring = "ring logs\n  format rfc5424\n  maxlen 2048\n  size 4194304\n"
		global = "  log ring@logs local0\n"
		defaults = "  log global\n  option httplog\n"
		fe = "  unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n  http-request set-header X-Request-Id %[unique-id]\n  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }\n  http-request set-header X-Forwarded-Proto https if { ssl_fc }\n  http-request set-header X-Forwarded-Port %[dst_port]\n  http-request set-header X-Request-Start %[date(0,ms)]\n  http-request set-header Via \"1.1 haproxy\"\n"
	}
	conf := fmt.Sprintf(`%sglobal
  maxconn 8000
  nbthread 2
%sdefaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
%sfrontend fe
  bind 127.0.0.1:%d
  bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1 ssl-min-ver TLSv1.2
  option forwardfor
%s  use_backend app if { hdr(host) -i %s }
backend app
  balance %s
  http-reuse always
%s`, ring, global, defaults, t.http, t.https, combined, fe, host, balance, srv.String())
	cf := filepath.Join(dir, t.name+".cfg")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := start(dir, t.name, "haproxy", "-db", "-f", cf)
	t.procs = append(t.procs, p)
	return err
}

func startCaddy(dir string, t *target, backends []string, cert, key string, p2c bool) error {
	balance := "random"
	if p2c {
		balance = "random_choose 2"
	}
	conf := fmt.Sprintf(`{
  admin off
  auto_https off
  http_port %[1]d
  https_port %[2]d
}
http://%[3]s:%[1]d {
  reverse_proxy %[4]s {
    lb_policy %[7]s
  }
}
https://%[3]s:%[2]d, https://localhost:%[2]d {
  tls %[5]s %[6]s
  @app host %[3]s
  reverse_proxy @app %[4]s {
    lb_policy %[7]s
  }
}
`, t.http, t.https, host, strings.Join(backends, " "), cert, key, balance)
	cf := filepath.Join(dir, t.name+".Caddyfile")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := start(dir, t.name, "caddy", "run", "--adapter", "caddyfile", "--config", cf)
	t.procs = append(t.procs, p)
	return err
}

func startSkiff(dir string, t *target, bin string, backends []string, cert, key string, p2c bool) error {
	balance := "random"
	if p2c {
		balance = "p2c"
	}
	type be struct {
		Name string `json:"name"`
		Addr string `json:"addr"`
	}
	var bs []be
	for i, b := range backends {
		bs = append(bs, be{fmt.Sprintf("web.%d", i+1), b})
	}
	table := map[string]any{
		"routes":       []any{map[string]any{"app": "app", "app_id": "app", "hosts": []string{host}, "backends": bs, "balance": balance}},
		"certificates": []any{map[string]string{"cert": cert, "key": key}},
	}
	b, _ := json.MarshalIndent(table, "", "  ")
	tf := filepath.Join(dir, "table-"+t.name+".json")
	if err := os.WriteFile(tf, b, 0o644); err != nil {
		return err
	}
	mport := freePort()
	// Router log lines go to a file, as they would to logplex; metrics on.
	p, err := start(dir, t.name, bin, "router", "--table", tf,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", t.http), "--https-addr", fmt.Sprintf("127.0.0.1:%d", t.https),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", mport))
	t.procs = append(t.procs, p)
	return err
}

// insecureTLS is for the routing probe only: the bench CA is not trusted.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
