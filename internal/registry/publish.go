package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/image"
)

// Publish puts the image id of the image store into repository <app>/<typ>
// and points each of tags at it, as if it had been pushed: clients pull
// it, releases find it, GC treats it as any pushed image (an untagged
// manifest goes once no kept release names it). Blobs the registry lacks
// are hard-linked from the image store's files (copied only across file
// systems), so a built layer is on disk once. It returns the manifest
// digest.
func (r *Registry) Publish(ctx context.Context, images *image.Store, app, typ, id string, tags ...string) (string, error) {
	name := app + "/" + typ
	for _, t := range tags {
		if !tagRE.MatchString(t) {
			return "", fmt.Errorf("publish %s: invalid tag %q", name, t)
		}
	}
	parts, err := images.ImageParts(id)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", name, err)
	}
	mpath, err := images.BlobFile(parts.Ref.Manifest)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", name, err)
	}
	raw, err := os.ReadFile(mpath)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", name, err)
	}
	mt := string(parts.Manifest.MediaType)
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	m, desc, err := distribution.UnmarshalManifest(mt, raw)
	if err != nil {
		return "", fmt.Errorf("publish %s: manifest: %w", name, err)
	}
	if err := r.claim(ctx, app); err != nil { // before the write, as a push records it
		return "", fmt.Errorf("publish %s: %w", name, err)
	}
	r.gc.RLock() // GC must not sweep the blobs before the manifest holds them
	defer r.gc.RUnlock()
	repo, err := r.repository(ctx, name)
	if err != nil {
		return "", err
	}
	for _, ref := range m.References() {
		if err := r.linkFromStore(ctx, images, repo, ref); err != nil {
			return "", fmt.Errorf("publish %s: blob %s: %w", name, ref.Digest, err)
		}
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return "", err
	}
	if _, err := ms.Put(ctx, m); err != nil {
		return "", fmt.Errorf("publish %s: manifest: %w", name, err)
	}
	for _, t := range tags {
		if err := repo.Tags(ctx).Tag(ctx, t, ocispec.Descriptor{MediaType: mt, Digest: desc.Digest, Size: desc.Size}); err != nil {
			return "", fmt.Errorf("publish %s:%s: %w", name, t, err)
		}
	}
	return desc.Digest.String(), nil
}

// linkFromStore makes the blob of d part of repo: a hard link of the image
// store's file into the registry's blob storage unless it is there (a copy
// through an upload when the link fails), then a link in the repository.
func (r *Registry) linkFromStore(ctx context.Context, images *image.Store, repo distribution.Repository, d ocispec.Descriptor) error {
	src, err := images.BlobFile(d.Digest.String())
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.Size() != d.Size {
		return fmt.Errorf("%w: the image store's copy has %d bytes, the manifest says %d", image.ErrDigestMismatch, fi.Size(), d.Size)
	}
	dst := r.blobPath(d.Digest)
	if dst == "" {
		return errors.New("bad digest")
	}
	if _, err := os.Stat(dst); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		linked, err := hardLink(src, dst)
		if err != nil {
			return err
		}
		if !linked {
			return r.upload(ctx, repo, src, d)
		}
	}
	named, err := reference.WithDigest(repo.Named(), d.Digest)
	if err != nil {
		return err
	}
	stat := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d.Digest, Size: d.Size}
	_, err = repo.Blobs(ctx).Create(ctx, mountStat{from: named, desc: stat})
	var mounted distribution.ErrBlobMounted
	if errors.As(err, &mounted) {
		return nil
	}
	if err == nil {
		return errors.New("the registry did not link the blob")
	}
	return err
}

// upload copies a blob into repo through distribution's upload path.
func (r *Registry) upload(ctx context.Context, repo distribution.Repository, src string, d ocispec.Descriptor) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := repo.Blobs(ctx).Create(ctx)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Cancel(ctx)
		return err
	}
	_, err = w.Commit(ctx, ocispec.Descriptor{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType})
	return err
}

// hardLink links src at dst through a temporary name in dst's directory,
// so dst appears whole or not at all. It reports false (no error) when
// the two are on different file systems.
func hardLink(src, dst string) (bool, error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := fmt.Sprintf("%s.link-%d-%d", dst, os.Getpid(), linkSeq.Add(1))
	if err := os.Link(src, tmp); err != nil {
		return false, nil
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}

var linkSeq atomic.Int64

// tagRE is the Distribution API's tag syntax.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// mountStat is a cross-repository mount of a blob whose descriptor is
// known: distribution links it into the repository without looking for it
// in another repository (it is in the registry's blob storage already).
type mountStat struct {
	from reference.Canonical
	desc ocispec.Descriptor
}

func (m mountStat) Apply(v any) error {
	opts, ok := v.(*distribution.CreateOptions)
	if !ok {
		return fmt.Errorf("unexpected options %T", v)
	}
	opts.Mount.ShouldMount = true
	opts.Mount.From = m.from
	opts.Mount.Stat = &m.desc
	return nil
}
