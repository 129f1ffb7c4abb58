package build

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/skiffhq/skiff/internal/image"
)

// ImportRootfs stores a root filesystem tarball (plain or gzipped; for
// example made with debootstrap and `tar -C root -c .`) as a one-layer
// image in images and returns its id. The layer is unpacked right away by
// the store's hardened unpacker, so a tarball that escapes its root, or
// is not a tar at all, is refused here rather than at the first build.
func ImportRootfs(images *image.Store, tmpDir string, r io.Reader, maxBytes int64) (string, error) {
	br := bufio.NewReader(r)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", fmt.Errorf("%w: rootfs tarball: %v", ErrFailed, err)
		}
		defer zr.Close()
		in = zr
	}
	f, err := os.CreateTemp(tmpDir, "rootfs-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(in, maxBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: rootfs tarball: %v", ErrFailed, err)
	}
	if n > maxBytes {
		return "", fmt.Errorf("%w: rootfs tarball larger than %d bytes", ErrFailed, maxBytes)
	}
	if n == 0 {
		return "", fmt.Errorf("%w: rootfs tarball is empty", ErrFailed)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	dh, _ := v1.NewHash(digest)
	cfg := v1.ConfigFile{Architecture: goruntime.GOARCH, OS: "linux", Created: v1.Time{Time: time.Now().UTC()},
		Config:  v1.Config{Env: []string{"PATH=" + defaultPath}},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{dh}},
		History: []v1.History{{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: "skiff stack:import"}}}
	cb, _ := json.Marshal(cfg)
	sum := sha256.Sum256(cb)
	cd := "sha256:" + hex.EncodeToString(sum[:])
	ch, _ := v1.NewHash(cd)
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cb)), Digest: ch},
		Layers: []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Size: n, Digest: dh}}}
	mb, _ := json.Marshal(m)
	ref, err := images.Put(mb, string(types.OCIManifestSchema1), image.BlobSourceFunc(func(d string) (io.ReadCloser, error) {
		switch d {
		case cd:
			return io.NopCloser(strings.NewReader(string(cb))), nil
		case digest:
			return os.Open(f.Name())
		}
		return nil, fmt.Errorf("blob %s: %w", d, image.ErrNotFound)
	}))
	if err != nil {
		return "", fmt.Errorf("storing the stack image: %w", err)
	}
	if _, err := images.Image(ref.ID); err != nil {
		return "", fmt.Errorf("%w: rootfs tarball: %v", ErrFailed, err)
	}
	return ref.ID, nil
}
