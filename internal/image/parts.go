package image

import (
	"fmt"

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
