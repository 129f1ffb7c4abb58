package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// timeNow is the clock of GC's grace period.
var timeNow = time.Now

// GCStats says what a GC removed.
type GCStats struct {
	Manifests int   // manifests removed
	Blobs     int   // blobs removed
	Bytes     int64 // size of the blobs removed
}

// GC removes what nothing needs any more, in two steps:
//
//  1. manifests that no tag names, that were pushed more than the grace
//     period ago, and whose digest or image id (config digest) keep does
//     not report as still wanted (keep says which images releases refer
//     to); an index's children go with it unless something keeps them;
//  2. blobs that no remaining manifest refers to and that were written or
//     last asked for more than the grace period ago: an upload whose
//     manifest has yet to come is never swept.
//
// Writes wait while GC runs, so it never sees a manifest half-pushed.
func (r *Registry) GC(ctx context.Context, keep func(id string) bool) (GCStats, error) {
	r.gc.Lock()
	defer r.gc.Unlock()
	var st GCStats
	if keep == nil {
		keep = func(string) bool { return false }
	}
	cutoff := timeNow().Add(-r.cfg.GCGrace)
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return st, errors.New("registry gc: cannot enumerate repositories")
	}
	vacuum := storage.NewVacuum(ctx, r.driver)
	marked := map[digest.Digest]bool{}
	v2 := filepath.Join(r.cfg.Dir, "storage", "docker", "registry", "v2")
	if _, err := os.Stat(filepath.Join(v2, "blobs")); errors.Is(err, os.ErrNotExist) {
		return st, nil // nothing was ever pushed
	}
	if _, err := os.Stat(filepath.Join(v2, "repositories")); errors.Is(err, os.ErrNotExist) {
		en = noRepositories{}
	}
	err := en.Enumerate(ctx, func(name string) error {
		n, err := r.gcRepository(ctx, name, keep, cutoff, marked, vacuum)
		st.Manifests += n
		return err
	})
	if err != nil {
		return st, fmt.Errorf("registry gc: %w", err)
	}
	err = r.ns.Blobs().Enumerate(ctx, func(d digest.Digest) error {
		if marked[d] {
			return nil
		}
		fi, err := os.Stat(r.blobPath(d))
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := vacuum.RemoveBlob(d.String()); err != nil {
			return err
		}
		st.Blobs++
		st.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("registry gc: %w", err)
	}
	return st, nil
}

// gcRepository removes the unwanted manifests of one repository and marks
// the blobs of the others.
func (r *Registry) gcRepository(ctx context.Context, name string, keep func(string) bool, cutoff time.Time,
	marked map[digest.Digest]bool, vacuum storage.Vacuum) (int, error) {
	repo, err := r.repository(ctx, name)
	if err != nil {
		return 0, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return 0, err
	}
	mEn, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return 0, errors.New("cannot enumerate manifests")
	}
	manifests := map[digest.Digest]distribution.Manifest{}
	err = mEn.Enumerate(ctx, func(d digest.Digest) error {
		m, err := ms.Get(ctx, d)
		if err != nil {
			return nil // a manifest whose blob is gone: nothing to mark
		}
		manifests[d] = m
		return nil
	})
	if err != nil {
		return 0, err
	}
	roots := map[digest.Digest]bool{}
	tags := repo.Tags(ctx)
	all, err := tags.All(ctx)
	if err != nil && !errors.As(err, new(distribution.ErrRepositoryUnknown)) {
		return 0, err
	}
	for _, t := range all {
		if d, err := tags.Get(ctx, t); err == nil {
			roots[d.Digest] = true
		}
	}
	for d, m := range manifests {
		if roots[d] || keep(d.String()) || r.manifestRecent(name, d, cutoff) {
			roots[d] = true
			continue
		}
		_, payload, err := m.Payload()
		if err != nil {
			continue
		}
		if mf, err := v1.ParseManifest(bytesReader(payload)); err == nil && keep(mf.Config.Digest.String()) {
			roots[d] = true
		}
	}
	live := map[digest.Digest]bool{}
	var mark func(d digest.Digest)
	mark = func(d digest.Digest) {
		if live[d] {
			return
		}
		live[d] = true
		marked[d] = true
		m, ok := manifests[d]
		if !ok {
			return
		}
		for _, ref := range m.References() {
			marked[ref.Digest] = true
			if _, isManifest := manifests[ref.Digest]; isManifest {
				mark(ref.Digest)
			}
		}
	}
	for d := range roots {
		mark(d)
	}
	removed := 0
	for d := range manifests {
		if live[d] {
			continue
		}
		if err := vacuum.RemoveManifest(name, d, nil); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// manifestRecent reports whether a manifest was pushed after cutoff.
func (r *Registry) manifestRecent(name string, d digest.Digest, cutoff time.Time) bool {
	p := filepath.Join(r.cfg.Dir, "storage", "docker", "registry", "v2", "repositories", name,
		"_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
	fi, err := os.Stat(p)
	return err != nil || fi.ModTime().After(cutoff)
}

// noRepositories enumerates the repositories of a registry that has none
// (distribution's enumerator fails on the missing directory).
type noRepositories struct{}

func (noRepositories) Enumerate(context.Context, func(string) error) error { return nil }
