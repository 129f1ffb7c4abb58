package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/skiffhq/skiff/internal/platform"
)

func (s *Server) listFormation(w http.ResponseWriter, r *http.Request, c *call) error {
	app, fs, err := s.p.Formation(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]formationJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, formationToJSON(app, f))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getFormation(w http.ResponseWriter, r *http.Request, c *call) error {
	app, fs, err := s.p.Formation(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	typ := r.PathValue("type")
	for _, f := range fs {
		if f.Type == typ || f.ID == typ {
			writeJSON(w, http.StatusOK, formationToJSON(app, f))
			return nil
		}
	}
	return notFound(fmt.Sprintf("Couldn't find that process type (%s).", typ))
}

// formationUpdate is one entry of a formation PATCH. quantity arrives as a
// number or a string ("2", "+1", "-1"); the size as "size", or "dyno_size"
// given as a name or {"id"|"name"}.
type formationUpdate struct {
	Type        string          `json:"type"`
	Quantity    json.RawMessage `json:"quantity"`
	Size        *string         `json:"size"`
	DynoSize    json.RawMessage `json:"dyno_size"`
	DockerImage *string         `json:"docker_image"`
}

func (u formationUpdate) scale() (platform.Scale, error) {
	sc := platform.Scale{Type: u.Type}
	if q := bytes.TrimSpace(u.Quantity); len(q) > 0 && !bytes.Equal(q, []byte("null")) {
		var text string
		switch q[0] {
		case '"':
			if err := json.Unmarshal(q, &text); err != nil {
				return sc, badRequest("Invalid quantity.")
			}
		default:
			var n json.Number
			if err := json.Unmarshal(q, &n); err != nil {
				return sc, invalidParams(fmt.Sprintf("Invalid type for quantity: expected a number or a string, got %s.", q))
			}
			if text = n.String(); strings.HasPrefix(text, "-") { // a number is absolute; "-1" (a string) scales down
				return sc, invalidParams(fmt.Sprintf("Invalid quantity %s: must not be negative.", q))
			}
		}
		qty, err := platform.ParseQuantity(text)
		if err != nil {
			return sc, err
		}
		sc.Quantity = &qty
	}
	size := u.Size
	if d := bytes.TrimSpace(u.DynoSize); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		var name string
		if json.Unmarshal(d, &name) != nil {
			var ref struct{ ID, Name string }
			if err := json.Unmarshal(d, &ref); err != nil {
				return sc, invalidParams("Invalid dyno_size: expected a size name or {\"name\": …}.")
			}
			name = ref.Name
			if name == "" {
				name = ref.ID
			}
		}
		size = &name
	}
	sc.Size = size
	return sc, nil
}

// batchUpdateFormation scales several process types at once. Entries with
// docker_image (Accept: version=3.docker-releases, as `heroku
// container:release` sends them) release those images as one new release.
func (s *Server) batchUpdateFormation(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Updates []formationUpdate `json:"updates"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if len(body.Updates) == 0 {
		return invalidParams("updates is required: a list of {type, quantity, size}.")
	}
	var images []platform.ImageUpdate
	var scales []platform.Scale
	for _, u := range body.Updates {
		if u.Type == "" {
			return invalidParams("Each update needs a process type.")
		}
		if u.DockerImage != nil {
			images = append(images, platform.ImageUpdate{Type: u.Type, Image: *u.DockerImage})
		}
		sc, err := u.scale()
		if err != nil {
			return err
		}
		if sc.Quantity != nil || sc.Size != nil {
			scales = append(scales, sc)
		}
	}
	app := r.PathValue("app")
	if err := s.prepareImages(r.Context(), c, app, images, ""); err != nil {
		return err
	}
	if _, _, err := s.p.UpdateFormation(r.Context(), c.account, app, images, scales); err != nil {
		return err
	}
	a, fs, err := s.p.Formation(r.Context(), c.account, app)
	if err != nil {
		return err
	}
	out := make([]formationJSON, 0, len(body.Updates))
	for _, f := range fs {
		for _, u := range body.Updates {
			if strings.EqualFold(u.Type, f.Type) {
				out = append(out, formationToJSON(a, f))
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) updateFormation(w http.ResponseWriter, r *http.Request, c *call) error {
	var u formationUpdate
	if err := decode(r, &u); err != nil {
		return err
	}
	u.Type = r.PathValue("type")
	sc, err := u.scale()
	if err != nil {
		return err
	}
	fs, err := s.p.ScaleFormation(r.Context(), c.account, r.PathValue("app"), []platform.Scale{sc})
	if err != nil {
		return err
	}
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, formationToJSON(app, fs[0]))
	return nil
}

// prepareImages readies released images through Config.Images, if set.
// An image it cannot ready is the request's fault (422); prefix starts the
// message.
func (s *Server) prepareImages(ctx context.Context, c *call, app string, images []platform.ImageUpdate, prefix string) error {
	if len(images) == 0 || s.cfg.Images == nil {
		return nil
	}
	err := s.cfg.Images.Prepare(ctx, c.account, app, images)
	if err == nil {
		return nil
	}
	if _, ok := platform.AsError(err); ok {
		return err
	}
	return &apiError{http.StatusUnprocessableEntity, "invalid_params", prefix + err.Error()}
}
