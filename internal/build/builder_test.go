package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build/buildtest"
	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/runtime"
)

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// env is a builder over a fresh image store and runtime, with a busybox
// base image importable as "busybox".
type env struct {
	t       *testing.T
	images  *image.Store
	b       *Builder
	cache   string
	busybox string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("build tests run as root (runc, overlay mounts)")
	}
	base := t.TempDir()
	images, err := image.Open(filepath.Join(base, "images"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(runtime.Config{Root: filepath.Join(base, "runc"), Dir: filepath.Join(base, "containers"),
		CgroupParent: "skbd-test-" + randomSuffix()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Reap(); err != nil {
			t.Errorf("reap: %v", err)
		}
	})
	id, err := ImportRootfs(images, base, bytes.NewReader(buildtest.BusyboxRootfs(t)), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, images: images, cache: filepath.Join(base, "cache"), busybox: id}
	e.b = &Builder{Images: images, Runtime: rt, Limits: Limits{Timeout: time.Minute},
		Base: func(name string) (string, error) {
			if name == "busybox" {
				return id, nil
			}
			return "", errors.New("no such stack")
		}}
	return e
}

// context writes files (name → content; a "->" prefix makes a symlink)
// into a new context directory.
func (e *env) context(files map[string]string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

func (e *env) build(ctxDir string, args map[string]string) (*Result, string, error) {
	var out bytes.Buffer
	res, err := e.b.Build(context.Background(), Request{Context: ctxDir, Args: args, Cache: e.cache, Out: &out})
	return res, out.String(), err
}

// fileIn returns a file's content in a built image's merged layers.
func (e *env) fileIn(id, name string) (string, bool) {
	e.t.Helper()
	im, err := e.images.Image(id)
	if err != nil {
		e.t.Fatal(err)
	}
	fi, ok := lowerStat(im.Layers, name)
	if !ok || fi.IsDir() {
		return "", false
	}
	for i := len(im.Layers) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(im.Layers[i], name))
		if err == nil {
			return string(b), true
		}
	}
	return "", false
}

func TestBuildDockerfile(t *testing.T) {
	e := newEnv(t)
	df := `# a multi-stage build
ARG GREETING=hello
FROM busybox AS builder
ARG GREETING
WORKDIR /src
COPY greet.txt ./
RUN echo "$GREETING from $(cat greet.txt)" > out.txt && mkdir -p /src/bin && echo built > /src/bin/app
FROM busybox
ENV APP_HOME=/app PORT=5000
LABEL org.example.name="demo app"
WORKDIR $APP_HOME
COPY --from=builder /src/out.txt /src/bin/ ./
COPY --chown=app:app data/*.txt /data/
RUN ["/bin/sh", "-c", "id -u > /app/uid; rm /etc/group"]
USER app
RUN id -u > /tmp/uid-as-app
EXPOSE 5000
HEALTHCHECK --interval=5s CMD true
SHELL ["/bin/sh", "-c"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out.txt"]
`
	dir := e.context(map[string]string{
		"Dockerfile":    df,
		"greet.txt":     "world",
		"data/a.txt":    "A",
		"data/b.txt":    "B",
		"data/c.md":     "not copied",
		"secret.key":    "ignored",
		".dockerignore": "secret.key\n",
	})
	res, out, err := e.build(dir, map[string]string{"GREETING": "hi"})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for name, want := range map[string]string{
		"app/out.txt": "hi from world\n", "app/app": "built\n", "data/a.txt": "A", "data/b.txt": "B", "app/uid": "0\n",
		"tmp/uid-as-app": "1000\n",
	} {
		if got, ok := e.fileIn(res.Image, name); !ok || got != want {
			t.Errorf("/%s = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := e.fileIn(res.Image, "data/c.md"); ok {
		t.Error("the glob copied data/c.md")
	}
	if _, ok := e.fileIn(res.Image, "etc/group"); ok {
		t.Error("/etc/group removed by RUN is still in the image (whiteout lost)")
	}
	if _, err := os.Stat(filepath.Join(dir, "secret.key")); err == nil {
		t.Error(".dockerignore'd file still in the context")
	}
	im, err := e.images.Image(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	c := im.Config
	if c.WorkingDir != "/app" || c.User != "app" || strings.Join(c.Entrypoint, " ") != "/bin/sh -c" ||
		strings.Join(c.Cmd, " ") != "cat /app/out.txt" || c.Labels["org.example.name"] != "demo app" ||
		strings.Join(c.ExposedPorts, ",") != "5000/tcp" || !hasEnv(c.Env, "PORT") {
		t.Errorf("config = %+v", c)
	}
	if res.Cached != 0 {
		t.Errorf("cold build reused %d layers", res.Cached)
	}

	// The same build again reuses every layer; a changed data file reruns
	// only from the COPY that takes it.
	res2, out, err := e.build(e.context(map[string]string{"Dockerfile": df, "greet.txt": "world", "data/a.txt": "A", "data/b.txt": "B"}),
		map[string]string{"GREETING": "hi"})
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	if res2.Cached != 6 || res2.Image != res.Image && false {
		t.Errorf("rebuild reused %d layers, want 6\n%s", res2.Cached, out)
	}
	res3, out, err := e.build(e.context(map[string]string{"Dockerfile": df, "greet.txt": "world", "data/a.txt": "changed", "data/b.txt": "B"}),
		map[string]string{"GREETING": "hi"})
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	if res3.Cached != 3 {
		t.Errorf("rebuild after a change reused %d layers, want 3 (builder COPY and RUN, COPY --from)\n%s", res3.Cached, out)
	}
	if got, _ := e.fileIn(res3.Image, "data/a.txt"); got != "changed" {
		t.Errorf("/data/a.txt = %q after the change", got)
	}
}

func TestBuildFailures(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"failing RUN", map[string]string{"Dockerfile": "FROM busybox\nRUN echo about to fail && false\n"},
			"Dockerfile line 2: The command '/bin/sh -c echo about to fail && false' returned a non-zero code: 1"},
		{"unknown instruction", map[string]string{"Dockerfile": "FROM busybox\nFROBNICATE x\n"},
			"Dockerfile line 2: unknown instruction FROBNICATE"},
		{"unsupported instruction", map[string]string{"Dockerfile": "FROM busybox\n\nVOLUME /data\n"},
			"Dockerfile line 3: VOLUME is not supported"},
		{"instruction before FROM", map[string]string{"Dockerfile": "RUN true\nFROM busybox\n"},
			"Dockerfile line 1: RUN before the first FROM"},
		{"no FROM", map[string]string{"Dockerfile": "# nothing\n"}, "Dockerfile"},
		{"unknown base", map[string]string{"Dockerfile": "FROM nosuchimage\n"}, "Dockerfile line 1: FROM: no such stack"},
		{"missing source", map[string]string{"Dockerfile": "FROM busybox\nCOPY nothere /x\n"},
			"Dockerfile line 2: COPY: nothere: not found in the build context"},
		{"path escaping the context", map[string]string{"Dockerfile": "FROM busybox\nCOPY ../../../../etc/passwd /x\n"},
			"COPY: ../../../../etc/passwd: not found in the build context"},
		{"symlink out of the context", map[string]string{"Dockerfile": "FROM busybox\nCOPY evil /x\n", "evil": "->/etc/shadow"},
			"COPY: evil: not found in the build context"},
		{"symlinked Dockerfile out of the context", map[string]string{"Dockerfile": "->/etc/hostname"}, "Dockerfile"},
		{"ADD of a URL", map[string]string{"Dockerfile": "FROM busybox\nADD https://example.com/x /x\n"},
			"remote sources"},
		{"RUN in scratch", map[string]string{"Dockerfile": "FROM scratch\nRUN true\n"}, "FROM scratch has no shell"},
		{"fork bomb", map[string]string{"Dockerfile": "FROM busybox\nRUN bomb() { bomb | bomb & }; bomb; sleep 2; exit 3\n"},
			"returned a non-zero code"},
		{"bad chown", map[string]string{"Dockerfile": "FROM busybox\nCOPY Dockerfile /x\nCOPY --chown=nobody Dockerfile /y\n"},
			`no user "nobody"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, out, err := e.build(e.context(tc.files), nil)
			if err == nil {
				t.Fatalf("built %s\n%s", res.Image, out)
			}
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v; want ErrFailed with %q\n%s", err, tc.want, out)
			}
		})
	}
}

func TestBuildLimits(t *testing.T) {
	e := newEnv(t)
	e.b.Limits.Timeout = 2 * time.Second
	_, out, err := e.build(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN echo start; sleep 600\n"}), nil)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "did not finish within 2s") {
		t.Errorf("endless build: %v\n%s", err, out)
	}
	e.b.Limits.Timeout = time.Minute
	e.b.Limits.MaxLayerBytes = 1 << 20
	_, out, err = e.build(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1024 count=2048\n"}), nil)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "layer too large") && !strings.Contains(err.Error(), "wrote more than 1 MB") {
		t.Errorf("huge file: %v\n%s", err, out)
	}
	// A step that keeps writing is stopped while it runs, not after.
	_, out, err = e.build(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1024 count=4096; sleep 600\n"}), nil)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "Dockerfile line 2: RUN: stopped: the step wrote more than 1 MB") {
		t.Errorf("a step filling its layer: %v\n%s", err, out)
	}
	// So is a step when the disk under it runs low (here: a reserve
	// larger than any disk).
	e.b.Limits.MaxLayerBytes = 0
	e.b.Limits.DiskReserve = 1 << 60
	_, out, err = e.build(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 600\n"}), nil)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "stopped: the disk holding the build has") {
		t.Errorf("a step on a full disk: %v\n%s", err, out)
	}
}

func TestBuildAddArchive(t *testing.T) {
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile":    "FROM busybox\nADD assets.tar.gz /srv/\nADD notes.txt /srv/notes.txt\n",
		"assets.tar.gz": string(tarball(t, map[string]string{"a/b.txt": "inside the archive"})),
		"notes.txt":     "plain file",
	})
	res, out, err := e.build(dir, nil)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if got, _ := e.fileIn(res.Image, "srv/a/b.txt"); got != "inside the archive" {
		t.Errorf("/srv/a/b.txt = %q: ADD did not unpack the archive", got)
	}
	if got, _ := e.fileIn(res.Image, "srv/notes.txt"); got != "plain file" {
		t.Errorf("/srv/notes.txt = %q", got)
	}
	if _, ok := e.fileIn(res.Image, "srv/assets.tar.gz"); ok {
		t.Error("the archive itself was copied")
	}
}

// TestBuildNetwork runs a RUN step that fetches from a server on the
// host's loopback: it fails with the network off (the default: the step
// has only its own lo) and succeeds with Builder.Network.
func TestBuildNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the host\n") }))
	t.Cleanup(srv.Close)
	e := newEnv(t)
	df := "FROM busybox\nRUN wget -q -O /fetched " + srv.URL + "/\n"
	for _, network := range []bool{false, true} {
		e.b.Network = network
		res, out, err := e.build(e.context(map[string]string{"Dockerfile": df}), nil)
		if !network {
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "returned a non-zero code") {
				t.Errorf("network off: %v\n%s", err, out)
			}
			continue
		}
		if err != nil {
			t.Fatalf("network on: %v\n%s", err, out)
		}
		if got, _ := e.fileIn(res.Image, "fetched"); got != "from the host\n" {
			t.Errorf("network on: /fetched = %q", got)
		}
	}
}

// TestBuildHoldsBeforeStoring: Request.Hold gets the image's id before the
// image is stored, so a garbage collection right after the store keeps it.
func TestBuildHoldsBeforeStoring(t *testing.T) {
	e := newEnv(t)
	var held []string
	var out bytes.Buffer
	res, err := e.b.Build(context.Background(), Request{Context: e.context(map[string]string{"Dockerfile": "FROM busybox\nENV A=1\n"}),
		Cache: e.cache, Out: &out, Hold: func(id string) {
			if _, err := e.images.Resolve(id); err == nil {
				t.Errorf("held %s after it was stored", id)
			}
			held = append(held, id)
		}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(held) != 1 || held[0] != res.Image {
		t.Errorf("held %v, built %s", held, res.Image)
	}
}
