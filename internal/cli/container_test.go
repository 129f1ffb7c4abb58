package cli

import (
	"archive/tar"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/skiffhq/skiff/internal/image/imagetest"
	"github.com/skiffhq/skiff/internal/registry"
)

// oneAccount lets the token "tok" use every app.
type oneAccount struct{}

func (oneAccount) Authenticate(_ context.Context, s string) (registry.Principal, error) {
	if s != "tok" {
		return registry.Principal{}, errors.New("bad token")
	}
	return registry.Principal{Account: "acc", Token: "t"}, nil
}
func (oneAccount) Active(context.Context, registry.Principal) (bool, error) { return true, nil }
func (oneAccount) AppID(_ context.Context, _, app string) (string, error)   { return "id-" + app, nil }
func (oneAccount) Apps(context.Context) (map[string]string, error)          { return nil, nil } // only read by Reconcile, at start

// testRegistry serves a real embedded registry.
func testRegistry(t *testing.T) string {
	t.Helper()
	reg, err := registry.New(context.Background(), registry.Config{Dir: t.TempDir(), Accounts: oneAccount{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { srv.Close(); reg.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// tarDir writes the tree at dir as a tar file (an OCI archive for a layout).
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "archive.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestContainerPushFormats(t *testing.T) {
	host := testRegistry(t)
	img := imagetest.Image(t, [][]byte{imagetest.Tar(t, imagetest.Entry{Header: tar.Header{Name: "f", Mode: 0o644}, Body: []byte("x")})},
		imagetest.WithCmd("/f"))
	want, _ := img.ConfigName() // the image id survives re-encoding (docker save writes Docker media types)
	layout := imagetest.WriteLayout(t, img)
	ref, _ := name.ParseReference("tmp/x", name.Insecure)
	docker := filepath.Join(t.TempDir(), "saved.tar")
	if err := tarball.WriteToFile(docker, ref, img); err != nil {
		t.Fatal(err)
	}
	notLayout := t.TempDir()
	junk := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(junk, []byte("not a tar at all"), 0o644)
	for _, tc := range []struct {
		name, path, err string
	}{
		{"OCI layout directory", layout, ""},
		{"OCI archive", tarDir(t, layout), ""},
		{"docker save tarball", docker, ""},
		{"not a layout", notLayout, "not an OCI image layout"},
		{"not an image", junk, "neither a docker save tarball nor an OCI archive"},
		{"missing", filepath.Join(notLayout, "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, &fakeAPI{}, "", "container:push", "web", "--image", tc.path, "--registry", host, "-a", "myapp")
			if tc.err != "" {
				if code == 0 || !strings.Contains(stderr, tc.err) {
					t.Fatalf("exit %d, stderr %q, want %q", code, stderr, tc.err)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := pulledID(t, host, "myapp/web:latest")
			if got != want.String() {
				t.Errorf("pushed %s, want %s", got, want)
			}
		})
	}
}

// pulledID reads the image id (config digest) of repo.
func pulledID(t *testing.T, host, repo string) string {
	t.Helper()
	e := &Env{Token: "tok"}
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remoteGet(ref, e)
	if err != nil {
		t.Fatal(err)
	}
	img, err := d.Image()
	if err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestContainerRelease releases two types at once with the images' ids,
// as heroku container:release sends them.
func TestContainerRelease(t *testing.T) {
	host := testRegistry(t)
	var ids []string
	for _, typ := range []string{"web", "worker"} {
		img := imagetest.Image(t, [][]byte{imagetest.Tar(t, imagetest.Entry{Header: tar.Header{Name: typ, Mode: 0o644}, Body: []byte(typ)})})
		code, _, stderr := runCLI(t, &fakeAPI{}, "", "container:push", typ, "--image", imagetest.WriteLayout(t, img), "--registry", host, "-a", "myapp")
		if code != 0 {
			t.Fatal(stderr)
		}
		cfg, _ := img.ConfigName()
		ids = append(ids, cfg.String())
	}
	api := &fakeAPI{answers: map[string]string{"PATCH /apps/myapp/formation": `[]`}}
	code, _, stderr := runCLI(t, api, "", "container:release", "web", "worker", "--registry", host, "-a", "myapp")
	if code != 0 || !strings.Contains(stderr, "Releasing images web,worker to myapp... done") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := api.find("PATCH", "/apps/myapp/formation")
	want := `{"updates":[{"docker_image":"` + ids[0] + `","type":"web"},{"docker_image":"` + ids[1] + `","type":"worker"}]}`
	if r == nil || strings.TrimSpace(r.Body) != want || !strings.Contains(r.Accept, "version=3.docker-releases") {
		t.Errorf("PATCH = %+v, want body %s", r, want)
	}
	code, _, stderr = runCLI(t, api, "", "container:release", "clock", "--registry", host, "-a", "myapp")
	if code == 0 || !strings.Contains(stderr, "no image pushed to") {
		t.Errorf("release of a type never pushed: exit %d, %s", code, stderr)
	}
}
