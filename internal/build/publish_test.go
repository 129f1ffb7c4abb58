package build

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
func (anyone) CanUse(context.Context, string, string) (bool, error)     { return true, nil }

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
		"heroku.yml":        "build:\n  docker:\n    web: Dockerfile\n    worker: worker/Dockerfile\n",
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
