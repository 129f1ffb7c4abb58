package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

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
