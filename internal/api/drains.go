package api

import (
	"net/http"

	"github.com/skiffhq/skiff/internal/platform"
)

// logDrainJSON is the schema's log-drain. Skiff has no add-ons, so addon is
// always null.
type logDrainJSON struct {
	Addon     *named         `json:"addon"`
	App       named          `json:"app"`
	CreatedAt string         `json:"created_at"`
	ID        string         `json:"id"`
	Token     string         `json:"token"`
	UpdatedAt string         `json:"updated_at"`
	URL       string         `json:"url"`
	Extended  *drainExtended `json:"extended,omitempty"`
}

// drainExtended answers ?extended=true (heroku drains --extended).
type drainExtended struct {
	DrainID string `json:"drain_id"`
}

func drainJSON(d *platform.Drain, app *platform.App, extended bool) logDrainJSON {
	j := logDrainJSON{App: named{ID: app.ID, Name: app.Name}, CreatedAt: timeJSON(d.CreatedAt), ID: d.ID,
		Token: d.Token, UpdatedAt: timeJSON(d.UpdatedAt), URL: d.URL}
	if extended {
		j.Extended = &drainExtended{DrainID: d.ID}
	}
	return j
}

// createDrain is POST /apps/{app}/log-drains {"url": …}.
func (s *Server) createDrain(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		URL string `json:"url"`
	}
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	d, err := s.p.AddDrain(r.Context(), c.account, app.ID, body.URL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, drainJSON(d, app, false))
	return nil
}

// listDrains is GET /apps/{app}/log-drains (?extended=true adds extended).
func (s *Server) listDrains(w http.ResponseWriter, r *http.Request, c *call) error {
	ds, app, err := s.p.Drains(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	ext := r.URL.Query().Get("extended") == "true"
	out := make([]logDrainJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, drainJSON(d, app, ext))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getDrain is GET /apps/{app}/log-drains/{drain}: by id, token or URL (the
// CLI sends a URL percent-encoded as one path segment).
func (s *Server) getDrain(w http.ResponseWriter, r *http.Request, c *call) error {
	d, app, err := s.p.Drain(r.Context(), c.account, r.PathValue("app"), r.PathValue("drain"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, drainJSON(d, app, r.URL.Query().Get("extended") == "true"))
	return nil
}

// deleteDrain is DELETE /apps/{app}/log-drains/{drain}: by id, token or URL.
func (s *Server) deleteDrain(w http.ResponseWriter, r *http.Request, c *call) error {
	d, app, err := s.p.RemoveDrain(r.Context(), c.account, r.PathValue("app"), r.PathValue("drain"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, drainJSON(d, app, false))
	return nil
}
