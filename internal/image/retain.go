package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BlobFiler is a BlobSource that can also name the file holding a blob
// (the embedded registry's storage, on the same file system). The store
// then hard-links the file instead of copying it, so a layer pushed to the
// registry and released is on disk once. The content is still verified.
type BlobFiler interface {
	BlobSource
	BlobFile(digest string) (string, error)
}

// linkBlob stores the blob hx from the file path by a hard link, verifying
// its size and digest. It reports false (and no error) when the file cannot
// be linked (another file system), so that the caller copies instead.
func (s *Store) linkBlob(hx string, size int64, path string) (bool, error) {
	tmp := filepath.Join(s.tmpDir(), "link-"+hx)
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return false, nil
	}
	defer os.Remove(tmp) // a no-op once renamed
	f, err := os.Open(tmp)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, fmt.Errorf("blob sha256:%s: %w", hx, err)
	}
	if n != size {
		return false, fmt.Errorf("%w: blob sha256:%s %s", ErrDigestMismatch, hx, sizeMismatch(n, size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hx {
		return false, fmt.Errorf("%w: blob announced as sha256:%s is sha256:%s", ErrDigestMismatch, hx, got)
	}
	if err := os.Rename(tmp, s.blobPath(hx)); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(s.blobPath(hx)))
}

// RetainStats says what Retain removed.
type RetainStats struct {
	Images int // images (by id) removed
	Blobs  int // blobs removed
	Layers int // unpacked layers removed
}

// Retain removes every image whose id (config digest) keep does not
// report, then the blobs and unpacked layers that no remaining image uses.
// Images being stored (Put) wait until it is done, and it waits for them.
// Layers of a running dyno are safe as long as keep reports its image.
func (s *Store) Retain(keep func(id string) bool) (RetainStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st RetainStats
	entries, err := os.ReadDir(filepath.Join(s.dir, "refs"))
	if err != nil {
		return st, fmt.Errorf("retain images: %w", err)
	}
	liveBlobs := map[string]bool{}
	liveLayers := map[string]bool{}
	removedIDs := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(s.refPath(e.Name()))
		if err != nil {
			return st, fmt.Errorf("retain images: %w", err)
		}
		var rec refRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return st, fmt.Errorf("retain images: record %s: %w", e.Name(), err)
		}
		ref := ImageRef{ID: rec.Config, Manifest: rec.Manifest, Index: rec.Index}
		if !keep(rec.Config) && (rec.Index == "" || !keep(rec.Index)) && !keep(rec.Manifest) {
			if err := os.Remove(s.refPath(e.Name())); err != nil {
				return st, fmt.Errorf("retain images: %w", err)
			}
			removedIDs[rec.Config] = true
			continue
		}
		for _, d := range []string{ref.ID, ref.Manifest, ref.Index} {
			if h, err := parseDigest(d); err == nil {
				liveBlobs[h] = true
			}
		}
		m, cfg, err := s.readImage(ref)
		if err != nil {
			return st, fmt.Errorf("retain images: image %s: %w", ref.ID, err)
		}
		for _, l := range m.Layers {
			liveBlobs[l.Digest.Hex] = true
		}
		for _, d := range cfg.RootFS.DiffIDs {
			liveLayers[d.Hex] = true
		}
	}
	st.Images = len(removedIDs)
	blobs, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return st, fmt.Errorf("retain images: %w", err)
	}
	for _, e := range blobs {
		if liveBlobs[e.Name()] {
			continue
		}
		if err := os.Remove(s.blobPath(e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("retain images: %w", err)
		}
		st.Blobs++
	}
	layers, err := os.ReadDir(filepath.Join(s.dir, "layers"))
	if err != nil {
		return st, fmt.Errorf("retain images: %w", err)
	}
	for _, e := range layers {
		if liveLayers[e.Name()] {
			continue
		}
		// Renamed into tmp first, so a crash never leaves half a layer
		// under layers/ (tmp is emptied by Open).
		tmp := filepath.Join(s.tmpDir(), "gone-"+e.Name())
		if err := os.Rename(s.layerPath(e.Name()), tmp); err != nil {
			return st, fmt.Errorf("retain images: %w", err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			return st, fmt.Errorf("retain images: %w", err)
		}
		st.Layers++
	}
	return st, nil
}
