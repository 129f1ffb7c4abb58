package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	maxManifestSize = 4 << 20  // as registries limit manifests
	maxConfigSize   = 16 << 20 // configs with long histories stay far below
	maxIndexDepth   = 4
)

// BlobSource hands the store the blobs (child manifests, configs, layers)
// that a manifest refers to. The store asks only for blobs it does not hold
// yet, reads each one once, verifies its digest and size, and closes it.
type BlobSource interface {
	// Open returns the blob with the given digest ("sha256:…"). A missing
	// blob is an error (ideally wrapping ErrNotFound or os.ErrNotExist).
	Open(digest string) (io.ReadCloser, error)
}

// BlobSourceFunc adapts a function to BlobSource.
type BlobSourceFunc func(digest string) (io.ReadCloser, error)

// Open calls f.
func (f BlobSourceFunc) Open(digest string) (io.ReadCloser, error) { return f(digest) }

// BlobFiler is a BlobSource that can also name the file holding a blob
// (the embedded registry's storage, on the same file system). The store
// then hard-links the file instead of copying it, so a layer pushed to the
// registry and released is on disk once. The content is still verified.
type BlobFiler interface {
	BlobSource
	BlobFile(digest string) (string, error)
}

// layoutSource reads the blobs of an OCI image layout directory.
type layoutSource string

func (l layoutSource) Open(digest string) (io.ReadCloser, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	return os.Open(filepath.Join(string(l), "blobs", "sha256", h))
}

// Put stores the image that manifest describes: an image manifest (OCI or
// Docker v2 schema 2) or an index (OCI index or Docker manifest list), from
// which the image for the store's platform is picked (an error wrapping
// ErrNoPlatform if there is none). mediaType is the manifest's media type
// as announced (a registry's Content-Type); "" takes it from the manifest.
// Blobs the store lacks are read from src, which may be nil when the store
// holds them all. Every digest and size is verified; the image becomes
// visible (to Resolve and Image) only once all its blobs are stored. Layers
// are unpacked later, by Image.
func (s *Store) Put(manifest []byte, mediaType string, src BlobSource) (ImageRef, error) {
	s.gcMu.RLock() // Retain must not sweep blobs before their record is written
	defer s.gcMu.RUnlock()
	return s.put(manifest, mediaType, src, 0)
}

// ImportLayout imports the images of the OCI image layout directory dir:
// each image manifest its index.json lists, except those whose platform is
// not the store's, and from each index the image for the store's platform.
// It fails if that leaves no image.
func (s *Store) ImportLayout(dir string) ([]ImageRef, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	b, err := readFileMax(filepath.Join(dir, "index.json"), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("import layout %s: %w", dir, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("import layout %s: %w: index.json: %v", dir, ErrInvalidImage, err)
	}
	src := layoutSource(dir)
	var refs []ImageRef
	var skipped []string
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		switch kindOf(d.MediaType) {
		case kindImage:
			if d.Platform != nil && s.platformScore(*d.Platform) == 0 {
				if d.Platform.OS != "unknown" {
					skipped = append(skipped, d.Platform.String())
				}
				continue
			}
		case kindIndex:
		default:
			continue // not an image: an artifact, a signature, …
		}
		raw, err := s.fetch(src, d, maxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("import layout %s: %w", dir, err)
		}
		ref, err := s.put(raw, string(d.MediaType), src, 0)
		if err != nil {
			return nil, fmt.Errorf("import layout %s: %w", dir, err)
		}
		if !seen[ref.Manifest] {
			seen[ref.Manifest] = true
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("import layout %s: %w: want %s, the layout has %s", dir, ErrNoPlatform, s.platform.String(), listOrNone(skipped))
		}
		return nil, fmt.Errorf("import layout %s: %w: index.json lists no image", dir, ErrInvalidImage)
	}
	return refs, nil
}

func (s *Store) put(b []byte, mediaType string, src BlobSource, depth int) (ImageRef, error) {
	if len(b) > maxManifestSize {
		return ImageRef{}, fmt.Errorf("%w: manifest larger than %d bytes", ErrInvalidImage, maxManifestSize)
	}
	sum := sha256.Sum256(b)
	hx := hex.EncodeToString(sum[:])
	digest := "sha256:" + hx
	k, err := manifestKind(mediaType, b)
	if err != nil {
		return ImageRef{}, fmt.Errorf("manifest %s: %w", digest, err)
	}
	if k == kindIndex {
		if depth >= maxIndexDepth {
			return ImageRef{}, fmt.Errorf("index %s: %w: indexes nested too deep", digest, ErrInvalidImage)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return ImageRef{}, fmt.Errorf("index %s: %w: %v", digest, ErrInvalidImage, err)
		}
		d, err := s.pick(idx.Manifests)
		if err != nil {
			return ImageRef{}, fmt.Errorf("index %s: %w", digest, err)
		}
		child, err := s.fetch(src, d, maxManifestSize)
		if err != nil {
			return ImageRef{}, fmt.Errorf("index %s: %w", digest, err)
		}
		ref, err := s.put(child, string(d.MediaType), src, depth+1)
		if err != nil {
			return ImageRef{}, fmt.Errorf("index %s: %w", digest, err)
		}
		ref.Index = digest
		if err := s.storeBytes(hx, b); err != nil {
			return ImageRef{}, err
		}
		if err := s.writeRef(hx, refRecord{Config: ref.ID, Manifest: ref.Manifest, Index: ref.Index}); err != nil {
			return ImageRef{}, err
		}
		return ref, nil
	}

	m, err := parseManifest(b)
	if err != nil {
		return ImageRef{}, fmt.Errorf("manifest %s: %w", digest, err)
	}
	cb, err := s.fetch(src, m.Config, maxConfigSize)
	if err != nil {
		return ImageRef{}, fmt.Errorf("manifest %s: config: %w", digest, err)
	}
	cfg, err := parseConfig(cb, m)
	if err != nil {
		return ImageRef{}, fmt.Errorf("manifest %s: config %s: %w", digest, m.Config.Digest, err)
	}
	if (cfg.OS != "" && cfg.OS != s.platform.OS) || (cfg.Architecture != "" && cfg.Architecture != s.platform.Architecture) {
		return ImageRef{}, fmt.Errorf("manifest %s: %w: the image is for %s/%s, this host runs %s",
			digest, ErrNoPlatform, cfg.OS, cfg.Architecture, s.platform.String())
	}
	for _, l := range m.Layers {
		if err := s.ensureBlob(src, l); err != nil {
			return ImageRef{}, fmt.Errorf("manifest %s: layer: %w", digest, err)
		}
	}
	if err := s.storeBytes(m.Config.Digest.Hex, cb); err != nil {
		return ImageRef{}, err
	}
	if err := s.storeBytes(hx, b); err != nil {
		return ImageRef{}, err
	}
	rec := refRecord{Config: m.Config.Digest.String(), Manifest: digest}
	if err := s.writeRef(hx, rec); err != nil {
		return ImageRef{}, err
	}
	if err := s.writeRef(m.Config.Digest.Hex, rec); err != nil {
		return ImageRef{}, err
	}
	return ImageRef{ID: rec.Config, Manifest: digest}, nil
}

// fetch returns a small blob (manifest or config), from the store if it has
// it, else read from src and verified (but not stored).
func (s *Store) fetch(src BlobSource, d v1.Descriptor, max int64) ([]byte, error) {
	hx, err := parseDigest(d.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	if d.Size < 0 || d.Size > max {
		return nil, fmt.Errorf("%w: %s has size %d (at most %d allowed)", ErrInvalidImage, d.Digest, d.Size, max)
	}
	if ok, err := s.hasBlob(d); err != nil {
		return nil, err
	} else if ok {
		return s.readBlob(d.Digest.String(), max)
	}
	rc, err := openFrom(src, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%w: blob %s %s", ErrDigestMismatch, d.Digest, sizeMismatch(int64(len(b)), d.Size))
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hx {
		return nil, fmt.Errorf("%w: blob announced as %s is sha256:%x", ErrDigestMismatch, d.Digest, sum)
	}
	return b, nil
}

// ensureBlob copies the blob of d from src into the store unless it is there.
func (s *Store) ensureBlob(src BlobSource, d v1.Descriptor) error {
	hx, err := parseDigest(d.Digest.String())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s has size %d", ErrInvalidImage, d.Digest, d.Size)
	}
	if ok, err := s.hasBlob(d); err != nil || ok {
		return err
	}
	if f, ok := src.(BlobFiler); ok {
		if path, err := f.BlobFile(d.Digest.String()); err == nil {
			if linked, err := s.linkBlob(hx, d.Size, path); err != nil || linked {
				return err
			}
		}
	}
	rc, err := openFrom(src, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.writeBlob(hx, d.Size, rc)
}

func openFrom(src BlobSource, d v1.Descriptor) (io.ReadCloser, error) {
	if src == nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ErrNotFound)
	}
	rc, err := src.Open(d.Digest.String())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("blob %s: %w: %v", d.Digest, ErrNotFound, err)
		}
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return rc, nil
}

// storeBytes stores an in-memory blob (already verified) unless it is there.
func (s *Store) storeBytes(hx string, b []byte) error {
	if st, err := os.Stat(s.blobPath(hx)); err == nil && st.Size() == int64(len(b)) {
		return nil
	}
	return s.writeBlob(hx, int64(len(b)), bytes.NewReader(b))
}

type kind int

const (
	kindOther kind = iota
	kindImage
	kindIndex
)

func kindOf(mt types.MediaType) kind {
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return kindImage
	case types.OCIImageIndex, types.DockerManifestList:
		return kindIndex
	}
	return kindOther
}

// manifestKind tells an image manifest from an index, checking the announced
// media type against the one the manifest states.
func manifestKind(announced string, b []byte) (kind, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Config        json.RawMessage `json:"config"`
		Manifests     json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return kindOther, fmt.Errorf("%w: not a JSON manifest: %v", ErrInvalidImage, err)
	}
	mt := announced
	if mt == "" {
		mt = probe.MediaType
	}
	if probe.MediaType != "" && probe.MediaType != mt {
		return kindOther, fmt.Errorf("%w: manifest says media type %s, it was announced as %s", ErrInvalidImage, probe.MediaType, mt)
	}
	var k kind
	switch types.MediaType(mt) {
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return kindOther, fmt.Errorf("%w: Docker schema 1 manifests are not supported: push with a current client", ErrInvalidImage)
	case "":
		switch {
		case probe.Config != nil:
			k = kindImage
		case probe.Manifests != nil:
			k = kindIndex
		}
	default:
		k = kindOf(types.MediaType(mt))
	}
	if k == kindOther {
		return kindOther, fmt.Errorf("%w: unsupported manifest media type %q", ErrInvalidImage, mt)
	}
	if probe.SchemaVersion != 2 {
		return kindOther, fmt.Errorf("%w: schemaVersion %d, want 2", ErrInvalidImage, probe.SchemaVersion)
	}
	return k, nil
}

// parseManifest parses and checks an image manifest.
func parseManifest(b []byte) (*v1.Manifest, error) {
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return nil, fmt.Errorf("%w: config media type %q: not a container image", ErrInvalidImage, m.Config.MediaType)
	}
	if _, err := parseDigest(m.Config.Digest.String()); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalidImage, err)
	}
	for _, l := range m.Layers {
		switch l.MediaType {
		case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
			types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
			types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer:
		default:
			return nil, fmt.Errorf("%w: layer media type %q: not a container image layer", ErrInvalidImage, l.MediaType)
		}
		if _, err := parseDigest(l.Digest.String()); err != nil {
			return nil, fmt.Errorf("%w: layer: %v", ErrInvalidImage, err)
		}
	}
	return m, nil
}

// parseConfig parses an image config and checks it against its manifest.
func parseConfig(b []byte, m *v1.Manifest) (*v1.ConfigFile, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: config lists %d diff-ids for %d layers", ErrInvalidImage, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if _, err := parseDigest(d.String()); err != nil {
			return nil, fmt.Errorf("%w: diff-id: %v", ErrInvalidImage, err)
		}
	}
	return cfg, nil
}

// defaultVariant is the variant a platform without one means.
func defaultVariant(arch string) string {
	switch arch {
	case "arm64":
		return "v8"
	case "amd64":
		return "v1"
	}
	return ""
}

// platformScore rates how well p fits the store's platform: 0 not at all,
// 1 same OS and architecture, 2 the same variant too.
func (s *Store) platformScore(p v1.Platform) int {
	if p.OS != s.platform.OS || p.Architecture != s.platform.Architecture {
		return 0
	}
	want, have := s.platform.Variant, p.Variant
	if want == "" {
		want = defaultVariant(p.Architecture)
	}
	if have == "" {
		have = defaultVariant(p.Architecture)
	}
	if want == have {
		return 2
	}
	return 1
}

// pick chooses the manifest for the store's platform from an index.
func (s *Store) pick(descs []v1.Descriptor) (v1.Descriptor, error) {
	best, bestScore := -1, 0
	var have []string
	for i, d := range descs {
		if kindOf(d.MediaType) == kindOther {
			continue
		}
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS != "unknown" { // attestations and the like
			have = append(have, d.Platform.String())
		}
		if sc := s.platformScore(*d.Platform); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	if best >= 0 {
		return descs[best], nil
	}
	// A lone manifest without platform information is taken as it is; its
	// config's platform is checked when it is stored.
	if len(descs) == 1 && descs[0].Platform == nil && kindOf(descs[0].MediaType) != kindOther {
		return descs[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("%w: want %s, the index has %s", ErrNoPlatform, s.platform.String(), listOrNone(have))
}

func readFileMax(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllMax(f, max, name)
}

// readAllMax reads r whole, refusing more than max bytes; what names the
// content in the error.
func readAllMax(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidImage, what, max)
	}
	return b, nil
}

func listOrNone(platforms []string) string {
	if len(platforms) == 0 {
		return "no runnable image"
	}
	return strings.Join(platforms, ", ")
}
