package image

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Parts is a stored image as its manifest and config describe it: what a
// builder needs to stack new layers on top of it without unpacking or
// copying its blobs.
type Parts struct {
	Ref      ImageRef
	Manifest *v1.Manifest
	Config   *v1.ConfigFile
}

// ImageParts returns the manifest and config of the image named by id (see
// Resolve), checked as Image checks them, without unpacking any layer.
func (s *Store) ImageParts(id string) (*Parts, error) {
	ref, err := s.Resolve(id)
	if err != nil {
		return nil, err
	}
	m, cfg, err := s.readImage(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return &Parts{Ref: ref, Manifest: m, Config: cfg}, nil
}

// BlobFile returns the file that holds the blob digest, for a reader on the
// same file system that links content rather than copying it (the embedded
// registry, when a build publishes its image). The file must not be
// written to.
func (s *Store) BlobFile(digest string) (string, error) {
	hx, err := parseDigest(digest)
	if err != nil {
		return "", err
	}
	p := s.blobPath(hx)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	}
	return p, nil
}
