package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/api"
	"github.com/skiffhq/skiff/internal/build/buildtest"
	"github.com/skiffhq/skiff/internal/image/imagetest"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

// TestMain lets the test binary stand in for `skiff git-hook`, the
// pre-receive hook of the repositories the git tests push to.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "git-hook" {
		os.Exit(RunHook(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// server is the Platform API with a build service over a real store.
type server struct {
	*env
	t     *testing.T
	p     *platform.Platform
	svc   *Service
	url   string
	token string
	admin *platform.Account
}

func newServer(t *testing.T, opts ...func(*Config)) *server {
	t.Helper()
	e := newEnv(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "skiff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.NewBus())
	ctx := context.Background()
	admin, auth, err := p.EnsureAdmin(ctx, "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PutStack(ctx, admin, "busybox", e.busybox); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Platform: p, Builder: e.b, Dir: filepath.Join(t.TempDir(), "builds"), URL: url, HookBinary: exe}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(p, api.Config{Builds: svc})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsGitPath(r.URL.Path) {
			svc.ServeGit(w, r)
			return
		}
		a.ServeHTTP(w, r)
	}))
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		svc.Close()
	})
	s := &server{env: e, t: t, p: p, svc: svc, url: url, token: auth.Secret, admin: admin}
	return s
}

func (s *server) createApp(name string) {
	s.t.Helper()
	if _, err := s.p.CreateApp(context.Background(), s.admin, platform.AppSpec{Name: name}); err != nil {
		s.t.Fatal(err)
	}
}

// call makes an API request and decodes a JSON answer into out.
func (s *server) call(method, path, ctype string, body io.Reader, want int, out any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, body)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type buildResp struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	OutputStreamURL string `json:"output_stream_url"`
	Release         *struct {
		ID string `json:"id"`
	} `json:"release"`
	SourceBlob struct {
		Checksum *string `json:"checksum"`
		Version  *string `json:"version"`
	} `json:"source_blob"`
}

// output reads a build's output_stream_url to its end (the build's end).
func (s *server) output(b buildResp) string {
	s.t.Helper()
	resp, err := http.Get(b.OutputStreamURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(out)
}

func (s *server) build(app string, b buildResp) buildResp {
	s.t.Helper()
	var got buildResp
	s.call("GET", "/apps/"+app+"/builds/"+b.ID, "", nil, http.StatusOK, &got)
	return got
}

func (s *server) releases(app string) []*platform.Release {
	s.t.Helper()
	l, err := s.p.Releases(context.Background(), s.admin, app, store.Page{Field: "version", Max: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	return l.Releases
}

// buildTar uploads files as a tarball to POST /apps/{app}/builds (app may
// carry a query), waits for the build and checks its status.
func (s *server) buildTar(app string, files map[string]string, status string) (buildResp, string) {
	s.t.Helper()
	name, query, _ := strings.Cut(app, "?")
	path := "/apps/" + name + "/builds"
	if query != "" {
		path += "?" + query
	}
	var b buildResp
	s.call("POST", path, "application/gzip", bytes.NewReader(tarball(s.t, files)), http.StatusCreated, &b)
	out := s.output(b)
	if got := s.build(name, b); got.Status != status {
		s.t.Fatalf("build = %+v, want %s\n%s", got, status, out)
	}
	return b, out
}

// upload stores files as a tarball in a new upload slot of app (POST
// /apps/{app}/sources, then PUT) and returns its get_url.
func (s *server) upload(app string, files map[string]string) string {
	s.t.Helper()
	var src struct {
		SourceBlob struct {
			GetURL string `json:"get_url"`
			PutURL string `json:"put_url"`
		} `json:"source_blob"`
	}
	s.call("POST", "/apps/"+app+"/sources", "", nil, http.StatusCreated, &src)
	req, _ := http.NewRequest("PUT", src.SourceBlob.PutURL, bytes.NewReader(tarball(s.t, files)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		s.t.Fatalf("PUT source: %v %v", resp, err)
	}
	return src.SourceBlob.GetURL
}

// tarball makes a gzipped tarball of files (name → content).
func tarball(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// serveTarballs serves tarballs by path.
func serveTarballs(t *testing.T, blobs map[string][]byte) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestBuildsAPI(t *testing.T) {
	s := newServer(t)
	s.createApp("tarapp")
	app := map[string]string{
		"Dockerfile": "FROM busybox\nWORKDIR /app\nCOPY . .\nRUN echo compiled > built.txt\nCMD [\"/bin/sh\", \"-c\", \"cat /app/built.txt\"]\n",
		"main.txt":   "v1",
	}
	broken := map[string]string{"Dockerfile": "FROM busybox\nRUN echo about to fail && exit 7\n"}
	syntax := map[string]string{"Dockerfile": "FROM busybox\nENV lonely\n"}
	unknown := map[string]string{"Dockerfile": "FROM busybox\nFROBNICATE now\n"}
	app2 := map[string]string{"Dockerfile": app["Dockerfile"], "main.txt": "v2"}
	base := serveTarballs(t, map[string][]byte{
		"/app.tgz": tarball(t, app), "/app2.tgz": tarball(t, app2), "/broken.tgz": tarball(t, broken),
		"/syntax.tgz": tarball(t, syntax), "/unknown.tgz": tarball(t, unknown),
		"/escape.tgz": tarball(t, map[string]string{"Dockerfile": "FROM busybox\n", "../../escape": "x"}),
	})
	create := func(path, version string) buildResp {
		var b buildResp
		body := fmt.Sprintf(`{"source_blob":{"url":%q,"version":%q}}`, base+path, version)
		s.call("POST", "/apps/tarapp/builds", "application/json", strings.NewReader(body), http.StatusCreated, &b)
		if b.Status != "pending" || !strings.HasPrefix(b.OutputStreamURL, s.url+"/build-output/") {
			t.Fatalf("created build = %+v", b)
		}
		return b
	}

	b := create("/app.tgz", "0123456789abcdef")
	out := s.output(b)
	got := s.build("tarapp", b)
	if got.Status != "succeeded" || got.Release == nil || got.SourceBlob.Checksum == nil {
		t.Fatalf("build = %+v\n%s", got, out)
	}
	for _, want := range []string{"Step 1/5 : FROM busybox", "Step 4/5 : RUN echo compiled", "Successfully built", "Released v"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if again := s.output(b); again != out {
		t.Errorf("the output read again differs:\n%s\n---\n%s", again, out)
	}
	rels := s.releases("tarapp")
	last := rels[len(rels)-1]
	if last.ID != got.Release.ID || last.Description != "Deploy 01234567" || last.Processes["web"].Image == "" {
		t.Errorf("release = %+v", last)
	}
	if v, ok := s.fileIn(last.Processes["web"].Image, "app/built.txt"); !ok || v != "compiled\n" {
		t.Errorf("built image's /app/built.txt = %q, %v", v, ok)
	}

	// A second build of changed source reuses FROM's, WORKDIR's… layers up
	// to the COPY that sees the change; the same source reuses all.
	b = create("/app.tgz", "1111111111")
	if out := s.output(b); strings.Count(out, "Using cache") != 2 {
		t.Errorf("rebuild of the same source: %d cache hits, want 2 (COPY, RUN)\n%s", strings.Count(out, "Using cache"), out)
	}
	b = create("/app2.tgz", "2222222222")
	if out := s.output(b); strings.Count(out, "Using cache") != 0 {
		t.Errorf("rebuild after a change: %d cache hits, want 0\n%s", strings.Count(out, "Using cache"), out)
	}
	s.call("DELETE", "/apps/tarapp/build-cache", "", nil, http.StatusAccepted, nil)
	b = create("/app2.tgz", "3333333333")
	if out := s.output(b); strings.Contains(out, "Using cache") {
		t.Errorf("build after clearing the cache used it\n%s", out)
	}

	// Failing builds: their message in the stream, no release.
	before := len(s.releases("tarapp"))
	for path, want := range map[string]string{
		"/broken.tgz":  "Dockerfile line 2: The command '/bin/sh -c echo about to fail && exit 7' returned a non-zero code: 7",
		"/syntax.tgz":  "line 2: ENV must have two arguments",
		"/unknown.tgz": "Dockerfile line 2: unknown instruction FROBNICATE",
		"/escape.tgz":  "the source is not a usable tarball",
		"/missing.tgz": "404 Not Found",
	} {
		b := create(path, "")
		out := s.output(b)
		if got := s.build("tarapp", b); got.Status != "failed" || got.Release != nil {
			t.Errorf("%s: build = %+v", path, got)
		}
		if !strings.Contains(out, "Build failed") || !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", path, want, out)
		}
	}
	if n := len(s.releases("tarapp")); n != before {
		t.Errorf("failed builds made %d releases", n-before)
	}

	// The skiff client's path: an upload slot, then a build of its URL;
	// and a tarball posted directly.
	var up buildResp
	s.call("POST", "/apps/tarapp/builds", "application/json",
		strings.NewReader(fmt.Sprintf(`{"source_blob":{"url":%q}}`, s.upload("tarapp", app))), http.StatusCreated, &up)
	if out := s.output(up); s.build("tarapp", up).Status != "succeeded" {
		t.Errorf("build of an uploaded source failed:\n%s", out)
	}
	s.call("POST", "/apps/tarapp/builds?version=abc", "application/gzip", bytes.NewReader(tarball(t, app)), http.StatusCreated, &up)
	if out := s.output(up); s.build("tarapp", up).Status != "succeeded" {
		t.Errorf("build of a posted tarball failed:\n%s", out)
	}
	s.call("POST", "/apps/tarapp/builds", "application/x-tar", strings.NewReader("not a tarball"), http.StatusUnprocessableEntity, nil)
	s.call("POST", "/apps/tarapp/builds", "application/json", strings.NewReader(`{"source_blob":{"url":"file:///etc/passwd"}}`), http.StatusUnprocessableEntity, nil)

	var list []buildResp
	s.call("GET", "/apps/tarapp/builds", "", nil, http.StatusOK, &list)
	if len(list) != 11 {
		t.Errorf("listed %d builds, want 11", len(list))
	}
}

func TestHerokuYML(t *testing.T) {
	s := newServer(t)
	s.createApp("ymlapp")
	files := map[string]string{
		"heroku.yml": `build:
  docker:
    web: Dockerfile
    worker: worker/Dockerfile
  config:
    GREETING: hello
release:
  image: web
  command:
    - ./release.sh
    - now
run:
  web: /app/web.sh
  worker:
    command:
      - /work/run.sh
    image: worker
  clock: /app/clock.sh
`,
		"Dockerfile":        "FROM busybox\nARG GREETING\nWORKDIR /app\nCOPY *.sh ./\nRUN echo $GREETING > greeting\n",
		"web.sh":            "#!/bin/sh\necho web\n",
		"release.sh":        "#!/bin/sh\necho release\n",
		"worker/Dockerfile": "FROM busybox\nCOPY run.sh /work/\n",
		"worker/run.sh":     "#!/bin/sh\necho worker\n",
	}
	s.buildTar("ymlapp?version=feedface00", files, "succeeded")
	rels := s.releases("ymlapp")
	rel := rels[len(rels)-1]
	web, worker := rel.Processes["web"], rel.Processes["worker"]
	if web.Command != "/app/web.sh" || worker.Command != "/work/run.sh" || web.Image == worker.Image {
		t.Errorf("processes = %+v", rel.Processes)
	}
	if r := rel.Processes["release"]; r.Image != web.Image || r.Command != "./release.sh now" {
		t.Errorf("release process = %+v", r)
	}
	if c := rel.Processes["clock"]; c.Image != web.Image || c.Command != "/app/clock.sh" {
		t.Errorf("clock process = %+v", c)
	}
	if rel.Status != "pending" || rel.Description != "Deploy feedface" {
		t.Errorf("release %+v: want pending (the release phase runs first), Deploy feedface", rel)
	}
	if v, _ := s.fileIn(web.Image, "app/greeting"); v != "hello\n" {
		t.Errorf("build.config did not reach ARG: /app/greeting = %q", v)
	}
	if _, ok := s.fileIn(worker.Image, "work/run.sh"); !ok {
		t.Error("worker image lacks /work/run.sh (its context is worker/)")
	}

	for name, tc := range map[string]struct{ yml, want string }{
		"setup":        {"setup:\n  addons:\n  - plan: heroku-postgresql\nbuild:\n  docker:\n    web: Dockerfile\n", "setup section"},
		"no docker":    {"run:\n  web: x\n", "build.docker names no Dockerfile"},
		"missing file": {"build:\n  docker:\n    web: nothere/Dockerfile\n", "nothere/Dockerfile: not found"},
		"bad yaml":     {"build: [\n", "heroku.yml"},
		"bad image":    {"build:\n  docker:\n    web: Dockerfile\nrun:\n  x:\n    command: y\n    image: nope\n", `image "nope" is not built`},
	} {
		var b buildResp
		s.call("POST", "/apps/ymlapp/builds", "application/gzip", bytes.NewReader(tarball(t, map[string]string{"heroku.yml": tc.yml, "Dockerfile": "FROM busybox\n"})), http.StatusCreated, &b)
		if out := s.output(b); !strings.Contains(out, tc.want) || s.build("ymlapp", b).Status != "failed" {
			t.Errorf("%s: want a failed build with %q:\n%s", name, tc.want, out)
		}
	}
}

// gitRun runs git in dir and returns its combined output.
func gitRun(t *testing.T, dir string, ok bool, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "HOME="+dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if (err == nil) != ok {
		t.Fatalf("git %s: %v (want success %v)\n%s", strings.Join(args, " "), err, ok, out)
	}
	return string(out)
}

func TestGitPush(t *testing.T) {
	s := newServer(t)
	s.createApp("gitapp")
	repo := t.TempDir()
	bin, err := os.ReadFile(imagetest.GoBinary(t, buildtest.WebApp))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("web", string(bin), 0o755)
	write("Dockerfile", `FROM busybox AS build
WORKDIR /out
COPY web ./
RUN test -x /out/web && echo checked the binary
FROM scratch
COPY --from=build /out/web /web
CMD ["/web"]
`, 0o644)
	gitRun(t, repo, true, "init", "-q", "-b", "main")
	gitRun(t, repo, true, "add", ".")
	gitRun(t, repo, true, "commit", "-q", "-m", "first")
	remote := strings.Replace(s.url, "http://", "http://git:"+s.token+"@", 1) + "/gitapp.git"

	out := gitRun(t, repo, true, "push", remote, "main")
	for _, want := range []string{"remote: Step 4/7 : RUN test -x /out/web", "remote: checked the binary", "remote: === Released v"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	commit := strings.TrimSpace(gitRun(t, repo, true, "rev-parse", "HEAD"))
	rels := s.releases("gitapp")
	rel := rels[len(rels)-1]
	if rel.Description != "Deploy "+commit[:8] || rel.Processes["web"].Image == "" {
		t.Fatalf("release = %+v", rel)
	}
	if _, ok := s.fileIn(rel.Processes["web"].Image, "web"); !ok {
		t.Error("the image lacks /web")
	}

	// The same commit again: git has nothing to send, no release.
	n := len(s.releases("gitapp"))
	out = gitRun(t, repo, true, "push", remote, "main")
	if !strings.Contains(out, "Everything up-to-date") || len(s.releases("gitapp")) != n {
		t.Errorf("second push of the same commit:\n%s", out)
	}
	// Another branch is not built; the deployed commit pushed to master
	// is built by nobody: the server knows that version is released.
	if out := gitRun(t, repo, true, "push", remote, "main:refs/heads/other"); !strings.Contains(out, "skipping the build") {
		t.Errorf("push to another branch:\n%s", out)
	}
	if out := gitRun(t, repo, true, "push", remote, "main:refs/heads/master"); !strings.Contains(out, "already deployed") || len(s.releases("gitapp")) != n {
		t.Errorf("push of the deployed commit to master:\n%s", out)
	}

	// A failing build fails the push and leaves the branch and the
	// release alone.
	write("Dockerfile", "FROM busybox\nRUN echo broken && false\n", 0o644)
	gitRun(t, repo, true, "commit", "-q", "-am", "break it")
	out = gitRun(t, repo, false, "push", remote, "main")
	for _, want := range []string{"remote: broken", "returned a non-zero code: 1", "pre-receive hook declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, out)
		}
	}
	if len(s.releases("gitapp")) != n {
		t.Error("a failed push made a release")
	}

	// Without the token: refused.
	bad := strings.Replace(s.url, "http://", "http://git:wrong@", 1) + "/gitapp.git"
	if out := gitRun(t, repo, false, "push", bad, "main"); !strings.Contains(out, "Authentication failed") && !strings.Contains(out, "401") {
		t.Errorf("push with a wrong token:\n%s", out)
	}
}

// TestBuildQueue: builds of one app wait for each other; builds of
// different apps wait for a free slot when Parallel are running.
func TestBuildQueue(t *testing.T) {
	s := newServer(t, func(c *Config) { c.Parallel = 1 })
	s.createApp("one")
	s.createApp("two")
	slow := tarball(t, map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 3\n"})
	start := func(app string) buildResp {
		var b buildResp
		s.call("POST", "/apps/"+app+"/builds", "application/gzip", bytes.NewReader(slow), http.StatusCreated, &b)
		return b
	}
	first, second, other := start("one"), start("one"), start("two")
	outs := map[string]string{}
	for name, b := range map[string]buildResp{"first": first, "second": second, "other": other} {
		outs[name] = s.output(b)
	}
	if strings.Contains(outs["first"], "Waiting") {
		t.Errorf("the first build waited:\n%s", outs["first"])
	}
	if !strings.Contains(outs["second"], "=== Waiting for the app's previous build to finish") {
		t.Errorf("the second build of one app did not wait for the first:\n%s", outs["second"])
	}
	if !strings.Contains(outs["other"], "=== Waiting for a free build slot (1 builds run at once)") {
		t.Errorf("another app's build did not wait for the slot:\n%s", outs["other"])
	}
	for name, b := range map[string]buildResp{"first": first, "second": second} {
		if got := s.build("one", b); got.Status != "succeeded" {
			t.Errorf("%s build: %+v", name, got)
		}
	}
	if got := s.build("two", other); got.Status != "succeeded" {
		t.Errorf("other app's build: %+v", got)
	}
}

// TestHostileSource: oversized sources are refused, and a source whose
// links point out of it builds nothing from outside.
func TestHostileSource(t *testing.T) {
	s := newServer(t, func(c *Config) { c.MaxSourceBytes = 1 << 20 })
	s.createApp("hostile")
	big := make([]byte, 2<<20)
	rand.Read(big)
	huge := tarball(t, map[string]string{"Dockerfile": "FROM busybox\n", "blob": string(big)})
	s.call("POST", "/apps/hostile/builds", "application/gzip", bytes.NewReader(huge), http.StatusUnprocessableEntity, nil)
	base := serveTarballs(t, map[string][]byte{"/huge.tgz": huge})
	var b buildResp
	s.call("POST", "/apps/hostile/builds", "application/json",
		strings.NewReader(fmt.Sprintf(`{"source_blob":{"url":%q}}`, base+"/huge.tgz")), http.StatusCreated, &b)
	if out := s.output(b); !strings.Contains(out, "1048576 bytes") || s.build("hostile", b).Status != "failed" {
		t.Errorf("huge source by URL:\n%s", out)
	}

	// A link to the host's /etc inside the source is copied as a link;
	// what COPY follows through it stays inside the context.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	df := "FROM busybox\nCOPY . /src/\nCOPY hostetc/hostname /leak\n"
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(df))})
	tw.Write([]byte(df))
	tw.WriteHeader(&tar.Header{Name: "hostetc", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777})
	tw.Close()
	zw.Close()
	s.call("POST", "/apps/hostile/builds", "application/gzip", &buf, http.StatusCreated, &b)
	out := s.output(b)
	if !strings.Contains(out, "COPY: hostetc/hostname: not found in the build context") || s.build("hostile", b).Status != "failed" {
		t.Errorf("COPY through a link out of the context:\n%s", out)
	}
	if n := len(s.releases("hostile")); n != 2 {
		t.Errorf("hostile sources made %d releases", n-2)
	}
}

// startSlow starts a build of app whose RUN step never ends and returns
// once its output shows the step running, with the output read so far
// and the rest of the stream.
func (s *server) startSlow(app string) (buildResp, *http.Response, *bytes.Buffer) {
	s.t.Helper()
	var b buildResp
	s.call("POST", "/apps/"+app+"/builds", "application/gzip",
		bytes.NewReader(tarball(s.t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"})), http.StatusCreated, &b)
	resp, err := http.Get(b.OutputStreamURL)
	if err != nil {
		s.t.Fatal(err)
	}
	var seen bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), "started") {
		n, err := resp.Body.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			resp.Body.Close()
			s.t.Fatalf("output ended before the step started: %v\n%s", err, seen.String())
		}
	}
	return b, resp, &seen
}

func TestCancelBuild(t *testing.T) {
	s := newServer(t)
	s.createApp("cancelled")
	b, resp, seen := s.startSlow("cancelled")
	defer resp.Body.Close()
	var got buildResp
	s.call("DELETE", "/apps/cancelled/builds/"+b.ID, "", nil, http.StatusOK, &got)
	if got.Status != "failed" || got.Release != nil {
		t.Errorf("cancelled build = %+v", got)
	}
	rest, _ := io.ReadAll(resp.Body)
	if out := seen.String() + string(rest); !strings.Contains(out, "Build failed: the build was cancelled by admin@example.com") {
		t.Errorf("output:\n%s", out)
	}
	s.call("DELETE", "/apps/cancelled/builds/"+b.ID, "", nil, http.StatusConflict, nil)
	if n := len(s.releases("cancelled")); n != 2 {
		t.Errorf("the cancelled build made %d releases", n-2)
	}
}

// TestStopDuringBuild: a server stopping fails the builds it runs, with a
// message saying so, and makes no release.
func TestStopDuringBuild(t *testing.T) {
	s := newServer(t)
	s.createApp("stopped")
	b, resp, seen := s.startSlow("stopped")
	defer resp.Body.Close()
	s.svc.Close()
	rest, _ := io.ReadAll(resp.Body)
	if out := seen.String() + string(rest); !strings.Contains(out, "Build failed: the server stopped during the build") {
		t.Errorf("output:\n%s", out)
	}
	if got := s.build("stopped", b); got.Status != "failed" || got.Release != nil {
		t.Errorf("build = %+v", got)
	}
}

// TestBuildCacheLimit: after each build the app's layer cache is trimmed
// to CacheMaxBytes (TestTrimCache: least recently used layers first), so
// the next build finds what was trimmed gone.
func TestBuildCacheLimit(t *testing.T) {
	s := newServer(t, func(c *Config) { c.CacheMaxBytes = 1 }) // nothing fits
	s.createApp("cacheapp")
	files := map[string]string{"Dockerfile": "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"}
	_, out := s.buildTar("cacheapp", files, "succeeded")
	if !strings.Contains(out, "=== Build cache: 2 least recently used layers removed") {
		t.Errorf("first build: no trim\n%s", out)
	}
	_, out = s.buildTar("cacheapp", files, "succeeded")
	if strings.Contains(out, "Using cache") {
		t.Errorf("second build used a trimmed cache\n%s", out)
	}
}
