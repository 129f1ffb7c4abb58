package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/opencontainers/go-digest"
)

// The referrers API (OCI distribution-spec 1.1) is answered here, from the
// manifests themselves: a repository's referrers of a digest are the
// manifests whose subject names it. No separate index is kept, so nothing
// can go stale when a manifest is deleted.

// descriptorJSON is one entry of a referrers index.
type descriptorJSON struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// subjectOf reads what the referrers API needs of a manifest.
type manifestHead struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, name, subject string) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "referrers are read with GET", nil)
		return
	}
	if _, err := digest.Parse(subject); err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest "+subject, nil)
		return
	}
	ctx := req.Context()
	want := req.URL.Query().Get("artifactType")
	out := []descriptorJSON{}
	repo, err := r.repository(ctx, name)
	if err == nil {
		if ms, err := repo.Manifests(ctx); err == nil {
			if en, ok := ms.(distribution.ManifestEnumerator); ok {
				en.Enumerate(ctx, func(d digest.Digest) error {
					mt, payload, err := payloadOf(ctx, ms, d)
					if err != nil {
						return nil
					}
					var h manifestHead
					if json.Unmarshal(payload, &h) != nil || h.Subject == nil || h.Subject.Digest != subject {
						return nil
					}
					at := h.ArtifactType
					if at == "" && h.Config != nil {
						at = h.Config.MediaType
					}
					if want != "" && at != want {
						return nil
					}
					out = append(out, descriptorJSON{MediaType: mt, Digest: d.String(), Size: int64(len(payload)),
						ArtifactType: at, Annotations: h.Annotations})
					return nil
				})
			}
		}
	}
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	body, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     out,
	})
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(body)
	}
}

// maxManifestBody is the largest manifest accepted, as distribution's.
const maxManifestBody = 4 << 20

// subjectHeader wraps a manifest PUT: it reads the body (distribution
// refuses more than maxManifestBody anyway) to learn its subject, and sets
// OCI-Subject on the 201 response, as the spec asks of registries that
// support the referrers API.
func subjectHeader(w http.ResponseWriter, req *http.Request) (http.ResponseWriter, *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBody+1))
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return w, req
	}
	var h manifestHead
	if json.Unmarshal(body, &h) != nil || h.Subject == nil || h.Subject.Digest == "" {
		return w, req
	}
	return &subjectWriter{ResponseWriter: w, subject: h.Subject.Digest}, req
}

type subjectWriter struct {
	http.ResponseWriter
	subject string
}

func (s *subjectWriter) WriteHeader(code int) {
	if code == http.StatusCreated {
		s.Header().Set("OCI-Subject", s.subject)
	}
	s.ResponseWriter.WriteHeader(code)
}

// sha256Only refuses digests of other algorithms: blobs are stored and
// verified by their sha256 digest, which the image store works with too.
func sha256Only(w http.ResponseWriter, req *http.Request, p string) bool {
	check := []string{req.URL.Query().Get("digest"), req.URL.Query().Get("mount")}
	if i := strings.LastIndex(p, "/"); i >= 0 && strings.Contains(p[i:], ":") {
		check = append(check, p[i+1:])
	}
	for _, d := range check {
		if d != "" && !strings.HasPrefix(d, "sha256:") {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "only sha256 digests are supported", map[string]string{"digest": d})
			return false
		}
	}
	return true
}
