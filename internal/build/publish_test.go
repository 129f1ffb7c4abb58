package build

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/registry"
)

// anyone lets every token use every app: the registry's access checks are
// tested in its own package.
type anyone struct{}

func (anyone) Authenticate(context.Context, string) (registry.Principal, error) {
	return registry.Principal{Account: "a"}, nil
}
func (anyone) Active(context.Context, registry.Principal) (bool, error) { return true, nil }
func (anyone) AppID(_ context.Context, _, app string) (string, error)   { return "id-" + app, nil }
func (anyone) Apps(context.Context) (map[string]string, error)          { return nil, nil } // only read by Reconcile, at start

// TestPublishToRegistry builds a heroku.yml app with two images: each is
// published to its type's repository in a real embedded registry before
// the release; a build whose images cannot be published fails without a
// release.
func TestPublishToRegistry(t *testing.T) {
	s := newServer(t)
	reg, err := registry.New(context.Background(), registry.Config{Dir: filepath.Join(t.TempDir(), "registry"), Accounts: anyone{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	fail := false
	s.svc.SetPublish(func(ctx context.Context, app, typ, id string) (string, error) {
		if fail {
			return "", errors.New("registry storage is full")
		}
		return reg.Publish(ctx, s.env.b.Images, app, typ, id, "latest")
	})
	s.createApp("pubapp")
	files := map[string]string{
		"heroku.yml":        "build:\n  docker:\n    web: Dockerfile\n    worker: worker/Dockerfile\n    Shout: Dockerfile\n",
		"Dockerfile":        "FROM busybox\nCOPY web.txt /\n",
		"web.txt":           "web",
		"worker/Dockerfile": "FROM busybox\nCOPY run.txt /\n",
		"worker/run.txt":    "worker",
	}
	_, out := s.buildTar("pubapp", files, "succeeded")
	if !strings.Contains(out, "=== Pushed web to the registry: pubapp/web:latest (sha256:") ||
		!strings.Contains(out, "=== Pushed worker to the registry: pubapp/worker:latest") {
		t.Errorf("output does not say what was pushed:\n%s", out)
	}
	if !strings.Contains(out, "=== Not pushing Shout to the registry: pubapp/Shout is not a repository name") {
		t.Errorf("output does not say that Shout has no repository:\n%s", out)
	}
	rels := s.releases("pubapp")
	rel := rels[len(rels)-1]
	fresh, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"web", "worker"} {
		id := rel.Processes[typ].Image
		if _, err := reg.Import(context.Background(), fresh, "pubapp", typ, id); err != nil {
			t.Errorf("%s's image %s is not in pubapp/%s: %v", typ, id, typ, err)
		}
	}

	fail = true
	files["web.txt"] = "web v2"
	if _, out := s.buildTar("pubapp", files, "failed"); !strings.Contains(out, "Build failed") {
		t.Errorf("a failed publish is not reported:\n%s", out)
	}
	if n := len(s.releases("pubapp")); n != len(rels) {
		t.Errorf("%d releases after a failed publish, want %d", n, len(rels))
	}
}

// TestSweep removes build logs and uploaded sources past their retention:
// the old build's output then says it is no longer kept, a build of an
// expired upload fails with a clear message, and recent files stay.
func TestSweep(t *testing.T) {
	s := newServer(t)
	s.createApp("sweepapp")
	old, _ := s.buildTar("sweepapp", map[string]string{"Dockerfile": "FROM busybox\n"}, "succeeded")
	recent, _ := s.buildTar("sweepapp", map[string]string{"Dockerfile": "FROM busybox\nENV X=1\n"}, "succeeded")
	getURL := s.upload("sweepapp", map[string]string{"Dockerfile": "FROM busybox\n"})
	var unused struct{}
	s.call("POST", "/apps/sweepapp/sources", "", nil, http.StatusCreated, &unused)

	past := time.Now().Add(-48 * time.Hour)
	logs := filepath.Join(s.svc.cfg.Dir, "logs")
	os.Chtimes(filepath.Join(logs, old.ID+".log"), past, past)
	srcs, _ := os.ReadDir(filepath.Join(s.svc.cfg.Dir, "sources"))
	for _, e := range srcs {
		os.Chtimes(filepath.Join(s.svc.cfg.Dir, "sources", e.Name()), past, past)
	}
	if n := len(srcs); n != 4 {
		t.Fatalf("%d files in sources/, want an upload and a slot, each with its .app file", n)
	}
	s.svc.cfg.LogRetention = 24 * time.Hour
	if l, src := s.svc.sweep(time.Now()); l != 1 || src != 4 {
		t.Errorf("sweep removed %d logs and %d source files, want 1 and 4", l, src)
	}
	if out := s.output(old); out != "=== The output of this build is no longer kept\n" {
		t.Errorf("output of a swept build = %q", out)
	}
	if out := s.output(recent); !strings.Contains(out, "=== Released") {
		t.Errorf("output of a recent build = %q", out)
	}
	var b buildResp
	s.call("POST", "/apps/sweepapp/builds", "application/json",
		strings.NewReader(`{"source_blob":{"url":"`+getURL+`"}}`), http.StatusCreated, &b)
	if out := s.output(b); !strings.Contains(out, "no uploaded source at") || !strings.Contains(out, "uploads are kept for 1h0m0s") {
		t.Errorf("build of an expired upload:\n%s", out)
	}
}
