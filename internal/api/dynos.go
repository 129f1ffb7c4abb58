package api

import (
	"net/http"

	"github.com/skiffhq/skiff/internal/dyno"
)

// Dynos is the dyno manager as the API sees it.
type Dynos interface {
	Dynos(appID string) []dyno.Info
	Restart(appID, typ, name string) (int, error)
}

type dynoJSON struct {
	AttachURL *string `json:"attach_url"`
	Command   string  `json:"command"`
	CreatedAt string  `json:"created_at"`
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Release   struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"release"`
	App       named  `json:"app"`
	Size      string `json:"size"`
	State     string `json:"state"`
	Type      string `json:"type"`
	UpdatedAt string `json:"updated_at"`
}

func dynoToJSON(app named, d dyno.Info) dynoJSON {
	j := dynoJSON{Command: d.Command, CreatedAt: timeJSON(d.CreatedAt), ID: d.ID, Name: d.Name, App: app,
		Size: d.Size, State: d.State, Type: d.Type, UpdatedAt: timeJSON(d.UpdatedAt)}
	j.Release.ID, j.Release.Version = d.ReleaseID, d.Release
	return j
}

// appDynos returns the app's reference and its dynos (none when no dyno
// manager runs).
func (s *Server) appDynos(r *http.Request, c *call) (named, []dyno.Info, error) {
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return named{}, nil, err
	}
	ref := named{ID: app.ID, Name: app.Name}
	if s.cfg.Dynos == nil {
		return ref, nil, nil
	}
	return ref, s.cfg.Dynos.Dynos(app.ID), nil
}

func (s *Server) listDynos(w http.ResponseWriter, r *http.Request, c *call) error {
	app, ds, err := s.appDynos(r, c)
	if err != nil {
		return err
	}
	out := make([]dynoJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, dynoToJSON(app, d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDyno(w http.ResponseWriter, r *http.Request, c *call) error {
	app, ds, err := s.appDynos(r, c)
	if err != nil {
		return err
	}
	name := r.PathValue("dyno")
	for _, d := range ds {
		if d.Name == name || d.ID == name {
			writeJSON(w, http.StatusOK, dynoToJSON(app, d))
			return nil
		}
	}
	return notFound("Couldn't find that dyno.")
}

// restartDynos serves every restart and stop: all dynos, one process type
// (formations/{type}) or one dyno. Stopping a formation dyno restarts it,
// as on Heroku's Common Runtime: the formation wants it running.
func (s *Server) restartDynos(w http.ResponseWriter, r *http.Request, c *call) error {
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	typ, name := r.PathValue("type"), r.PathValue("dyno")
	if s.cfg.Dynos == nil {
		if typ != "" || name != "" {
			return notFound("Couldn't find that dyno.")
		}
	} else if _, err := s.cfg.Dynos.Restart(app.ID, typ, name); err != nil {
		if name != "" {
			return notFound("Couldn't find that dyno.")
		}
		return notFound("Couldn't find that process type (" + typ + ").")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
	return nil
}
