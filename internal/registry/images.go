package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/image"
)

// ErrNoImage is wrapped by Import's error when the repository holds no
// image with the id asked for.
var ErrNoImage = errors.New("no such image in the registry")

// maxSearch bounds how many manifests Import reads looking for an image id.
const maxSearch = 1000

// Import finds in repository <app>/<typ> the image whose id (config digest),
// manifest digest or index digest is id, and stores it in images, sharing
// its blob files rather than copying them. Tags are searched first
// ("latest" before the others), then every manifest of the repository.
// An index is stored as its image for the store's platform; an error
// wrapping image.ErrNoPlatform says when it has none.
func (r *Registry) Import(ctx context.Context, images *image.Store, app, typ, id string) (image.ImageRef, error) {
	if _, err := digest.Parse(id); err != nil {
		return image.ImageRef{}, fmt.Errorf("image %q: %w", id, err)
	}
	r.gc.RLock() // GC must not sweep what is being copied
	defer r.gc.RUnlock()
	name := app + "/" + typ
	repo, err := r.repository(ctx, name)
	if err != nil {
		return image.ImageRef{}, err
	}
	raw, mt, err := r.find(ctx, repo, digest.Digest(id))
	if err != nil {
		return image.ImageRef{}, fmt.Errorf("%s: %w", name, err)
	}
	ref, err := images.Put(raw, mt, r.blobSource(ctx, repo))
	if err != nil {
		return image.ImageRef{}, fmt.Errorf("%s: %w", name, err)
	}
	return ref, nil
}

func (r *Registry) repository(ctx context.Context, name string) (distribution.Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", name, err)
	}
	return r.ns.Repository(ctx, named)
}

// find returns the manifest (or index) that id names in repo.
func (r *Registry) find(ctx context.Context, repo distribution.Repository, id digest.Digest) ([]byte, string, error) {
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, "", err
	}
	seen := map[digest.Digest]bool{}
	var found []byte
	var foundType string
	try := func(d digest.Digest) bool {
		if seen[d] || len(seen) >= maxSearch {
			return false
		}
		seen[d] = true
		mt, payload, err := payloadOf(ctx, ms, d)
		if err != nil {
			return false
		}
		if d == id || matchesConfig(payload, id) {
			found, foundType = payload, mt
			return true
		}
		// An image id of one platform of an index: return that image.
		if idx, err := v1.ParseIndexManifest(bytes.NewReader(payload)); err == nil && len(idx.Manifests) > 0 && kindIsIndex(mt) {
			for _, c := range idx.Manifests {
				cmt, cp, err := payloadOf(ctx, ms, digest.Digest(c.Digest.String()))
				if err == nil && matchesConfig(cp, id) {
					found, foundType = cp, cmt
					return true
				}
			}
		}
		return false
	}
	if ok, _ := ms.Exists(ctx, id); ok && try(id) {
		return found, foundType, nil
	}
	tags := repo.Tags(ctx)
	all, _ := tags.All(ctx)
	names := append([]string{"latest"}, all...)
	for _, t := range names {
		if d, err := tags.Get(ctx, t); err == nil && try(d.Digest) {
			return found, foundType, nil
		}
	}
	if en, ok := ms.(distribution.ManifestEnumerator); ok {
		ok := false
		en.Enumerate(ctx, func(d digest.Digest) error {
			if ok = try(d); ok {
				return errors.New("found") // stops the walk (the driver wraps it)
			}
			return nil
		})
		if ok {
			return found, foundType, nil
		}
	}
	return nil, "", fmt.Errorf("%w: %s (push it first)", ErrNoImage, id)
}

func kindIsIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

// matchesConfig reports whether payload is an image manifest with config id.
func matchesConfig(payload []byte, id digest.Digest) bool {
	m, err := v1.ParseManifest(bytes.NewReader(payload))
	return err == nil && m.Config.Digest.String() == id.String()
}

// blobs is an image.BlobSource over one repository that can also name each
// blob's file, so the image store links it rather than copying it.
type blobs struct {
	ctx  context.Context
	r    *Registry
	repo distribution.Repository
}

func (r *Registry) blobSource(ctx context.Context, repo distribution.Repository) blobs {
	return blobs{ctx: ctx, r: r, repo: repo}
}

func (b blobs) Open(d string) (io.ReadCloser, error) {
	dg, err := digest.Parse(d)
	if err != nil {
		return nil, err
	}
	rc, err := b.repo.Blobs(b.ctx).Open(b.ctx, dg)
	if err == nil {
		return rc, nil
	}
	// Manifests (an index's children) are linked apart from layers.
	if ms, merr := b.repo.Manifests(b.ctx); merr == nil {
		if _, payload, merr := payloadOf(b.ctx, ms, dg); merr == nil {
			return io.NopCloser(bytes.NewReader(payload)), nil
		}
	}
	if errors.Is(err, distribution.ErrBlobUnknown) {
		return nil, fmt.Errorf("%w: %v", image.ErrNotFound, err)
	}
	return nil, err
}

func (b blobs) BlobFile(d string) (string, error) {
	dg, err := digest.Parse(d)
	if err != nil {
		return "", err
	}
	if _, err := b.repo.Blobs(b.ctx).Stat(b.ctx, dg); err != nil {
		return "", fmt.Errorf("%w: %v", image.ErrNotFound, err)
	}
	return b.r.blobPath(dg), nil
}

// blobPath is where the filesystem driver keeps a blob's data.
func (r *Registry) blobPath(d digest.Digest) string {
	hx := d.Encoded()
	if len(hx) < 2 {
		return ""
	}
	return filepath.Join(r.cfg.Dir, "storage", "docker", "registry", "v2", "blobs", d.Algorithm().String(), hx[:2], hx, "data")
}

// manifestFallback serves clients that accept only Docker image manifests,
// as `heroku container:release` does, when the tag holds an OCI manifest
// or an index: they get the OCI manifest as it is, or the image of the
// index for this host's platform. It reports whether it answered.
func (r *Registry) manifestFallback(w http.ResponseWriter, req *http.Request, p string) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	i := strings.Index(p, "/manifests/")
	if i < 0 {
		return false
	}
	accept := strings.Join(req.Header.Values("Accept"), ",")
	if accept == "" || !strings.Contains(accept, string(types.DockerManifestSchema2)) ||
		strings.Contains(accept, string(types.OCIManifestSchema1)) || strings.Contains(accept, string(types.OCIImageIndex)) ||
		strings.Contains(accept, string(types.DockerManifestList)) || strings.Contains(accept, "*/*") {
		return false
	}
	ctx := req.Context()
	repo, err := r.repository(ctx, strings.TrimPrefix(p[:i], "/v2/"))
	if err != nil {
		return false
	}
	ref := p[i+len("/manifests/"):]
	dg, err := digest.Parse(ref)
	if err != nil {
		d, err := repo.Tags(ctx).Get(ctx, ref)
		if err != nil {
			return false
		}
		dg = d.Digest
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return false
	}
	mt, payload, err := payloadOf(ctx, ms, dg)
	if err != nil {
		return false
	}
	switch {
	case mt == string(types.OCIManifestSchema1):
	case kindIsIndex(mt):
		idx, err := v1.ParseIndexManifest(bytes.NewReader(payload))
		if err != nil {
			return false
		}
		var child digest.Digest
		for _, c := range idx.Manifests {
			if c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == goruntime.GOARCH {
				child = digest.Digest(c.Digest.String())
				break
			}
		}
		if child == "" {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN",
				fmt.Sprintf("the index has no image for linux/%s", goruntime.GOARCH), nil)
			return true
		}
		if mt, payload, err = payloadOf(ctx, ms, child); err != nil {
			return false
		}
		dg = child
	default:
		return false
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
	w.Header().Set("Docker-Content-Digest", dg.String())
	w.Header().Set("Etag", `"`+dg.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(payload)
	}
	return true
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// payloadOf reads a manifest's media type and bytes.
func payloadOf(ctx context.Context, ms distribution.ManifestService, d digest.Digest) (string, []byte, error) {
	m, err := ms.Get(ctx, d)
	if err != nil {
		return "", nil, err
	}
	return m.Payload()
}

// serveBlob answers GET and HEAD of a blob straight from its file, so that
// the kernel copies it to the socket (sendfile); distribution copies it
// through user space. Whatever is not a plain hit (unknown blob, bad
// digest) is left to distribution, which answers with the spec's errors.
func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, name, d string) bool {
	dg, err := digest.Parse(d)
	if err != nil {
		return false
	}
	ctx := req.Context()
	repo, err := r.repository(ctx, name)
	if err != nil {
		return false
	}
	desc, err := repo.Blobs(ctx).Stat(ctx, dg) // the repository must hold it
	if err != nil {
		return false
	}
	f, err := os.Open(r.blobPath(dg))
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != desc.Size {
		return false
	}
	now := timeNow() // wanted: keep it from GC for the grace period
	os.Chtimes(f.Name(), now, now)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", dg.String())
	h.Set("ETag", `"`+dg.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, req, "", time.Time{}, f)
	return true
}
