package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

// withRegistry is the flag that gives a test server its registry.
var withRegistry = []string{"--registry-addr", "127.0.0.1:0"}

// skopeoPush copies the OCI layout dir into the registry as a Docker v2
// schema 2 image, as `docker push` would send it.
func skopeoPush(t *testing.T, s *server, token, layout, repo string) {
	t.Helper()
	out, err := exec.Command("skopeo", "copy", "--format", "v2s2", "--dest-tls-verify=false", "--dest-creds", "_:"+token,
		"oci:"+layout, "docker://"+s.Registry+"/"+repo).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to %s: %v\n%s", repo, err, out)
	}
}

// imageID reads the image id (config digest) of the image in a layout.
func imageID(t *testing.T, layout string) string {
	t.Helper()
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	refs, err := store.ImportLayout(layout)
	if err != nil {
		t.Fatal(err)
	}
	return refs[0].ID
}

// nodeHook is loaded into the heroku CLI with --require. The CLI reaches the
// registry only as https://registry.<HEROKU_HOST> on port 443 (heroku-cli.md
// §5), so it must run with a bare-domain HEROKU_HOST (localhost): this hook
// sends its requests for api.localhost and registry.localhost to the test
// server's API and registry listeners instead, unchanged otherwise. It stands
// in for the DNS and TLS front a real deployment has.
const nodeHook = `
const http = require('http'), https = require('https');
const hosts = JSON.parse(process.env.SKIFF_TEST_HOSTS);
const request = https.request;
https.request = function (options, cb) {
  const h = options && (options.hostname || options.host);
  if (typeof options === 'object' && hosts[h]) {
    const [host, port] = hosts[h].split(':');
    const o = Object.assign({}, options, {protocol: 'http:', host: host, hostname: host, port: Number(port), agent: undefined});
    return http.request(o, cb);
  }
  return request.apply(this, arguments);
};
`

// containerCLI returns the environment for the heroku CLI in bare-domain
// mode against s (see nodeHook).
func (c *herokuCLI) containerEnv(t *testing.T) []string {
	t.Helper()
	hook := filepath.Join(t.TempDir(), "hosts.js")
	if err := os.WriteFile(hook, []byte(nodeHook), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts, _ := json.Marshal(map[string]string{
		"api.localhost":      strings.TrimPrefix(c.srv.URL, "http://"),
		"registry.localhost": c.srv.Registry,
	})
	headers, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + c.token})
	var env []string
	for _, e := range c.env() {
		if !strings.HasPrefix(e, "HEROKU_HOST=") {
			env = append(env, e)
		}
	}
	return append(env, "HEROKU_HOST=localhost", "NODE_OPTIONS=--require "+hook,
		"SKIFF_TEST_HOSTS="+string(hosts), "HEROKU_HEADERS="+string(headers))
}

// TestHerokuContainerRelease pushes with skopeo and releases with the
// official CLI's `heroku container:release`, which reads the manifest from
// the registry with an empty Basic user name and PATCHes the formation.
func TestHerokuContainerRelease(t *testing.T) {
	t.Parallel()
	s := startServerIn(t, t.TempDir(), true, withRegistry...)
	h := s.heroku(t, s.AdminToken)
	h.ok(t, "apps:create", "ctrapp")
	layout := imagetest.BuildGo(t, dynoApp, imagetest.WithEnv("VERSION=one"))
	skopeoPush(t, s, s.AdminToken, layout, "ctrapp/web:latest")
	skopeoPush(t, s, s.AdminToken, layout, "ctrapp/worker:latest")
	id := imageID(t, layout)

	env := h.containerEnv(t)
	res := runProcess(t, herokuBinary(t), []string{"container:release", "web", "worker", "-a", "ctrapp"}, env, nil)
	if res.Code != 0 {
		t.Fatalf("heroku container:release: exit %d\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	wantContains(t, res, "stderr", "Releasing images web,worker to ctrapp... done")
	res = h.ok(t, "releases", "-a", "ctrapp")
	wantMatch(t, res, "stdout", `(?m)^\s*v3\s+Deploy `+strings.TrimPrefix(id, "sha256:")[:8]+`\s`)
	var formation []struct {
		Type    string
		Command string
	}
	s.apiJSON(t, s.AdminToken, "GET", "/apps/ctrapp/formation", nil, "", 200, &formation)
	if len(formation) != 2 || formation[0].Type != "web" || formation[1].Type != "worker" {
		t.Errorf("formation after the release: %+v", formation)
	}

	// Nothing pushed for that type: the CLI fails, nothing is released.
	res = runProcess(t, herokuBinary(t), []string{"container:release", "clock", "-a", "ctrapp"}, env, nil)
	if res.Code == 0 {
		t.Fatalf("container:release of a type never pushed succeeded:\n%s", res.Stderr)
	}
	t.Logf("container:release clock: %s", res.Stderr)
	res = h.ok(t, "releases", "-a", "ctrapp")
	wantNotContains(t, res, "stdout", "v4")

	// A token of another account may not read the app's images.
	other := s.createAccount(t, "other@example.org", "secret-password")
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "_:"+other,
		"docker://"+s.Registry+"/ctrapp/web:latest").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "denied") {
		t.Errorf("another account inspecting ctrapp/web: %v\n%s", err, out)
	}
}

// versionApp prints its image's VERSION every second.
const versionApp = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	for {
		fmt.Println("running version", os.Getenv("VERSION"))
		time.Sleep(time.Second)
	}
}
`

// TestContainerRollbackAfterGC: push v1 → release → push v2 → release →
// rollback to v1, all with the skiff client; then a restart that collects
// garbage keeping only the newest release: v2 is gone, v1 runs again.
func TestContainerRollbackAfterGC(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	const bridge, subnet = "skrg1", "10.213.248.0/24"
	s := startServerIn(t, dataDir, true, append(withRegistry, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet)...)
	tok := s.AdminToken
	s.skiff(t, tok, "apps:create", "rbapp")
	v1 := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=v1"))
	v2 := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=v2"))
	id1, id2 := imageID(t, v1), imageID(t, v2)

	push := func(layout string) {
		t.Helper()
		res := s.skiff(t, tok, "container:push", "worker", "--image", layout, "--registry", s.Registry, "-a", "rbapp")
		if res.Code != 0 {
			t.Fatalf("skiff container:push: exit %d\n%s", res.Code, res.Stderr)
		}
	}
	release := func() {
		t.Helper()
		res := s.skiff(t, tok, "container:release", "worker", "--registry", s.Registry, "-a", "rbapp")
		if res.Code != 0 {
			t.Fatalf("skiff container:release: exit %d\n%s", res.Code, res.Stderr)
		}
		wantContains(t, res, "stderr", "Releasing images worker to rbapp... done")
	}
	push(v1)
	release() // v3 (v2 enabled Logplex at creation)
	scale := s.skiff(t, tok, "ps:scale", "worker=1", "-a", "rbapp")
	if scale.Code != 0 {
		t.Fatalf("ps:scale: %s", scale.Stderr)
	}
	waitLog(t, s, tok, "rbapp", "running version v1")
	push(v2)
	release() // v4
	waitLog(t, s, tok, "rbapp", "running version v2")
	if res := s.skiff(t, tok, "rollback", "v3", "-a", "rbapp"); res.Code != 0 { // v5
		t.Fatalf("rollback: %s", res.Stderr)
	}
	res := s.skiff(t, tok, "releases", "-a", "rbapp")
	wantContains(t, res, "stdout", "Deploy "+strings.TrimPrefix(id1, "sha256:")[:8])
	wantContains(t, res, "stdout", "Deploy "+strings.TrimPrefix(id2, "sha256:")[:8])
	wantContains(t, res, "stdout", "Rollback to v3")

	// Restart with a garbage collection that keeps the images of the newest
	// release only (v5, which runs v1).
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s = startServerIn(t, dataDir, false, append(withRegistry, "--dynos=true", "--dyno-bridge", bridge, "--dyno-subnet", subnet,
		"--registry-keep-releases", "1", "--registry-gc-grace", "0")...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.stderr.String(), "image gc") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(s.stderr.String(), "images_removed=1") {
		t.Errorf("the garbage collection did not remove v2:\n%s", s.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dataDir, "images", "refs", strings.TrimPrefix(id2, "sha256:"))); err == nil {
		t.Error("v2 is still in the image store")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "images", "refs", strings.TrimPrefix(id1, "sha256:"))); err != nil {
		t.Errorf("v1 is gone from the image store: %v", err)
	}
	marker := time.Now()
	waitLogAfter(t, s, tok, "rbapp", "running version v1", marker)

	// v2 left the image store, but its tag keeps it in the registry: a
	// rollback to v4 imports it again and runs it.
	if res := s.skiff(t, tok, "rollback", "v4", "-a", "rbapp"); res.Code != 0 { // v6
		t.Fatalf("rollback to v4 after GC: %s", res.Stderr)
	}
	waitLogAfter(t, s, tok, "rbapp", "running version v2", time.Now().Add(-time.Second))

	// An image whose layer escapes its root is refused at release, before
	// any dyno runs it; nothing is released.
	evil := imagetest.Layout(t, [][]byte{imagetest.Tar(t, imagetest.Entry{
		Header: tar.Header{Name: "../../escaped", Mode: 0o644}, Body: []byte("out")})}, imagetest.WithCmd("/escaped"))
	res = s.skiff(t, tok, "container:push", "evil", "--image", evil, "--registry", s.Registry, "-a", "rbapp")
	if res.Code != 0 {
		t.Fatalf("push of the evil image: %s", res.Stderr)
	}
	res = s.skiff(t, tok, "container:release", "evil", "--registry", s.Registry, "-a", "rbapp")
	if res.Code == 0 {
		t.Fatalf("an image whose layer escapes its root was released:\n%s", res.Stderr)
	}
	wantContains(t, res, "stderr", "invalid layer")
	res = s.skiff(t, tok, "releases", "-a", "rbapp")
	wantNotContains(t, res, "stdout", "v7")
	// v1 can still be pulled from the registry: a release refers to it.
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "_:"+tok, "--config",
		"docker://"+s.Registry+"/rbapp/worker@"+manifestDigest(t, v1)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "VERSION=v1") {
		t.Errorf("v1 from the registry after GC: %v\n%s", err, out)
	}
}

// manifestDigest is the digest of the one manifest of a layout.
func manifestDigest(t *testing.T, layout string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	return idx.Manifests[0].Digest
}

func waitLog(t *testing.T, s *server, tok, app, line string) {
	t.Helper()
	waitLogAfter(t, s, tok, app, line, time.Time{})
}

// waitLogAfter waits for line in the app's log, written after since.
func waitLogAfter(t *testing.T, s *server, tok, app, line string, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res := s.skiff(t, tok, "logs", "-a", app, "-n", "1500")
		last = res.Stdout
		for _, l := range strings.Split(res.Stdout, "\n") {
			ts, rest, ok := strings.Cut(l, " ")
			if !ok || !strings.HasSuffix(rest, line) {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err == nil && at.After(since) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no %q in the log of %s after %s:\n%s", line, app, since, last)
}

// TestRegistryCrash kills the server with SIGKILL while a blob is being
// uploaded: after a restart the image pushed before is served whole, the
// interrupted blob is absent (no partial blob under its digest), and the
// same push then succeeds.
func TestRegistryCrash(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startServerIn(t, dataDir, true, withRegistry...)
	tok := s.AdminToken
	s.skiff(t, tok, "apps:create", "crashapp")
	layout := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=crash"))
	skopeoPush(t, s, tok, layout, "crashapp/web:latest")

	// A 64 MB blob, streamed slowly enough to be cut in the middle.
	blob := make([]byte, 64<<20)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	sum := sha256.Sum256(blob)
	dg := "sha256:" + hex.EncodeToString(sum[:])
	base := "http://" + s.Registry + "/v2/crashapp/web/blobs/"
	req, _ := http.NewRequest("POST", base+"uploads/", nil)
	req.SetBasicAuth("_", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("start upload: %v %v", resp, err)
	}
	resp.Body.Close()
	pr, pw := io.Pipe()
	req, _ = http.NewRequest("PUT", resp.Header.Get("Location")+"&digest="+dg, pr)
	req.SetBasicAuth("_", tok)
	req.ContentLength = int64(len(blob))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the upload finished: %s", resp.Status)
		}
		done <- err
	}()
	if _, err := pw.Write(blob[:40<<20]); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	pw.Close()
	if err := <-done; err == nil || strings.Contains(err.Error(), "finished") {
		t.Fatalf("upload cut by SIGKILL: %v", err)
	}

	s = startServerIn(t, dataDir, false, withRegistry...)
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "_:"+tok, "--config",
		"docker://"+s.Registry+"/crashapp/web:latest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "VERSION=crash") {
		t.Fatalf("the image pushed before the crash: %v\n%s", err, out)
	}
	out, err = exec.Command("skopeo", "copy", "--src-tls-verify=false", "--src-creds", "_:"+tok,
		"docker://"+s.Registry+"/crashapp/web:latest", "oci:"+t.TempDir()+":x").CombinedOutput()
	if err != nil {
		t.Fatalf("pull after the crash (every blob verified): %v\n%s", err, out)
	}
	head := func() int {
		req, _ := http.NewRequest("HEAD", "http://"+s.Registry+"/v2/crashapp/web/blobs/"+dg, nil)
		req.SetBasicAuth("_", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := head(); code != 404 {
		t.Errorf("the interrupted blob answers %d, want 404", code)
	}
	req, _ = http.NewRequest("POST", "http://"+s.Registry+"/v2/crashapp/web/blobs/uploads/", nil)
	req.SetBasicAuth("_", tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("start upload after restart: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("PUT", resp.Header.Get("Location")+"&digest="+dg, bytes.NewReader(blob))
	req.SetBasicAuth("_", tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload after restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if code := head(); code != 200 {
		t.Errorf("the blob after its upload answers %d", code)
	}
}

// TestRegistryTLS serves the registry over HTTPS with a certificate from
// the server's local CA, which clients trust through its ca.pem.
func TestRegistryTLS(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startServerIn(t, dataDir, true, append(withRegistry, "--registry-tls=true")...)
	tok := s.AdminToken
	s.skiff(t, tok, "apps:create", "tlsapp")
	ca := filepath.Join(dataDir, "pki", "ca.pem")
	certs := t.TempDir()
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "ca.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	layout := imagetest.BuildGo(t, versionApp, imagetest.WithEnv("VERSION=tls"))
	out, err := exec.Command("skopeo", "copy", "--dest-cert-dir", certs, "--dest-creds", "_:"+tok,
		"oci:"+layout, "docker://"+s.Registry+"/tlsapp/web:latest").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo push over TLS: %v\n%s", err, out)
	}
	// Without the CA, the certificate is refused.
	out, err = exec.Command("skopeo", "inspect", "--creds", "_:"+tok, "docker://"+s.Registry+"/tlsapp/web:latest").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Errorf("skopeo without the CA: %v\n%s", err, out)
	}
	// The skiff client trusts it through SSL_CERT_FILE.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SKIFF_API_URL=" + s.URL, "SKIFF_API_KEY=" + tok,
		"SSL_CERT_FILE=" + ca}
	res := runProcess(t, skiffBinary(t), []string{"container:release", "web", "--registry", s.Registry, "-a", "tlsapp"}, env, nil)
	if res.Code != 0 {
		t.Fatalf("skiff container:release over TLS: %s", res.Stderr)
	}
	res = s.skiff(t, tok, "releases", "-a", "tlsapp")
	wantContains(t, res, "stdout", "Deploy "+strings.TrimPrefix(imageID(t, layout), "sha256:")[:8])
}

// TestContainerMultiPlatform releases a multi-platform index with the skiff
// client: the host's image is taken; an index without one is refused at
// release with the platforms it has.
func TestContainerMultiPlatform(t *testing.T) {
	t.Parallel()
	s := startServerIn(t, t.TempDir(), true, withRegistry...)
	tok := s.AdminToken
	s.skiff(t, tok, "apps:create", "multiapp")
	layer := imagetest.Tar(t, imagetest.Entry{Header: tar.Header{Name: "app", Mode: 0o755}, Body: []byte("#!/bin/sh\n")})
	host := imagetest.Image(t, [][]byte{layer}, imagetest.WithCmd("/app"))
	other := imagetest.Image(t, [][]byte{layer}, imagetest.WithCmd("/app"), imagetest.WithPlatform("linux", "s390x", ""))
	index := func(imgs map[string]v1.Image) string {
		var adds []mutate.IndexAddendum
		for p, img := range imgs {
			plat, _ := v1.ParsePlatform(p)
			adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
		}
		return imagetest.WriteLayout(t, mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex))
	}
	pushRelease := func(layout, typ string) result {
		t.Helper()
		if res := s.skiff(t, tok, "container:push", typ, "--image", layout, "--registry", s.Registry, "-a", "multiapp"); res.Code != 0 {
			t.Fatalf("push: %s", res.Stderr)
		}
		return s.skiff(t, tok, "container:release", typ, "--registry", s.Registry, "-a", "multiapp")
	}
	res := pushRelease(index(map[string]v1.Image{"linux/" + goruntime.GOARCH: host, "linux/s390x": other}), "web")
	if res.Code != 0 {
		t.Fatalf("release of a multi-platform index: %s", res.Stderr)
	}
	var rel struct {
		Description string
	}
	s.apiJSON(t, tok, "GET", "/apps/multiapp/releases/3", nil, "", 200, &rel)
	if !strings.HasPrefix(rel.Description, "Deploy ") {
		t.Errorf("release v3: %q", rel.Description)
	}
	res = pushRelease(index(map[string]v1.Image{"linux/s390x": other}), "worker")
	if res.Code == 0 {
		t.Fatal("an index without the host's platform was released")
	}
	wantContains(t, res, "stderr", "no image for this platform: want linux/"+goruntime.GOARCH+", the index has linux/s390x")
}
