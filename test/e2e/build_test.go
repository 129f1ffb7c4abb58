package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
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

// TestGitPushBuild imports a busybox base image with `skiff stack:import`,
// pushes a repository with a multi-stage Dockerfile with the real git
// client, and sees the build's output as remote: lines, the release and
// the web dyno up on it; then a broken Dockerfile fails `skiff deploy`.
func TestGitPushBuild(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	const bridge, subnet = "skbd1", "10.213.236.0/24"
	s := startServerIn(t, dataDir, true, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet, "--git-addr", "127.0.0.1:0")
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
	bin, err := os.ReadFile(imagetest.GoBinary(t, buildtest.WebApp))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repo, "web"), bin, 0o755)
	os.WriteFile(filepath.Join(repo, "Dockerfile"), []byte(`FROM busybox AS build
WORKDIR /out
COPY web ./
RUN test -x web && echo "the binary is ready"
FROM scratch
COPY --from=build /out/web /web
CMD ["/web"]
`), 0o644)
	git(t, repo, true, "init", "-q", "-b", "main")
	git(t, repo, true, "add", ".")
	git(t, repo, true, "commit", "-q", "-m", "web app")
	commit := strings.TrimSpace(git(t, repo, true, "rev-parse", "HEAD"))
	remote := strings.Replace(s.URL, "http://", "http://heroku:"+s.AdminToken+"@", 1) + "/pushapp.git"

	out := git(t, repo, true, "push", remote, "main")
	for _, want := range []string{"remote: Step 4/7 : RUN test -x web", "remote: the binary is ready", "remote: === Released v3 (web)"} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q:\n%s", want, out)
		}
	}
	res = h.ok(t, "releases", "-a", "pushapp")
	wantContains(t, res, "stdout", "Deploy "+commit[:8])
	waitPS(t, h, "pushapp", "web.1=up")

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
	os.WriteFile(filepath.Join(repo, "README"), []byte("second deploy\n"), 0o644)
	inRepo(true, "git", "add", "README")
	inRepo(true, "git", "commit", "-q", "-m", "readme")
	out = inRepo(true, "git", "push", "heroku", "main")
	if !strings.Contains(out, "remote: === Released v4 (web)") {
		t.Errorf("git push heroku main:\n%s", out)
	}
	waitPS(t, h, "pushapp", "web.1=up")

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
	wantNotContains(t, res, "stdout", "v5")
	waitPS(t, h, "pushapp", "web.1=up")

	// heroku.yml: a web and a worker image, and a release command that
	// runs as a release dyno before v5 becomes current.
	yml := t.TempDir()
	os.WriteFile(filepath.Join(yml, "web"), bin, 0o755)
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
	wantContains(t, res, "stdout", "=== Released v5 (release, web, worker)")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rel struct{ Status, Description string }
		s.apiJSON(t, s.AdminToken, "GET", "/apps/pushapp/releases/5", nil, "", 200, &rel)
		if rel.Status == "succeeded" && rel.Description == "Deploy v2.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release v5 = %+v, want succeeded once its release command ran", rel)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res = h.ok(t, "logs", "-a", "pushapp", "-n", "1500")
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[release\.\d+\]: migrating$`)
	wantMatch(t, res, "stdout", `(?m)^\S+ app\[api\]: Build succeeded$`)
	h.ok(t, "ps:scale", "worker=1", "-a", "pushapp")
	waitPS(t, h, "pushapp", "web.1=up worker.1=up")
}
