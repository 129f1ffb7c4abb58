// Command build benchmarks builds from source: the cold build of a small
// Go web app (a multi-stage Dockerfile on a busybox base imported with
// stack:import), the warm rebuild of the same source, the warm rebuild
// after a one-file change, and `git push` → release → web dyno up → the
// new release answering through the router. Its
// reference point, measured in the same run, is one bare `runc run` of
// the busybox root filesystem running `true`: what a single RUN step costs
// at the least, so a warm one-file rebuild (which reruns one COPY, one RUN
// and the final COPY --from) can be read as a multiple of it.
//
// It runs as root (runc), starts its own `skiff server` with dynos on the
// bridge skb2b1 (10.213.229.0/24), and removes everything it made.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/bench/skiffserver"
	"github.com/skiffhq/skiff/internal/build/buildtest"
	"github.com/skiffhq/skiff/internal/image"
)

const dockerfile = `FROM busybox AS build
WORKDIR /out
COPY web ./
RUN test -x web && cat web > web.check && rm web.check
COPY static/ ./static/
RUN ls static > static.list
FROM scratch
COPY --from=build /out /app
CMD ["/app/web"]
`

type options struct {
	skiff   string
	repeats int
	workdir string
	bridge  string
	subnet  string
}

func main() {
	var o options
	flag.StringVar(&o.skiff, "skiff", "", "skiff binary (default: build ./cmd/skiff)")
	flag.IntVar(&o.repeats, "repeats", 3, "runs of each scenario")
	flag.StringVar(&o.workdir, "workdir", os.TempDir(), "where the temporary directory is made")
	flag.StringVar(&o.bridge, "bridge", "skb2b1", "dyno bridge of the benchmark's server")
	flag.StringVar(&o.subnet, "subnet", "10.213.229.0/24", "dyno subnet of the benchmark's server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/build:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "# "+format+"\n", a...) }

type client struct {
	url, token string
}

func (c *client) do(method, path, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func run(ctx context.Context, o options) error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: builds and dynos run in runc containers")
	}
	tmp, err := os.MkdirTemp(o.workdir, "skiff-bench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := o.skiff
	if bin == "" {
		logf("building ./cmd/skiff")
		if bin, err = skiffserver.Build(ctx, tmp); err != nil {
			return err
		}
	}
	webBin, err := goBuild(ctx, tmp)
	if err != nil {
		return err
	}
	rootfs, err := buildtest.BusyboxTar()
	if err != nil {
		return err
	}

	bare, err := measureBareRunc(ctx, tmp, rootfs, o.repeats*3)
	if err != nil {
		return fmt.Errorf("bare runc reference: %w", err)
	}

	srv, err := skiffserver.Start(ctx, skiffserver.Options{Binary: bin, Dir: tmp, DataDir: filepath.Join(tmp, "data"),
		Args: []string{"--dynos=true", "--dyno-bridge", o.bridge, "--dyno-subnet", o.subnet, "--rate-limit", "1000000",
			"--router-http-addr", "127.0.0.1:0", "--router-https-addr", "off", "--base-domain", "localhost"},
		StartTimeout: time.Minute, StopTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			logf("stopping the server: %v", err)
		}
	}()
	c := &client{url: srv.URL, token: srv.Token}
	if err := c.do("PUT", "/stacks/busybox/rootfs", "application/x-tar", bytes.NewReader(rootfs), nil); err != nil {
		return err
	}
	if err := c.do("POST", "/apps", "application/json", strings.NewReader(`{"name":"bench-build"}`), nil); err != nil {
		return err
	}
	src := filepath.Join(tmp, "src")
	if err := writeSource(src, webBin, 0); err != nil {
		return err
	}

	if srv.Router == "" {
		return errors.New("the server printed no router address")
	}
	var cold, warm, change, push, pushUp, pushServe []time.Duration
	for i := range o.repeats {
		if err := ctx.Err(); err != nil {
			return err
		}
		logf("builds: run %d of %d", i+1, o.repeats)
		if err := c.do("DELETE", "/apps/bench-build/build-cache", "", nil, nil); err != nil {
			return err
		}
		d, err := timeBuild(c, src)
		if err != nil {
			return fmt.Errorf("cold build: %w", err)
		}
		cold = append(cold, d)
		if d, err = timeBuild(c, src); err != nil {
			return fmt.Errorf("warm build: %w", err)
		}
		warm = append(warm, d)
		if err := writeSource(src, webBin, i+1); err != nil {
			return err
		}
		if d, err = timeBuild(c, src); err != nil {
			return fmt.Errorf("one-file change: %w", err)
		}
		change = append(change, d)
	}

	repo := filepath.Join(tmp, "repo")
	if err := writeSource(repo, webBin, 100); err != nil {
		return err
	}
	if err := git(repo, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	remote := strings.Replace(srv.URL, "http://", "http://bench:"+srv.Token+"@", 1) + "/bench-build.git"
	for i := range o.repeats {
		logf("git push: run %d of %d", i+1, o.repeats)
		if err := writeSource(repo, webBin, 200+i); err != nil {
			return err
		}
		if err := git(repo, "add", "-A"); err != nil {
			return err
		}
		if err := git(repo, "commit", "-q", "-m", fmt.Sprint("change ", i)); err != nil {
			return err
		}
		start := time.Now()
		if err := git(repo, "push", "-q", remote, "main"); err != nil {
			return err
		}
		push = append(push, time.Since(start))
		var rels []struct{ Version int }
		if err := c.do("GET", "/apps/bench-build/releases", "", nil, &rels); err != nil {
			return err
		}
		// The dyno's state (API) and the router's answer are watched at
		// once: each is timed from the push's start.
		up := make(chan error, 1)
		var upAt time.Duration
		go func() {
			err := waitUp(ctx, c, rels[len(rels)-1].Version)
			upAt = time.Since(start)
			up <- err
		}()
		serveErr := waitServing(ctx, srv.Router, "bench-build.localhost", fmt.Sprintf("version %d", 200+i))
		serveAt := time.Since(start)
		if err := <-up; err != nil {
			return err
		}
		if serveErr != nil {
			return serveErr
		}
		pushUp = append(pushUp, upAt)
		pushServe = append(pushServe, serveAt)
	}

	ref := median(bare)
	fmt.Printf("bench/build: %d runs each; machine shared with other work (figures are noisy)\n\n", o.repeats)
	fmt.Printf("| scenario | median | min | max | ÷ bare runc step |\n|---|---|---|---|---|\n")
	row := func(name string, ds []time.Duration) {
		fmt.Printf("| %s | %s | %s | %s | %.1f |\n", name, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)),
			float64(median(ds))/float64(ref))
	}
	row("reference: bare `runc run` of busybox `true`", bare)
	row("cold build (cache cleared): 9 steps, 5 layers made (2 RUN)", cold)
	row("warm rebuild, same source: every layer from the cache", warm)
	row("warm rebuild, one file changed: COPY, RUN, COPY --from rerun", change)
	row("`git push` → release created (push returns)", push)
	row("`git push` → web.1 up on the new release", pushUp)
	row("`git push` → the new release answers through the router", pushServe)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// webApp answers with the content of the app's static/index.html, read
// at each request, so a push that changes it shows through the router.
const webApp = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile("/app/static/index.html")
		w.Write(b)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		os.Exit(1)
	}
}
`

// waitServing asks the router for host's / until the answer contains want.
func waitServing(ctx context.Context, router, host, want string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "GET", router+"/", nil)
		if err != nil {
			return err
		}
		req.Host = host
		if resp, err := c.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), want) {
				return nil
			}
			last = fmt.Sprintf("%s %.80q", resp.Status, b)
		} else {
			last = err.Error()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered %q through the router (last: %s)", host, want, last)
}

// goBuild compiles the test app statically.
func goBuild(ctx context.Context, dir string) (string, error) {
	srcDir := filepath.Join(dir, "webapp")
	if err := os.MkdirAll(srcDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(srcDir, "main.go"), []byte(webApp), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(srcDir, "go.mod"), []byte("module webapp\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "web")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// writeSource writes the app's source; n changes one static file.
func writeSource(dir, webBin string, n int) error {
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		return err
	}
	bin, err := os.ReadFile(webBin)
	if err != nil {
		return err
	}
	files := map[string][]byte{"Dockerfile": []byte(dockerfile), "web": bin,
		"static/index.html": []byte(fmt.Sprintf("<h1>version %d</h1>\n", n)), "static/style.css": []byte("h1 { color: teal }\n")}
	for name, b := range files {
		mode := os.FileMode(0o644)
		if name == "web" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			return err
		}
	}
	return nil
}

// timeBuild posts dir as a tarball and waits for the build's end (its
// output stream ends then); it fails unless the build succeeded.
func timeBuild(c *client, dir string) (time.Duration, error) {
	var body bytes.Buffer
	tar := exec.Command("tar", "-C", dir, "-czf", "-", ".")
	tar.Stdout = &body
	if err := tar.Run(); err != nil {
		return 0, err
	}
	start := time.Now()
	var b struct {
		ID, Status      string
		OutputStreamURL string `json:"output_stream_url"`
	}
	if err := c.do("POST", "/apps/bench-build/builds", "application/gzip", &body, &b); err != nil {
		return 0, err
	}
	resp, err := http.Get(b.OutputStreamURL)
	if err != nil {
		return 0, err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err := c.do("GET", "/apps/bench-build/builds/"+b.ID, "", nil, &b); err != nil {
		return 0, err
	}
	if b.Status != "succeeded" {
		return 0, fmt.Errorf("build %s: %s\n%s", b.ID, b.Status, out)
	}
	return d, nil
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// waitUp waits until web.1 is up on release version.
func waitUp(ctx context.Context, c *client, version int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var dynos []struct {
			Name, State string
			Release     struct{ Version int }
		}
		if err := c.do("GET", "/apps/bench-build/dynos", "", nil, &dynos); err != nil {
			return err
		}
		for _, d := range dynos {
			if d.Name == "web.1" && d.State == "up" && d.Release.Version == version {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("web.1 not up on v%d", version)
}

// measureBareRunc times `runc run` of the busybox root filesystem running
// `true`: container setup, the command and teardown, nothing else.
func measureBareRunc(ctx context.Context, tmp string, rootfs []byte, n int) ([]time.Duration, error) {
	dir := filepath.Join(tmp, "bare")
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := image.Unpack(bytes.NewReader(rootfs), root); err != nil {
		return nil, err
	}
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/sh", "-c", "true"}
	spec["root"] = map[string]any{"path": "rootfs", "readonly": true}
	if b, err = json.Marshal(spec); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state")
	var out []time.Duration
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id := fmt.Sprintf("skbd-bench-%d-%d", os.Getpid(), i)
		start := time.Now()
		cmd := exec.Command("runc", "--root", state, "run", "--bundle", dir, id)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runc run: %v: %s", err, b)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}
