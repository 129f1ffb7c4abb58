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
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var (
	// ErrNotFound is wrapped by errors about an image or blob the store does
	// not hold.
	ErrNotFound = errors.New("not found")
	// ErrNoPlatform is wrapped by errors about an image or index that has
	// nothing for the store's platform (linux/<host arch>).
	ErrNoPlatform = errors.New("no image for this platform")
	// ErrDigestMismatch is wrapped by errors about content whose digest or
	// size is not the one it was announced with.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrInvalidImage is wrapped by errors about a manifest, index or config
	// that is malformed or not a container image.
	ErrInvalidImage = errors.New("invalid image")
	// ErrInvalidLayer is wrapped by errors about a layer the unpacker
	// refuses: a malformed tar, or an entry that would escape the layer root.
	ErrInvalidLayer = errors.New("invalid layer")
	// ErrLayerTooLarge is wrapped by errors about a layer past its Limits.
	ErrLayerTooLarge = errors.New("layer too large")
)

// Store holds OCI images on disk: content-addressed blobs, a record per
// image, and the unpacked-layer cache that dynos' root file systems are
// mounted from. See the package documentation for the layout. A Store is
// safe for concurrent use.
type Store struct {
	dir      string
	lim      Limits
	platform v1.Platform

	gcMu sync.RWMutex // held by Put (shared) and Retain (exclusive)

	mu       sync.Mutex
	inflight map[string]*flight // layer (diff-id hex) being unpacked in this process

	unpacks atomic.Int64 // layers unpacked by this Store, for tests
}

type flight struct {
	done chan struct{}
	err  error
}

// Option configures a Store.
type Option func(*Store) error

// WithLimits sets the limits each layer is unpacked with.
func WithLimits(l Limits) Option {
	return func(s *Store) error {
		s.lim = l.withDefaults()
		return nil
	}
}

// WithPlatform sets the platform ("os/arch" or "os/arch/variant") that is
// picked from indexes and accepted in images. The default is
// linux/<runtime.GOARCH>.
func WithPlatform(platform string) Option {
	return func(s *Store) error {
		p, err := v1.ParsePlatform(platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("bad platform %q: want os/arch[/variant]", platform)
		}
		s.platform = *p
		return nil
	}
}

// Open opens the store rooted at dir, creating it if needed. Temporary files
// left by an interrupted write or unpack are removed: one Store at a time
// may use a directory.
func Open(dir string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:      abs,
		lim:      Limits{}.withDefaults(),
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		inflight: map[string]*flight{},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"blobs/sha256", "refs", "layers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	// Layer directories are overlay lowers: every dyno user must be able to
	// reach them.
	if err := os.Chmod(filepath.Join(abs, "layers"), 0o755); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	tmp, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return nil, fmt.Errorf("open image store: clean up %s: %w", e.Name(), err)
		}
	}
	return s, nil
}

// Dir is the directory the store is rooted at.
func (s *Store) Dir() string { return s.dir }

func (s *Store) tmpDir() string             { return filepath.Join(s.dir, "tmp") }
func (s *Store) blobPath(hex string) string { return filepath.Join(s.dir, "blobs", "sha256", hex) }
func (s *Store) refPath(hex string) string  { return filepath.Join(s.dir, "refs", hex) }
func (s *Store) layerPath(hex string) string {
	return filepath.Join(s.dir, "layers", hex)
}

// ImageRef names an image the store holds.
type ImageRef struct {
	// ID is the digest of the image config ("sha256:…"): what docker calls
	// the image id and what `heroku container:release` releases.
	ID string
	// Manifest is the digest of the image manifest.
	Manifest string
	// Index is the digest of the index the manifest was picked from, if any.
	Index string
}

// Image is an image ready to run.
type Image struct {
	ImageRef
	// Platform is the config's "os/arch[/variant]", if it names one.
	Platform string
	Config   Config
	// Layers are the unpacked layer directories, bottom layer first. See
	// LowerDirs for overlayfs' order.
	Layers []string
}

// Config is the part of an image config that running it needs.
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	User         string
	WorkingDir   string
	ExposedPorts []string // e.g. "5000/tcp", sorted
	StopSignal   string
	Labels       map[string]string
}

// LowerDirs returns the layer directories top layer first: the order of
// overlayfs' lowerdir option.
func (im *Image) LowerDirs() []string {
	out := make([]string, len(im.Layers))
	for i, l := range im.Layers {
		out[len(out)-1-i] = l
	}
	return out
}

// OverlayLowerdir returns the value of overlayfs' lowerdir mount option: the
// layer directories top first, separated by ':', with ':', ',' and '\'
// escaped.
func (im *Image) OverlayLowerdir() string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	dirs := im.LowerDirs()
	for i, d := range dirs {
		dirs[i] = esc.Replace(d)
	}
	return strings.Join(dirs, ":")
}

// refRecord is stored under refs/<hex> for each digest an image can be found
// by: its config, its manifest and the index it was picked from.
type refRecord struct {
	Config   string `json:"config"`
	Manifest string `json:"manifest"`
	Index    string `json:"index,omitempty"`
}

// parseDigest accepts "sha256:<64 hex>" or the bare hex, and returns the hex.
func parseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok && strings.Contains(d, ":") {
		return "", fmt.Errorf("digest %q: unsupported algorithm (want sha256)", d)
	}
	if len(h) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", d)
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("digest %q: want sha256:<64 lower-case hex digits>", d)
		}
	}
	return h, nil
}

// Resolve finds the image named by id (its config digest, or the digest of
// its manifest or of the index it was picked from) without unpacking it.
func (s *Store) Resolve(id string) (ImageRef, error) {
	h, err := parseDigest(id)
	if err != nil {
		return ImageRef{}, fmt.Errorf("image %q: %w: %v", id, ErrNotFound, err)
	}
	b, err := os.ReadFile(s.refPath(h))
	if errors.Is(err, os.ErrNotExist) {
		return ImageRef{}, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return ImageRef{}, fmt.Errorf("image %s: %w", id, err)
	}
	var rec refRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return ImageRef{}, fmt.Errorf("image %s: corrupt record: %w", id, err)
	}
	return ImageRef{ID: rec.Config, Manifest: rec.Manifest, Index: rec.Index}, nil
}

// Image returns the image named by id (see Resolve) with its layers
// unpacked, unpacking those not yet in the layer cache. An unknown id gets
// an error wrapping ErrNotFound.
func (s *Store) Image(id string) (*Image, error) {
	p, err := s.ImageParts(id)
	if err != nil {
		return nil, err
	}
	ref, m, cfg := p.Ref, p.Manifest, p.Config
	im := &Image{
		ImageRef: ref,
		Config: Config{
			Entrypoint: cfg.Config.Entrypoint,
			Cmd:        cfg.Config.Cmd,
			Env:        cfg.Config.Env,
			User:       cfg.Config.User,
			WorkingDir: cfg.Config.WorkingDir,
			StopSignal: cfg.Config.StopSignal,
			Labels:     cfg.Config.Labels,
		},
		Layers: make([]string, 0, len(m.Layers)),
	}
	if cfg.OS != "" {
		im.Platform = cfg.Platform().String()
	}
	for p := range cfg.Config.ExposedPorts {
		im.Config.ExposedPorts = append(im.Config.ExposedPorts, p)
	}
	sort.Strings(im.Config.ExposedPorts)
	for i, l := range m.Layers {
		dir, err := s.layer(cfg.RootFS.DiffIDs[i].Hex, l)
		if err != nil {
			return nil, fmt.Errorf("image %s: layer %d: %w", id, i, err)
		}
		im.Layers = append(im.Layers, dir)
	}
	return im, nil
}

// readImage reads and checks the manifest and config of a stored image.
func (s *Store) readImage(ref ImageRef) (*v1.Manifest, *v1.ConfigFile, error) {
	mb, err := s.readBlob(ref.Manifest, maxManifestSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := parseManifest(mb)
	if err != nil {
		return nil, nil, err
	}
	cb, err := s.readBlob(ref.ID, maxConfigSize)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := parseConfig(cb, m)
	if err != nil {
		return nil, nil, err
	}
	return m, cfg, nil
}

// layer returns the cache directory of a layer, unpacking it from its blob
// first if needed. Concurrent callers in this process share one unpack;
// another process racing on the same layer loses the final rename harmlessly.
func (s *Store) layer(diffHex string, desc v1.Descriptor) (string, error) {
	final := s.layerPath(diffHex)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}
	s.mu.Lock()
	if f, ok := s.inflight[diffHex]; ok {
		s.mu.Unlock()
		<-f.done
		return final, f.err
	}
	f := &flight{done: make(chan struct{})}
	s.inflight[diffHex] = f
	s.mu.Unlock()

	if st, err := os.Stat(final); err == nil && st.IsDir() {
		// Finished by a flight that ended after our first look.
	} else {
		f.err = s.unpackLayer(diffHex, desc, final)
	}
	s.mu.Lock()
	delete(s.inflight, diffHex)
	s.mu.Unlock()
	close(f.done)
	return final, f.err
}

func (s *Store) unpackLayer(diffHex string, desc v1.Descriptor, final string) error {
	blob, err := os.Open(s.blobPath(desc.Digest.Hex))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", desc.Digest, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-"+diffHex[:12]+"-")
	if err != nil {
		return err
	}
	got, err := unpackStream(blob, tmp, s.lim)
	if err == nil && got != diffHex {
		err = fmt.Errorf("%w: layer %s unpacks to diff-id sha256:%s, config says sha256:%s", ErrDigestMismatch, desc.Digest, got, diffHex)
	}
	if err == nil {
		err = commitDir(tmp, final, true)
		if errors.Is(err, errExist) {
			err = nil // another process unpacked it first: same content
		} else if err == nil {
			s.unpacks.Add(1)
			return nil
		}
	}
	if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// hasBlob reports whether the store holds the blob of desc, and checks its
// size.
func (s *Store) hasBlob(desc v1.Descriptor) (bool, error) {
	st, err := os.Stat(s.blobPath(desc.Digest.Hex))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Size() != desc.Size {
		return false, fmt.Errorf("%w: blob %s has %d bytes, its descriptor says %d", ErrDigestMismatch, desc.Digest, st.Size(), desc.Size)
	}
	return true, nil
}

// readBlob reads a small blob (manifest, config) whole.
func (s *Store) readBlob(digest string, max int64) ([]byte, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllMax(f, max, "blob "+digest)
}

// writeBlob copies r into the blob store under hex, verifying the content's
// digest and, if size >= 0, its size. The blob appears whole or not at all.
func (s *Store) writeBlob(hexDigest string, size int64, r io.Reader) error {
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	defer f.Close()
	if err := copyVerified(f, r, hexDigest, size); err != nil {
		return err
	}
	return commitFile(f, tmp, s.blobPath(hexDigest))
}

// copyVerified copies r to w, checking that r holds the blob with the
// digest hex and, if size >= 0, that size.
func copyVerified(w io.Writer, r io.Reader, hexDigest string, size int64) error {
	h := sha256.New()
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return fmt.Errorf("blob sha256:%s: %w", hexDigest, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: blob sha256:%s %s", ErrDigestMismatch, hexDigest, sizeMismatch(n, size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hexDigest {
		return fmt.Errorf("%w: blob announced as sha256:%s is sha256:%s", ErrDigestMismatch, hexDigest, got)
	}
	return nil
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
	if err := copyVerified(io.Discard, f, hx, size); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, s.blobPath(hx)); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(s.blobPath(hx)))
}

// writeRef records under refs/<hex> how to find an image.
func (s *Store) writeRef(hexDigest string, rec refRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmpDir(), "ref-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return commitFile(f, tmp, s.refPath(hexDigest))
}

// commitFile makes the temporary file f (at tmp) durable and moves it to
// dst, so that dst appears whole or not at all, even across a crash.
func commitFile(f *os.File, tmp, dst string) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// sizeMismatch describes a blob that was read up to one byte past its
// descriptor's size.
func sizeMismatch(got, want int64) string {
	if got > want {
		return fmt.Sprintf("is larger than the %d bytes its descriptor says", want)
	}
	return fmt.Sprintf("has %d bytes, its descriptor says %d", got, want)
}
