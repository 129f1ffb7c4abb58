package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func init() {
	registryFlag := flagDef{Long: "registry", Value: true, Usage: "registry host:port ($SKIFF_REGISTRY; default: the API host, port 5002)"}
	register("container:push", command{
		usage: "container:push TYPE --image PATH -a APP",
		help:  "push an image (docker save tarball, OCI archive or OCI layout directory) to the app's registry repository APP/TYPE",
		flags: []flagDef{{Long: "image", Short: 'i', Value: true, Usage: "the image: a docker save tarball, an OCI archive or an OCI layout directory"},
			registryFlag},
		app: appRequired, minArgs: 1, maxArgs: 1, run: containerPush,
	})
	register("container:release", command{
		usage: "container:release TYPE... -a APP",
		help:  "release the images last pushed to APP/TYPE for each TYPE, in one release",
		flags: []flagDef{registryFlag},
		app:   appRequired, minArgs: 1, maxArgs: -1, run: containerRelease,
	})
}

// registryHost is where the app's images go: --registry, $SKIFF_REGISTRY,
// else the API's host on the registry's default port.
func (e *Env) registryHost(in *Input) (string, error) {
	if r := in.String("registry"); r != "" {
		return r, nil
	}
	if r := os.Getenv("SKIFF_REGISTRY"); r != "" {
		return r, nil
	}
	u, err := url.Parse(e.APIURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("cannot tell the registry from the API URL %q: give --registry", e.APIURL)
	}
	return net.JoinHostPort(u.Hostname(), "5002"), nil
}

func (e *Env) repoRef(in *Input, typ string) (name.Reference, error) {
	host, err := e.registryHost(in)
	if err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(host+"/"+in.App+"/"+typ+":latest", name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("invalid repository for process type %q: %w", typ, err)
	}
	return ref, nil
}

func (e *Env) registryAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "_", Password: e.Token})
}

func containerPush(e *Env, in *Input) error {
	typ := in.Args[0]
	path := in.String("image")
	if path == "" {
		return &flagError{msg: "give the image to push with --image PATH (a docker save tarball, an OCI archive or an OCI layout directory)"}
	}
	ref, err := e.repoRef(in, typ)
	if err != nil {
		return err
	}
	var digest string
	err = e.action(fmt.Sprintf("Pushing %s to %s", path, ref.Context().Name()), func() (string, error) {
		d, err := pushImage(path, ref, e.registryAuth())
		digest = d
		return "", err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "latest: digest: %s\n", digest)
	fmt.Fprintf(e.Err, "Your image has been pushed. Release it with: skiff container:release %s -a %s\n", typ, in.App)
	return nil
}

// pushImage pushes the image at path to ref and returns the pushed digest.
func pushImage(path string, ref name.Reference, auth remote.Option) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	dir := path
	if !st.IsDir() {
		// A docker save tarball has manifest.json; an OCI archive is a
		// layout in a tar.
		if img, err := tarball.ImageFromPath(path, nil); err == nil {
			if _, err := img.Manifest(); err == nil {
				if err := remote.Write(ref, img, auth); err != nil {
					return "", err
				}
				d, err := img.Digest()
				return d.String(), err
			}
		}
		tmp, err := os.MkdirTemp("", "skiff-oci-archive-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		if err := untar(path, tmp); err != nil {
			return "", fmt.Errorf("%s is neither a docker save tarball nor an OCI archive: %w", path, err)
		}
		dir = tmp
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return "", fmt.Errorf("%s: not an OCI image layout: %w", path, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	if len(im.Manifests) != 1 {
		return "", fmt.Errorf("%s lists %d images; push a layout with exactly one image or index", path, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.MediaType.IsIndex() {
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return "", err
		}
		return desc.Digest.String(), remote.WriteIndex(ref, child, auth)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), remote.Write(ref, img, auth)
}

// untar extracts the regular files and directories of the tar at path into
// dir, refusing names that leave it.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.Clean(h.Name)
		if !filepath.IsLocal(clean) {
			return fmt.Errorf("entry %q leaves the archive", h.Name)
		}
		dst := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

func containerRelease(e *Env, in *Input) error {
	var updates []map[string]string
	for _, typ := range in.Args {
		ref, err := e.repoRef(in, typ)
		if err != nil {
			return err
		}
		desc, err := remoteGet(ref, e)
		if err != nil {
			return fmt.Errorf("no image pushed to %s (push one with skiff container:push %s): %w", ref.Context().Name(), typ, err)
		}
		id := desc.Digest.String() // an index: the server picks the image for its platform
		if !desc.MediaType.IsIndex() {
			img, err := desc.Image()
			if err != nil {
				return err
			}
			cfg, err := img.ConfigName()
			if err != nil {
				return err
			}
			id = cfg.String()
		}
		updates = append(updates, map[string]string{"type": typ, "docker_image": id})
	}
	types := strings.Join(in.Args, ",")
	return e.action(fmt.Sprintf("Releasing images %s to %s", types, in.App), func() (string, error) {
		return "", e.Do(Request{Method: "PATCH", Path: "/apps/" + escape(in.App) + "/formation", Accept: "3.docker-releases",
			Body: map[string]any{"updates": updates}}, nil)
	})
}

// remoteGet reads the manifest (or index) ref names.
func remoteGet(ref name.Reference, e *Env) (*remote.Descriptor, error) {
	return remote.Get(ref, e.registryAuth())
}
