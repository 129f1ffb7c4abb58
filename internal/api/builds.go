package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/skiffhq/skiff/internal/platform"
)

// Builds is the build service as the API sees it (a *build.Service).
type Builds interface {
	// Create starts a build of a source_blob URL, or of Tar when not nil.
	Create(ctx context.Context, actor *platform.Account, app string, url, version string, tar io.Reader) (*platform.Build, error)
	OutputURL(b *platform.Build) string
	FollowOutput(ctx context.Context, b *platform.Build, w io.Writer, flush func()) error
	Cancel(ctx context.Context, actor *platform.Account, app, id string) (*platform.Build, error)
	ClearCache(ctx context.Context, actor *platform.Account, app string) error
	CreateSource(ctx context.Context, actor *platform.Account, app string) (getURL, putURL string, err error)
	ServeSource(w http.ResponseWriter, r *http.Request, key string)
	ImportStack(ctx context.Context, actor *platform.Account, name string, r io.Reader) (*platform.BaseImage, error)
}

type buildJSON struct {
	App             idJSON         `json:"app"`
	Buildpacks      []any          `json:"buildpacks"`
	CreatedAt       string         `json:"created_at"`
	ID              string         `json:"id"`
	OutputStreamURL string         `json:"output_stream_url"`
	SourceBlob      sourceBlobJSON `json:"source_blob"`
	Release         *idJSON        `json:"release"`
	Slug            *idJSON        `json:"slug"`
	Stack           string         `json:"stack"`
	Status          string         `json:"status"`
	UpdatedAt       string         `json:"updated_at"`
	User            userRef        `json:"user"`
}

type idJSON struct {
	ID string `json:"id"`
}

type sourceBlobJSON struct {
	Checksum           *string `json:"checksum"`
	URL                string  `json:"url"`
	Version            *string `json:"version"`
	VersionDescription *string `json:"version_description"`
}

func (s *Server) buildToJSON(b *platform.Build) buildJSON {
	var stream string
	if s.cfg.Builds != nil {
		stream = s.cfg.Builds.OutputURL(b)
	}
	out := buildJSON{App: idJSON{b.AppID}, Buildpacks: []any{}, CreatedAt: timeJSON(b.CreatedAt), ID: b.ID,
		OutputStreamURL: stream, Stack: "container", Status: b.Status,
		UpdatedAt: timeJSON(b.UpdatedAt), User: userRef{ID: b.UserID, Email: b.UserEmail},
		SourceBlob: sourceBlobJSON{URL: b.SourceURL}}
	if b.SourceChecksum != "" {
		out.SourceBlob.Checksum = &b.SourceChecksum
	}
	if b.SourceVersion != "" {
		out.SourceBlob.Version = &b.SourceVersion
	}
	if b.ReleaseID != "" {
		out.Release = &idJSON{b.ReleaseID}
	}
	return out
}

// builds returns the build service once the caller may use the app.
func (s *Server) builds(r *http.Request, c *call) (Builds, error) {
	if _, err := s.p.App(r.Context(), c.account, r.PathValue("app")); err != nil {
		return nil, err
	}
	if s.cfg.Builds == nil {
		return nil, errNoBuilds
	}
	return s.cfg.Builds, nil
}

var errNoBuilds = notFound("Builds are not available on this server (it runs no dynos).")

// createBuild is POST /apps/{app}/builds {"source_blob": {"url", "version"}}.
// A request whose Content-Type is application/x-tar or application/gzip
// carries the source itself (the skiff client's builds:create), with the
// version in the query string.
func (s *Server) createBuild(w http.ResponseWriter, r *http.Request, c *call) error {
	bs, err := s.builds(r, c)
	if err != nil {
		return err
	}
	var b *platform.Build
	switch r.Header.Get("Content-Type") {
	case "application/x-tar", "application/gzip", "application/x-gzip":
		b, err = bs.Create(r.Context(), c.account, r.PathValue("app"), "", r.URL.Query().Get("version"), r.Body)
	default:
		var body struct {
			SourceBlob *struct {
				URL     string `json:"url"`
				Version string `json:"version"`
			} `json:"source_blob"`
			Buildpacks []any `json:"buildpacks"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.SourceBlob == nil || body.SourceBlob.URL == "" {
			return invalidParams("source_blob.url is required: the URL of a tarball of the source.")
		}
		if len(body.Buildpacks) > 0 {
			return invalidParams("Buildpacks are not supported: Skiff builds heroku.yml or a Dockerfile.")
		}
		b, err = bs.Create(r.Context(), c.account, r.PathValue("app"), body.SourceBlob.URL, body.SourceBlob.Version, nil)
	}
	if err != nil {
		return buildError(err)
	}
	writeJSON(w, http.StatusCreated, s.buildToJSON(b))
	return nil
}

// buildError turns a source the service refuses into a 422.
func buildError(err error) error {
	var se interface{ SourceError() string }
	if errors.As(err, &se) {
		return invalidParams(se.SourceError())
	}
	return err
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := page(r, "created_at", "id", "started_at")
	if err != nil {
		return err
	}
	bs, more, err := s.p.Builds(r.Context(), c.account, r.PathValue("app"), p)
	if err != nil {
		return err
	}
	out := make([]buildJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, s.buildToJSON(b))
	}
	var first, last string
	if n := len(bs); n > 0 {
		first, last = buildField(bs[0], p.Field), buildField(bs[n-1], p.Field)
	}
	writeJSON(w, writePage(w, p, more, first, last, "id, started_at"), out)
	return nil
}

func buildField(b *platform.Build, field string) string {
	if field == "id" {
		return b.ID
	}
	return b.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request, c *call) error {
	_, b, err := s.p.Build(r.Context(), c.account, r.PathValue("app"), r.PathValue("build"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.buildToJSON(b))
	return nil
}

// cancelBuild is DELETE /apps/{app}/builds/{build}: it stops a running
// build and answers with the build, failed, once it has ended.
func (s *Server) cancelBuild(w http.ResponseWriter, r *http.Request, c *call) error {
	bs, err := s.builds(r, c)
	if err != nil {
		return err
	}
	b, err := bs.Cancel(r.Context(), c.account, r.PathValue("app"), r.PathValue("build"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.buildToJSON(b))
	return nil
}

func (s *Server) deleteBuildCache(w http.ResponseWriter, r *http.Request, c *call) error {
	bs, err := s.builds(r, c)
	if err != nil {
		return err
	}
	if err := bs.ClearCache(r.Context(), c.account, r.PathValue("app")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// createSource is POST /apps/{app}/sources: an upload slot for a source
// tarball (PUT to put_url), to build with its get_url.
func (s *Server) createSource(w http.ResponseWriter, r *http.Request, c *call) error {
	bs, err := s.builds(r, c)
	if err != nil {
		return err
	}
	get, put, err := bs.CreateSource(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"source_blob": map[string]string{"get_url": get, "put_url": put}})
	return nil
}

// buildSource is PUT/GET /build-sources/{key}: the key is the credential.
func (s *Server) buildSource(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Builds == nil {
		s.writeError(w, r, errNoBuilds)
		return
	}
	s.cfg.Builds.ServeSource(w, r, r.PathValue("key"))
}

// buildOutput is GET /build-output/{key}: a build's output_stream_url,
// live while it runs, whole afterwards. The key is the credential.
func (s *Server) buildOutput(w http.ResponseWriter, r *http.Request) {
	bs := s.cfg.Builds
	if bs == nil {
		s.writeError(w, r, errNoBuilds)
		return
	}
	b, err := s.p.BuildByStreamKey(r.Context(), r.PathValue("key"))
	if err != nil {
		s.writeError(w, r, notFound("No such build output."))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w) // reaches the Flusher under the API's wrappers
	flush := func() { _ = rc.Flush() }
	flush()
	_ = bs.FollowOutput(r.Context(), b, w, flush)
}

// importStack is PUT /stacks/{stack}/rootfs with a root filesystem tarball
// as the body (`skiff stack:import`): an admin makes it a base image that
// Dockerfiles name in FROM.
func (s *Server) importStack(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Builds == nil {
		return errNoBuilds
	}
	st, err := s.cfg.Builds.ImportStack(r.Context(), c.account, r.PathValue("stack"), r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": st.Name, "image": st.Image,
		"created_at": timeJSON(st.CreatedAt), "updated_at": timeJSON(st.UpdatedAt)})
	return nil
}
