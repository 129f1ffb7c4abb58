package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/skiffhq/skiff/internal/platform"
)

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	cfg, err := s.p.Config(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

func (s *Server) updateConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	changes, err := decodeConfigChanges(b)
	if err != nil {
		return err
	}
	cfg, _, err := s.p.UpdateConfig(r.Context(), c.account, r.PathValue("app"), changes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// decodeConfigChanges reads a config-vars PATCH body, keeping the keys in
// the order sent (release descriptions name them in that order). Values
// must be strings or null.
func decodeConfigChanges(b []byte) ([]platform.ConfigChange, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, badRequest("Invalid JSON in request body: " + err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badRequest("Request body must be a JSON object of config var names to string values (or null to remove).")
	}
	var changes []platform.ConfigChange
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, badRequest("Invalid JSON in request body: " + err.Error())
		}
		key := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badRequest("Invalid JSON in request body: " + err.Error())
		}
		ch := platform.ConfigChange{Key: key}
		if !bytes.Equal(raw, []byte("null")) {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, invalidParams(fmt.Sprintf("Config var %s must be a string or null, got %s.", key, raw))
			}
			ch.Value = &v
		}
		changes = append(changes, ch)
	}
	if _, err := dec.Token(); err != nil {
		return nil, badRequest("Invalid JSON in request body: " + err.Error())
	}
	if dec.More() {
		return nil, badRequest("Invalid JSON in request body: data after the object.")
	}
	return changes, nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := page(r, "version", "id")
	if err != nil {
		return err
	}
	l, err := s.p.Releases(r.Context(), c.account, r.PathValue("app"), p)
	if err != nil {
		return err
	}
	out := make([]releaseJSON, 0, len(l.Releases))
	for _, rel := range l.Releases {
		out = append(out, releaseToJSON(l.App, rel, rel.ID == l.CurrentID))
	}
	var first, last string
	if n := len(l.Releases); n > 0 {
		first, last = releaseField(l.Releases[0], p.Field), releaseField(l.Releases[n-1], p.Field)
	}
	writeJSON(w, writePage(w, p, l.More, first, last, "id, version"), out)
	return nil
}

func releaseField(r *platform.Release, field string) string {
	if field == "id" {
		return r.ID
	}
	return strconv.Itoa(r.Version)
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, c *call) error {
	app, rel, current, err := s.p.Release(r.Context(), c.account, r.PathValue("app"), r.PathValue("release"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, releaseToJSON(app, rel, current))
	return nil
}

func (s *Server) getReleaseConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	cfg, err := s.p.ReleaseConfig(r.Context(), c.account, r.PathValue("app"), r.PathValue("release"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// createRelease serves rollback: {"release": "<id or version>"}.
func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Release *string `json:"release"`
		Slug    *string `json:"slug"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Release == nil {
		if body.Slug != nil {
			return invalidParams("Slug releases are not supported: Skiff deploys OCI images (container:release) and builds (git push).")
		}
		return invalidParams("release is required: the id or version of the release to roll back to.")
	}
	// The images of the release rolled back to must still be there.
	if _, to, _, err := s.p.Release(r.Context(), c.account, r.PathValue("app"), *body.Release); err == nil {
		var images []platform.ImageUpdate
		for typ, proc := range to.Processes {
			if proc.Image != "" {
				images = append(images, platform.ImageUpdate{Type: typ, Image: proc.Image})
			}
		}
		if err := s.prepareImages(r.Context(), c, r.PathValue("app"), images, fmt.Sprintf("Cannot roll back to v%d: ", to.Version)); err != nil {
			return err
		}
	}
	rel, err := s.p.Rollback(r.Context(), c.account, r.PathValue("app"), *body.Release)
	if err != nil {
		return err
	}
	app, err := s.p.App(r.Context(), c.account, rel.AppID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, releaseToJSON(app, rel, true))
	return nil
}
