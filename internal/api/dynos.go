package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/skiffhq/skiff/internal/dyno"
)

// Dynos is the dyno manager as the API sees it.
type Dynos interface {
	Dynos(appID string) []dyno.Info
	Restart(appID, typ, name string) (int, error)
	Stop(appID, typ, name string) (int, error)
	RunOneOff(ctx context.Context, appID string, o dyno.OneOff) (dyno.Info, error)
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
// as on Heroku's Common Runtime: the formation wants it running; stopping a
// one-off dyno ends it.
func (s *Server) restartDynos(w http.ResponseWriter, r *http.Request, c *call) error {
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	typ, name := r.PathValue("type"), r.PathValue("dyno")
	act := func(d Dynos) (int, error) { return d.Restart(app.ID, typ, name) }
	if strings.HasSuffix(r.URL.Path, "/actions/stop") {
		act = func(d Dynos) (int, error) { return d.Stop(app.ID, typ, name) }
	}
	if s.cfg.Dynos == nil {
		if typ != "" || name != "" {
			return notFound("Couldn't find that dyno.")
		}
	} else if _, err := act(s.cfg.Dynos); err != nil {
		if name != "" {
			return notFound("Couldn't find that dyno.")
		}
		return notFound("Couldn't find that process type (" + typ + ").")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
	return nil
}

// createDyno runs a one-off dyno: `heroku run:detached` (attach false).
// Attached runs (`heroku run`) need the rendezvous service, which Skiff does
// not have yet: they are refused with a clear error.
func (s *Server) createDyno(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Command string            `json:"command"`
		Attach  *bool             `json:"attach"`
		Env     map[string]string `json:"env"`
		Size    string            `json:"size"`
		Type    string            `json:"type"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Command) == "" {
		return invalidParams("command is required.")
	}
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	if body.Attach != nil && *body.Attach {
		return invalidParams("Attached one-off dynos (heroku run) are not available on this Skiff yet; use heroku run:detached and heroku logs.")
	}
	if s.cfg.Dynos == nil {
		return invalidParams("This Skiff server runs no dynos.")
	}
	d, err := s.cfg.Dynos.RunOneOff(r.Context(), app.ID, dyno.OneOff{Command: body.Command, Env: body.Env, Size: body.Size, Type: body.Type})
	if errors.Is(err, dyno.ErrOneOff) {
		return invalidParams(err.Error())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, dynoToJSON(named{ID: app.ID, Name: app.Name}, d))
	return nil
}
