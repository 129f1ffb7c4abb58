package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build/buildtest"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// git runs the real git client in dir.
func git(t *testing.T, dir string, ok bool, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com"}
	out, err := cmd.CombinedOutput()
	if (err == nil) != ok {
		t.Fatalf("git %s: %v (want success: %v)\n%s", strings.Join(args, " "), err, ok, out)
	}
	return string(out)
}

// msgApp is a web app that answers "<first word of /msg.txt> built from
// source": a one-file change to msg.txt changes its answer.
const msgApp = `package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
)

func main() {
	msg, _ := os.ReadFile("/msg.txt")
	msg = bytes.TrimSpace(msg)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s built from source\n", msg) })
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`

// routed GETs / of app through the router and returns the body.
func routed(t *testing.T, s *server, app string) (string, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.RouterURL+"/", nil)
	req.Host = app + ".localhost"
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %q", res.Status, b)
	}
	return string(b), err
}

// waitRouted waits until app answers want through the router.
func waitRouted(t *testing.T, s *server, app, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := routed(t, s, app)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the router = %q, %v; want %q", app, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGitPushBuild imports a busybox base image with `skiff stack:import`,
// pushes a repository with a multi-stage Dockerfile with the real git
// client, and sees the build's output as remote: lines, the image in the
// app's registry repository (skopeo pulls it), the release and the app
// answering through the router; a second push of a one-file change is
// served through the router with no failed request during the switch
// (preboot); after garbage collections, rollbacks to either built release
// serve its image again; then a broken Dockerfile fails `skiff deploy`.
func TestGitPushBuild(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	const bridge, subnet = "skb2e1", "10.213.228.0/24"
	s := startServerIn(t, dataDir, true, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet, "--git-addr", "127.0.0.1:0",
		"--registry-addr", "127.0.0.1:0", "--registry-gc-interval", "2s", "--registry-gc-grace", "5s")
	gitHost := ""
	for _, line := range strings.Split(s.stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "Git URL: https://"); ok {
			gitHost = strings.TrimSpace(v)
		}
	}
	if gitHost == "" {
		t.Fatalf("no Git URL in the banner:\n%s", s.stdout.String())
	}

	rootfs := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(rootfs, buildtest.BusyboxRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	res := s.skiff(t, s.AdminToken, "stack:import", "busybox", rootfs)
	wantContains(t, res, "stderr", "Importing "+rootfs+" as busybox... done, use FROM busybox")
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "pushapp")

	repo := t.TempDir()
	bin, err := os.ReadFile(imagetest.GoBinary(t, msgApp))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repo, "web"), bin, 0o755)
	os.WriteFile(filepath.Join(repo, "msg.txt"), []byte("one\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "Dockerfile"), []byte(`FROM busybox AS build
WORKDIR /out
COPY web ./
RUN test -x web && echo "the binary is ready"
FROM scratch
COPY --from=build /out/web /web
COPY msg.txt /msg.txt
CMD ["/web"]
`), 0o644)
	git(t, repo, true, "init", "-q", "-b", "main")
	git(t, repo, true, "add", ".")
	git(t, repo, true, "commit", "-q", "-m", "web app")
	commit := strings.TrimSpace(git(t, repo, true, "rev-parse", "HEAD"))
	remote := strings.Replace(s.URL, "http://", "http://heroku:"+s.AdminToken+"@", 1) + "/pushapp.git"

	out := git(t, repo, true, "push", remote, "main")
	for _, want := range []string{"remote: Step 4/8 : RUN test -x web", "remote: the binary is ready", "remote: === Released v3 (web)"} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q:\n%s", want, out)
		}
	}
	res = h.ok(t, "releases", "-a", "pushapp")
	wantContains(t, res, "stdout", "Deploy "+commit[:8])
	waitPS(t, h, "pushapp", "web.1=up")
	waitRouted(t, s, "pushapp", "one built from source\n")

	// The built image is the app's pushapp/web:latest in the registry:
	// skopeo reads its manifest and copies it whole.
	m := regexp.MustCompile(`remote: === Pushed web to the registry: pushapp/web:latest \((sha256:[0-9a-f]{64})\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("git push output does not say the image was pushed:\n%s", out)
	}
	ref := "docker://" + s.Registry + "/pushapp/web:latest"
	insp, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "_:"+s.AdminToken, ref).CombinedOutput()
	if err != nil || !strings.Contains(string(insp), `"Digest": "`+m[1]+`"`) {
		t.Errorf("skopeo inspect %s: %v, want digest %s\n%s", ref, err, m[1], insp)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--src-creds", "_:"+s.AdminToken, ref, "oci:"+pulled+":web").CombinedOutput(); err != nil {
		t.Errorf("skopeo copy %s: %v\n%s", ref, err, out)
	}

	res = s.skiff(t, s.AdminToken, "builds", "-a", "pushapp")
	wantContains(t, res, "stdout", "succeeded")
	wantContains(t, res, "stdout", commit)

	// Heroku's everyday path: `heroku git:remote`, then `git push heroku
	// main` over HTTPS (the local CA's certificate), with the heroku CLI as
	// git's credential helper.
	env := append(h.env(), "HEROKU_GIT_HOST="+gitHost, "GIT_SSL_CAINFO="+filepath.Join(dataDir, "pki", "ca.pem"),
		"GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + filepath.Dir(herokuBinary(t)) + ":" + v
		}
	}
	inRepo := func(ok bool, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.CombinedOutput()
		if (err == nil) != ok {
			t.Fatalf("%s %s: %v (want success: %v)\n%s", name, strings.Join(args, " "), err, ok, out)
		}
		return string(out)
	}
	inRepo(true, herokuBinary(t), "git:remote", "-a", "pushapp")
	if got := inRepo(true, "git", "remote", "get-url", "heroku"); strings.TrimSpace(got) != "https://"+gitHost+"/pushapp.git" {
		t.Fatalf("heroku remote = %q", got)
	}
	// A one-file change, pushed while clients keep asking through the
	// router: with preboot the new release takes over with no failed
	// request, and answers with the change.
	h.ok(t, "features:enable", "preboot", "-a", "pushapp")
	os.WriteFile(filepath.Join(repo, "msg.txt"), []byte("two\n"), 0o644)
	inRepo(true, "git", "add", "msg.txt")
	inRepo(true, "git", "commit", "-q", "-m", "second message")
	l := startLoad(t, s.RouterURL+"/", "pushapp.localhost", 2)
	out = inRepo(true, "git", "push", "heroku", "main")
	if !strings.Contains(out, "remote: === Released v4 (web)") || !strings.Contains(out, "remote:  ---> Using cache") {
		t.Errorf("git push heroku main (want v4, the unchanged steps from the cache):\n%s", out)
	}
	waitRouted(t, s, "pushapp", "two built from source\n")
	time.Sleep(300 * time.Millisecond)
	l.end(t, "git push of a one-file change")
	if l.dynos["one"] == 0 || l.dynos["two"] == 0 {
		t.Errorf("answers during the push: %v, want both the old and the new", l.dynos)
	}
	waitPS(t, h, "pushapp", "web.1=up")

	// Once garbage collections have run past their grace period, a
	// rollback to the first built release still finds its image and
	// serves it.
	time.Sleep(8 * time.Second)
	h.ok(t, "rollback", "v3", "-a", "pushapp")
	waitRouted(t, s, "pushapp", "one built from source\n")
	h.ok(t, "rollback", "v4", "-a", "pushapp")
	waitRouted(t, s, "pushapp", "two built from source\n")

	// `skiff deploy DIR` with a broken Dockerfile: the output shows the
	// failure, the command fails, the release and the dyno stay.
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "Dockerfile"), []byte("FROM busybox\nRUN echo compiling && exit 3\n"), 0o644)
	res = s.skiff(t, s.AdminToken, "deploy", broken, "-a", "pushapp")
	if res.Code == 0 {
		t.Fatalf("skiff deploy of a broken Dockerfile succeeded:\n%s", res.describe(""))
	}
	wantContains(t, res, "stdout", "returned a non-zero code: 3")
	res = h.ok(t, "releases", "-a", "pushapp")
	wantNotContains(t, res, "stdout", "v7")
	waitPS(t, h, "pushapp", "web.1=up")

	// heroku.yml: a web and a worker image, and a release command that
	// runs as a release dyno before v7 becomes current.
	yml := t.TempDir()
	os.WriteFile(filepath.Join(yml, "web"), bin, 0o755)
	os.WriteFile(filepath.Join(yml, "msg.txt"), []byte("three\n"), 0o644)
	df, _ := os.ReadFile(filepath.Join(repo, "Dockerfile"))
	os.WriteFile(filepath.Join(yml, "Dockerfile"), df, 0o644)
	os.MkdirAll(filepath.Join(yml, "worker"), 0o755)
	os.WriteFile(filepath.Join(yml, "worker", "Dockerfile"), []byte("FROM busybox\nCMD [\"sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(yml, "heroku.yml"), []byte(`build:
  docker:
    web: Dockerfile
    worker: worker/Dockerfile
release:
  image: worker
  command:
    - echo
    - migrating
run:
  worker: sh -c 'while true; do echo working; sleep 1; done'
`), 0o644)
	res = s.skiff(t, s.AdminToken, "deploy", yml, "-a", "pushapp", "--version", "v2.0")
	if res.Code != 0 {
		t.Fatalf("skiff deploy of heroku.yml:\n%s", res.describe(""))
	}
	wantContains(t, res, "stdout", "=== Released v7 (release, web, worker)")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rel struct{ Status, Description string }
		s.apiJSON(t, s.AdminToken, "GET", "/apps/pushapp/releases/7", nil, "", 200, &rel)
		if rel.Status == "succeeded" && rel.Description == "Deploy v2.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release v7 = %+v, want succeeded once its release command ran", rel)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res = h.ok(t, "logs", "-a", "pushapp", "-n", "1500")
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[release\.\d+\]: migrating$`)
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[api\]: Build succeeded$`)
	h.ok(t, "ps:scale", "worker=1", "-a", "pushapp")
	waitPS(t, h, "pushapp", "web.1=up worker.1=up")

	// Destroyed, the app leaves nothing on disk: no layer cache, git
	// repository, build log, registry repository or log history (see
	// destroy_test.go); the same name again is a new app with an empty
	// repository whose first build uses no cache.
	var app struct{ ID string }
	s.apiJSON(t, s.AdminToken, "GET", "/apps/pushapp", nil, "", 200, &app)
	var builds []struct{ ID string }
	s.apiJSON(t, s.AdminToken, "GET", "/apps/pushapp/builds", nil, "", 200, &builds)
	marks := []string{app.ID, "pushapp"}
	for _, b := range builds {
		marks = append(marks, b.ID)
	}
	if len(namedAfter(t, filepath.Join(dataDir, "builds"), marks...)) == 0 {
		t.Fatal("no build state of pushapp before its destroy")
	}
	sources := func() []string {
		es, _ := os.ReadDir(filepath.Join(dataDir, "builds", "sources"))
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	if len(sources()) == 0 {
		t.Fatal("no uploaded source of pushapp (skiff deploy) before its destroy")
	}
	h.ok(t, "apps:destroy", "pushapp", "--confirm", "pushapp")
	waitGone(t, dataDir, marks...)
	if left := sources(); len(left) != 0 {
		t.Errorf("uploaded sources of the destroyed app left: %v", left)
	}
	h.ok(t, "apps:create", "pushapp")
	if out := git(t, repo, true, "ls-remote", remote); strings.TrimSpace(out) != "" {
		t.Errorf("the new pushapp's repository has refs:\n%s", out)
	}
	out = git(t, repo, true, "push", remote, "main")
	if !strings.Contains(out, "remote: === Released v3 (web)") || strings.Contains(out, "Using cache") {
		t.Errorf("first push to the new pushapp (want v3, built without the old cache):\n%s", out)
	}
}
