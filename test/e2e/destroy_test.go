package e2e

import (
	"io"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// namedAfter lists the paths under dir whose name holds one of marks (an
// app's id or name, an image's digest).
func namedAfter(t *testing.T, dir string, marks ...string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, m := range marks {
			if strings.Contains(d.Name(), m) {
				found = append(found, p)
				if d.IsDir() {
					return fs.SkipDir
				}
			}
		}
		return nil
	})
	return found
}

// waitGone waits until nothing under dir is named after marks.
func waitGone(t *testing.T, dir string, marks ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := namedAfter(t, dir, marks...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still on disk after the destroy: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDestroyRemovesEverything: an app with images pushed with skopeo,
// released with the heroku CLI, and log history is destroyed with `heroku
// apps:destroy`: nothing named after it or its image stays in the data
// directory, and a new app of the same name has no images (the registry
// answers NAME_UNKNOWN) and no releases of the old one. Leftovers of apps
// destroyed while the server was down go at the next start.
func TestDestroyRemovesEverything(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	flags := append([]string{"--registry-gc-interval", "1s", "--registry-gc-grace", "3s"}, withRegistry...)
	s := startServerIn(t, dataDir, true, flags...)
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "goneapp")
	h.ok(t, "apps:create", "keepapp")
	layout := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=destroyed"))
	skopeoPush(t, s, s.AdminToken, layout, "goneapp/web:latest")
	skopeoPush(t, s, s.AdminToken, layout, "goneapp/worker:latest")
	keepLayout := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=kept"))
	skopeoPush(t, s, s.AdminToken, keepLayout, "keepapp/web:latest")
	id := imageID(t, layout)
	env := h.containerEnv(t)
	for _, app := range []string{"goneapp", "keepapp"} {
		if res := runProcess(t, herokuBinary(t), []string{"container:release", "web", "-a", app}, env, nil); res.Code != 0 {
			t.Fatalf("heroku container:release -a %s: exit %d\n%s", app, res.Code, res.Stderr)
		}
	}
	var app struct{ ID string }
	s.apiJSON(t, s.AdminToken, "GET", "/apps/goneapp", nil, "", 200, &app)
	var keep struct{ ID string }
	s.apiJSON(t, s.AdminToken, "GET", "/apps/keepapp", nil, "", 200, &keep)
	hex := strings.TrimPrefix(id, "sha256:")
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Before: the app's log history, repositories and image are on disk.
	waitFor("the app's state on disk", func() bool {
		return len(namedAfter(t, filepath.Join(dataDir, "logs"), app.ID)) > 0 &&
			len(namedAfter(t, filepath.Join(dataDir, "registry"), "goneapp")) > 0 &&
			len(namedAfter(t, filepath.Join(dataDir, "images"), hex)) > 0
	})

	h.ok(t, "apps:destroy", "goneapp", "--confirm", "goneapp")
	waitGone(t, dataDir, app.ID, "goneapp", hex)
	if len(namedAfter(t, dataDir, keep.ID)) == 0 || len(namedAfter(t, dataDir, "keepapp")) == 0 {
		t.Error("the other app's history or repository went too")
	}
	inspect := func(ref string) (string, error) {
		out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "_:"+s.AdminToken,
			"docker://"+s.Registry+"/"+ref).CombinedOutput()
		return string(out), err
	}
	if out, err := inspect("keepapp/web:latest"); err != nil {
		t.Errorf("keepapp's image after the destroy: %v\n%s", err, out)
	}

	// The same name again: a new app with nothing of the old one.
	h.ok(t, "apps:create", "goneapp")
	for _, repo := range []string{"goneapp/web", "goneapp/worker"} {
		req, _ := http.NewRequest("GET", "http://"+s.Registry+"/v2/"+repo+"/tags/list", nil)
		req.SetBasicAuth("_", s.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(out), "NAME_UNKNOWN") {
			t.Errorf("tags of %s in the new app: %s %s, want NAME_UNKNOWN", repo, resp.Status, out)
		}
	}
	res := h.ok(t, "releases", "-a", "goneapp")
	wantNotContains(t, res, "stdout", "Deploy")
	res = runProcess(t, herokuBinary(t), []string{"container:release", "web", "-a", "goneapp"}, env, nil)
	if res.Code == 0 {
		t.Errorf("the new app released the old app's image:\n%s", res.Stderr)
	}

	// Leftovers of an app destroyed while the server was down (here:
	// planted copies of keepapp's repository and history under names no
	// app has) go at the next start; keepapp's stay.
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	const ghostID = "0badc0de-0000-4000-8000-00000000dead"
	repos := filepath.Join(dataDir, "registry", "storage", "docker", "registry", "v2", "repositories")
	if out, err := exec.Command("cp", "-a", filepath.Join(repos, "keepapp"), filepath.Join(repos, "ghostapp")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	logs, err := filepath.Glob(filepath.Join(dataDir, "logs", keep.ID+"*"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("keepapp's history: %v %v", logs, err)
	}
	for _, l := range logs {
		if out, err := exec.Command("cp", "-a", l, strings.Replace(l, keep.ID, ghostID, 1)).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	tok := s.AdminToken
	s = startServerIn(t, dataDir, false, flags...)
	s.AdminToken = tok
	waitGone(t, dataDir, ghostID, "ghostapp")
	if len(namedAfter(t, dataDir, keep.ID)) == 0 || len(namedAfter(t, dataDir, "keepapp")) == 0 {
		t.Error("a restart removed the live app's history or repository")
	}
	if out, err := inspect("keepapp/web:latest"); err != nil {
		t.Errorf("keepapp's image after the restart: %v\n%s", err, out)
	}

	// A rename: the repositories follow the app, and its old name is free.
	h = s.heroku(t, s.AdminToken)
	h.ok(t, "apps:rename", "movedapp", "--app", "keepapp")
	if out, err := inspect("movedapp/web:latest"); err != nil {
		t.Errorf("the renamed app's image: %v\n%s", err, out)
	}
	if res := runProcess(t, herokuBinary(t), []string{"container:release", "web", "-a", "movedapp"}, h.containerEnv(t), nil); res.Code != 0 {
		t.Errorf("heroku container:release after the rename: exit %d\n%s", res.Code, res.Stderr)
	}
	h.ok(t, "apps:create", "keepapp")
	if out, err := inspect("keepapp/web:latest"); err == nil {
		t.Errorf("a new app under the old name sees the renamed app's image:\n%s", out)
	}
}
