package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/image"
	"github.com/skiffhq/skiff/internal/image/imagetest"
)

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// testImage is a two-layer image whose content depends on seed.
func testImage(t *testing.T, seed string) v1.Image {
	t.Helper()
	return imagetest.Image(t, [][]byte{
		imagetest.Tar(t, imagetest.Entry{Header: tarHeader("base.txt"), Body: []byte("base " + seed)}),
		imagetest.Tar(t, imagetest.Entry{Header: tarHeader("app.txt"), Body: []byte("app " + seed)}),
	}, imagetest.WithCmd("/app"))
}

func push(t *testing.T, srv *httptest.Server, token, repo string, img v1.Image) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(hostOf(srv)+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "_", Password: token})); err != nil {
		t.Fatalf("push %s: %v", repo, err)
	}
	return ref
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestClients pushes and pulls with the real clients: crane (from the Go
// module) and skopeo (Debian), each reading what the other wrote.
func TestClients(t *testing.T) {
	crane := tool(t, "crane", "github.com/google/go-containerregistry/cmd/crane")
	_, srv := newRegistry(t, "")
	host := hostOf(srv)
	img := testImage(t, "clients")
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := imagetest.WriteLayout(t, img)

	// crane authenticates through a docker config written by crane auth login.
	cfg := t.TempDir()
	craneRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crane, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg, "HOME="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	craneRun("auth", "login", host, "-u", "_", "-p", aliceToken)
	craneRun("push", "--insecure", dir, host+"/myapp/web:latest")
	if got := craneRun("digest", "--insecure", host+"/myapp/web:latest"); got != want.String() {
		t.Errorf("crane digest after crane push = %s, want %s", got, want)
	}

	// skopeo reads what crane pushed and pushes it on to another repository.
	out := t.TempDir()
	run(t, "skopeo", "copy", "--src-tls-verify=false", "--src-creds", "_:"+aliceToken,
		"docker://"+host+"/myapp/web:latest", "oci:"+out+":pulled")
	run(t, "skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "anything:"+aliceToken,
		"oci:"+out+":pulled", "docker://"+host+"/myapp/worker:v1")
	if got := craneRun("digest", "--insecure", host+"/myapp/worker:v1"); got != want.String() {
		t.Errorf("digest after skopeo push = %s, want %s", got, want)
	}
	// crane pulls what skopeo pushed, as a tarball.
	craneRun("pull", "--insecure", host+"/myapp/worker:v1", filepath.Join(out, "worker.tar"))
	if tags := craneRun("ls", "--insecure", host+"/myapp/worker"); tags != "v1" {
		t.Errorf("crane ls = %q, want v1", tags)
	}
	if cat := craneRun("catalog", "--insecure", host); cat != "myapp/web\nmyapp/worker" {
		t.Errorf("alice's catalog = %q", cat)
	}
	// Another account sees none of it.
	craneRun("auth", "login", host, "-u", "bob", "-p", bobToken)
	if cat := craneRun("catalog", "--insecure", host); cat != "" {
		t.Errorf("bob's catalog = %q, want nothing", cat)
	}
	cmd := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "bob:"+bobToken, "docker://"+host+"/myapp/web:latest")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "denied") {
		t.Errorf("bob inspecting alice's image: err %v, output %s", err, b)
	}
}

func tarHeader(name string) tar.Header { return tar.Header{Name: name, Mode: 0o644} }

func digestParse(s string) digest.Digest { return digest.Digest(s) }

func goarch() string { return goruntime.GOARCH }

// indexOf makes an OCI index of images by platform ("os/arch").
func indexOf(t *testing.T, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for p, img := range imgs {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, token string, body []byte, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.SetBasicAuth("_", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}
}

// upload sends data as a monolithic upload (POST, then PUT) under digest.
func upload(t *testing.T, base, token string, data []byte, digest string) result {
	t.Helper()
	r := do(t, "POST", base+"/blobs/uploads/", token, nil, nil)
	if r.status != 202 {
		return r
	}
	return do(t, "PUT", r.header.Get("Location")+"&digest="+url.QueryEscape(digest), token, data,
		map[string]string{"Content-Type": "application/octet-stream"})
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// TestAuth covers who may do what, and the token flow.
func TestAuth(t *testing.T) {
	acc := testAccounts()
	_, srv := newRegistryWith(t, "", acc)
	push(t, srv, aliceToken, "myapp/web:latest", testImage(t, "auth"))
	url := srv.URL + "/v2/myapp/web/manifests/latest"
	accept := map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}
	for _, tc := range []struct {
		name, token string
		want        int
		code        string
	}{
		{"no credentials", "", 401, "UNAUTHORIZED"},
		{"bad token", "skf_nope", 401, "UNAUTHORIZED"},
		{"other account", bobToken, 403, "DENIED"},
		{"owner", aliceToken, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "GET", url, tc.token, nil, accept)
			if r.status != tc.want || !strings.Contains(r.body, tc.code) {
				t.Fatalf("status %d body %s, want %d %s", r.status, r.body, tc.want, tc.code)
			}
			if tc.want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="`+srv.URL+`/v2/token"`) {
				t.Errorf("WWW-Authenticate = %q", r.header.Values("WWW-Authenticate"))
			}
		})
	}
	// The token flow: Basic at /v2/token, then Bearer.
	r := do(t, "GET", srv.URL+"/v2/token?service=skiff&scope=repository:myapp/web:pull", aliceToken, nil, nil)
	var tok struct{ Token string }
	if r.status != 200 || json.Unmarshal([]byte(r.body), &tok) != nil || tok.Token == "" {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", accept["Accept"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if r := do(t, "GET", srv.URL+"/v2/token", "skf_nope", nil, nil); r.status != 401 {
		t.Errorf("token with a bad API token: %d", r.status)
	}
	// A forged or expired token is refused.
	k := &tokenKey{key: []byte("another key, not the registry's!")}
	// Revoking the API token ends the registry tokens issued for it.
	acc.mu.Lock()
	acc.revoked[aliceToken] = true
	acc.mu.Unlock()
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("bearer of a revoked API token: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	alice := Principal{Account: "alice", Token: "t"}
	for _, bad := range []string{k.issue(alice, time.Now().Add(time.Hour)), "skr.x.y"} {
		req.Header.Set("Authorization", "Bearer "+bad)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Errorf("forged token: %v %v", resp.Status, err)
		}
		resp.Body.Close()
	}
}

// TestBadInput sends what a registry must refuse, and checks that nothing
// was stored.
func TestBadInput(t *testing.T) {
	_, srv := newRegistry(t, "")
	base := srv.URL + "/v2/myapp/web"
	blob := []byte("some blob content")
	missing := push(t, srv, aliceToken, "myapp/web:ok", testImage(t, "bad"))
	_ = missing
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if r := upload(t, base, aliceToken, config, sha(config)); r.status != 201 {
		t.Fatalf("config upload: %d %s", r.status, r.body)
	}
	manifest := func(layer string) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":10}]}`, sha(config), len(config), layer))
	}
	ociManifest := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	big := append([]byte(`{"schemaVersion":2,"annotations":{"x":"`), bytes.Repeat([]byte("a"), 5<<20)...)
	big = append(big, `"}}`...)
	for _, tc := range []struct {
		name, method, url string
		body              []byte
		hdr               map[string]string
		status            int
		code              string
		absent            string // a URL that must stay 404 afterwards
	}{
		{"wrong digest", "UPLOAD", sha([]byte("other")), blob, nil, 400, "DIGEST_INVALID", base + "/blobs/" + sha(blob)},
		{"malformed digest", "UPLOAD", "sha256:xyz", blob, nil, 400, "DIGEST_INVALID", base + "/blobs/" + sha(blob)},
		{"sha512", "UPLOAD", "sha512:" + strings.Repeat("a", 128), blob, nil, 400, "DIGEST_INVALID", ""},
		{"missing layer", "PUT", base + "/manifests/broken", manifest(sha([]byte("never pushed"))), ociManifest, 400, "MANIFEST_BLOB_UNKNOWN", base + "/manifests/broken"},
		{"not a manifest", "PUT", base + "/manifests/junk", []byte("{not json"), ociManifest, 400, "MANIFEST_INVALID", base + "/manifests/junk"},
		{"invalid tag", "PUT", base + "/manifests/-bad.tag", manifest(sha(config)), ociManifest, 0, "", ""},
		{"oversized manifest", "PUT", base + "/manifests/big", big, ociManifest, 0, "", base + "/manifests/big"},
		{"manifest digest mismatch", "PUT", base + "/manifests/" + sha([]byte("x")), manifest(sha(config)), ociManifest, 400, "DIGEST_INVALID", ""},
		{"three-part name", "GET", srv.URL + "/v2/a/b/c/tags/list", nil, nil, 404, "NAME_INVALID", ""},
		{"unknown blob", "GET", base + "/blobs/" + sha([]byte("nope")), nil, nil, 404, "BLOB_UNKNOWN", ""},
		{"unknown manifest", "GET", base + "/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			if tc.method == "UPLOAD" {
				r = upload(t, base, aliceToken, tc.body, tc.url)
			} else {
				r = do(t, tc.method, tc.url, aliceToken, tc.body, tc.hdr)
			}
			if tc.status == 0 { // refused, whatever the exact answer
				if r.status < 400 {
					t.Fatalf("status %d %s, want a refusal", r.status, r.body)
				}
			} else if r.status != tc.status || !strings.Contains(r.body, tc.code) {
				t.Fatalf("status %d body %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.absent != "" {
				if r := do(t, "HEAD", tc.absent, aliceToken, nil, nil); r.status != 404 {
					t.Errorf("after the refusal %s answers %d", tc.absent, r.status)
				}
			}
		})
	}
	// A chunk that does not continue the upload where it stands is refused,
	// and the upload can resume from its real offset.
	r := do(t, "POST", base+"/blobs/uploads/", aliceToken, nil, nil)
	loc := r.header.Get("Location")
	if r.status != 202 || loc == "" {
		t.Fatalf("start upload: %d", r.status)
	}
	r = do(t, "PATCH", loc, aliceToken, blob[:5], map[string]string{"Content-Range": "0-4", "Content-Type": "application/octet-stream"})
	if r.status != 202 || r.header.Get("Range") != "0-4" {
		t.Fatalf("first chunk: %d range %q", r.status, r.header.Get("Range"))
	}
	loc = r.header.Get("Location")
	if r := do(t, "PATCH", loc, aliceToken, blob[8:], map[string]string{"Content-Range": fmt.Sprintf("8-%d", len(blob)-1)}); r.status != 416 {
		t.Errorf("out-of-order chunk: %d, want 416", r.status)
	}
	r = do(t, "GET", loc, aliceToken, nil, nil)
	if r.status != 204 || r.header.Get("Range") != "0-4" {
		t.Fatalf("upload status: %d range %q", r.status, r.header.Get("Range"))
	}
	r = do(t, "PATCH", r.header.Get("Location"), aliceToken, blob[5:], map[string]string{"Content-Range": fmt.Sprintf("5-%d", len(blob)-1)})
	if r.status != 202 {
		t.Fatalf("resumed chunk: %d %s", r.status, r.body)
	}
	r = do(t, "PUT", r.header.Get("Location")+"&digest="+sha(blob), aliceToken, nil, nil)
	if r.status != 201 {
		t.Fatalf("finish upload: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/blobs/"+sha(blob), aliceToken, nil, nil); r.status != 200 || r.body != string(blob) {
		t.Errorf("resumed blob: %d %q", r.status, r.body)
	}
}

// TestConcurrentPushes pushes one image from many clients at once.
func TestConcurrentPushes(t *testing.T) {
	_, srv := newRegistry(t, "")
	img := testImage(t, "concurrent")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref, _ := name.ParseReference(fmt.Sprintf("%s/myapp/web:t%d", hostOf(srv), i), name.Insecure)
			errs <- remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken}))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ref, _ := name.ParseReference(hostOf(srv)+"/myapp/web:t3", name.Insecure)
	got, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken}))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("layer: %v", err) // ggcr verifies the digest as it reads
		}
		rc.Close()
	}
}

// TestRestart reopens the registry on its directory: what was acknowledged
// is served, and an upload begun before resumes after.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	r1, srv1 := newRegistry(t, dir)
	img := testImage(t, "restart")
	push(t, srv1, aliceToken, "myapp/web:latest", img)
	blob := []byte("half an upload, then the rest")
	r := do(t, "POST", srv1.URL+"/v2/myapp/web/blobs/uploads/", aliceToken, nil, nil)
	r = do(t, "PATCH", r.header.Get("Location"), aliceToken, blob[:10], map[string]string{"Content-Range": "0-9"})
	loc := strings.TrimPrefix(r.header.Get("Location"), srv1.URL)
	srv1.Close()
	r1.Close()

	_, srv2 := newRegistry(t, dir)
	ref, _ := name.ParseReference(hostOf(srv2)+"/myapp/web:latest", name.Insecure)
	got, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken}))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digestOf(t, got), digestOf(t, img); a != b {
		t.Errorf("after restart %s, pushed %s", a, b)
	}
	r = do(t, "PATCH", srv2.URL+loc, aliceToken, blob[10:], map[string]string{"Content-Range": fmt.Sprintf("10-%d", len(blob)-1)})
	if r.status != 202 {
		t.Fatalf("resume after restart: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", r.header.Get("Location")+"&digest="+sha(blob), aliceToken, nil, nil); r.status != 201 {
		t.Fatalf("finish after restart: %d %s", r.status, r.body)
	}
}

// checkShared checks that layer i of img is one file in the registry and
// in the image store.
func checkShared(t *testing.T, reg *Registry, store *image.Store, img v1.Image, i int) {
	t.Helper()
	layers, _ := img.Layers()
	ld, _ := layers[i].Digest()
	a, errA := os.Stat(reg.blobPath(digestParse(ld.String())))
	b, errB := os.Stat(filepath.Join(store.Dir(), "blobs", "sha256", ld.Hex))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("layer %d not shared: %v %v", i, errA, errB)
	}
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestImportAndGC releases an image into the image store (sharing the
// layer files), then collects garbage: what keep names stays, with its
// blobs; the rest goes once the grace period is over.
func TestImportAndGC(t *testing.T) {
	reg, srv := newRegistry(t, "")
	store, err := image.Open(filepath.Join(reg.cfg.Dir, "..", "images-"+filepath.Base(reg.cfg.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	v1img, v2img := testImage(t, "one"), testImage(t, "two")
	push(t, srv, aliceToken, "myapp/web:latest", v1img)
	cfg1, _ := v1img.ConfigName()
	push(t, srv, aliceToken, "myapp/web:latest", v2img) // v1 is now untagged
	ctx := context.Background()

	if _, err := reg.Import(ctx, store, "myapp", "web", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Fatal("importing an unknown image succeeded")
	}
	ref, err := reg.Import(ctx, store, "myapp", "web", cfg1.String())
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID != cfg1.String() {
		t.Fatalf("imported %s, want %s", ref.ID, cfg1)
	}
	// One copy on disk: the store's layer blob is the registry's file.
	checkShared(t, reg, store, v1img, 0)
	im, err := store.Image(ref.ID)
	if err != nil || len(im.Layers) != 2 || im.Config.Cmd[0] != "/app" {
		t.Fatalf("Image = %+v, %v", im, err)
	}

	// Within the grace period nothing goes.
	if st, err := reg.GC(ctx, nil); err != nil || st.Manifests+st.Blobs != 0 {
		t.Fatalf("GC within grace = %+v, %v", st, err)
	}
	defer func(orig func() time.Time) { timeNow = orig }(timeNow)
	timeNow = func() time.Time { return time.Now().Add(2 * time.Hour) }
	keep := func(id string) bool { return id == cfg1.String() }
	if st, err := reg.GC(ctx, keep); err != nil || st.Manifests != 0 || st.Blobs != 0 {
		t.Fatalf("GC keeping v1 = %+v, %v", st, err)
	}
	if _, err := reg.Import(ctx, store, "myapp", "web", cfg1.String()); err != nil {
		t.Fatalf("v1 after a GC that keeps it: %v", err)
	}
	// Nothing keeps v1 any more: its manifest and own blobs go; the image
	// store keeps its copy as long as its own keep says so.
	st, err := reg.GC(ctx, nil)
	if err != nil || st.Manifests != 1 || st.Blobs != 4 { // manifest, config, two layers
		t.Fatalf("GC = %+v, %v", st, err)
	}
	push(t, srv, aliceToken, "myapp/web:latest", v2img) // v2 still whole
	if _, err := store.Image(ref.ID); err != nil {
		t.Fatalf("the image store lost v1: %v", err)
	}
	rs, err := store.Retain(func(string) bool { return false })
	if err != nil || rs.Images != 1 {
		t.Fatalf("Retain = %+v, %v", rs, err)
	}
	if _, err := store.Resolve(ref.ID); err == nil {
		t.Error("v1 still in the image store after Retain")
	}
}

// TestMultiPlatform releases from an index: the host's image is taken; an
// index without it is refused with a clear error.
func TestMultiPlatform(t *testing.T) {
	reg, srv := newRegistry(t, "")
	store, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other := imagetest.Image(t, [][]byte{imagetest.Tar(t, imagetest.Entry{Header: tarHeader("x"), Body: []byte("x")})},
		imagetest.WithPlatform("linux", "s390x", ""))
	ref, _ := name.ParseReference(hostOf(srv)+"/myapp/web:multi", name.Insecure)
	auth := remote.WithAuth(&authn.Basic{Username: "_", Password: aliceToken})
	idx := indexOf(t, map[string]v1.Image{"linux/s390x": other})
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	_, err = reg.Import(ctx, store, "myapp", "web", d.String())
	if err == nil || !strings.Contains(err.Error(), "no image for this platform") {
		t.Fatalf("import of an index without the host's platform: %v", err)
	}
	host := testImage(t, "host")
	idx = indexOf(t, map[string]v1.Image{"linux/s390x": other, "linux/" + goarch(): host})
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		t.Fatal(err)
	}
	d, _ = idx.Digest()
	got, err := reg.Import(ctx, store, "myapp", "web", d.String())
	hostCfg, _ := host.ConfigName()
	if err != nil || got.ID != hostCfg.String() || got.Index != d.String() {
		t.Fatalf("import of a multi-platform index = %+v, %v", got, err)
	}
	// A client that accepts only Docker manifests (heroku container:release)
	// reads the host's image from the index.
	r := do(t, "GET", srv.URL+"/v2/myapp/web/manifests/multi", aliceToken, nil,
		map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
	if r.status != 200 || !strings.Contains(r.body, hostCfg.String()) {
		t.Errorf("docker-only read of an index: %d %s", r.status, r.body)
	}
}

// TestHerokuManifestRead reads a manifest exactly as `heroku
// container:release` does: Basic with an empty user name, Docker v2 only.
func TestHerokuManifestRead(t *testing.T) {
	_, srv := newRegistry(t, "")
	img := testImage(t, "heroku") // OCI media types, as crane and buildkit push
	push(t, srv, aliceToken, "myapp/web:latest", img)
	cfg, _ := img.ConfigName()
	req, _ := http.NewRequest("GET", srv.URL+"/v2/myapp/web/manifests/latest", nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+aliceToken)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		SchemaVersion int
		Config        struct{ Digest string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 || m.SchemaVersion != 2 || m.Config.Digest != cfg.String() {
		t.Fatalf("status %d, manifest %+v, %v; want config %s", resp.StatusCode, m, err, cfg)
	}
}

// TestCatalogPages lists an account's repositories a page at a time.
func TestCatalogPages(t *testing.T) {
	_, srv := newRegistry(t, "")
	img := testImage(t, "catalog")
	for _, repo := range []string{"myapp/web", "myapp/worker", "other/web"} {
		push(t, srv, aliceToken, repo+":latest", img)
	}
	r := do(t, "GET", srv.URL+"/v2/_catalog?n=2", aliceToken, nil, nil)
	if r.status != 200 || strings.TrimSpace(r.body) != `{"repositories":["myapp/web","myapp/worker"]}` ||
		r.header.Get("Link") != `</v2/_catalog?last=myapp%2Fworker&n=2>; rel="next"` {
		t.Fatalf("first page: %d %s Link %q", r.status, r.body, r.header.Get("Link"))
	}
	r = do(t, "GET", srv.URL+"/v2/_catalog?n=2&last=myapp/worker", aliceToken, nil, nil)
	if strings.TrimSpace(r.body) != `{"repositories":["other/web"]}` || r.header.Get("Link") != "" {
		t.Fatalf("last page: %s Link %q", r.body, r.header.Get("Link"))
	}
	if r := do(t, "GET", srv.URL+"/v2/_catalog", bobToken, nil, nil); strings.TrimSpace(r.body) != `{"repositories":[]}` {
		t.Errorf("bob's catalog: %s", r.body)
	}
}
