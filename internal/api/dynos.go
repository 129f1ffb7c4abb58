package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/rendezvous"
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

// Rendezvous is where attached one-off dynos meet their clients.
type Rendezvous interface {
	Open() (*rendezvous.Session, error)
}

// createDyno runs a one-off dyno: detached (`heroku run:detached`), its
// output into the app's log; or attached (`heroku run`), answered with the
// attach_url its client connects to (the rendezvous service).
func (s *Server) createDyno(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Command    string                     `json:"command"`
		Attach     *bool                      `json:"attach"`
		Env        map[string]json.RawMessage `json:"env"`
		Size       string                     `json:"size"`
		Type       string                     `json:"type"`
		ForceNoTTY *bool                      `json:"force_no_tty"`
		TimeToLive *int64                     `json:"time_to_live"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Command) == "" {
		return invalidParams("command is required.")
	}
	env, err := envStrings(body.Env)
	if err != nil {
		return err
	}
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	if s.cfg.Dynos == nil {
		return invalidParams("This Skiff server runs no dynos.")
	}
	o := dyno.OneOff{Command: body.Command, Env: env, Size: body.Size, Type: body.Type, NoTTY: body.ForceNoTTY != nil && *body.ForceNoTTY}
	if body.TimeToLive != nil {
		if *body.TimeToLive < 1 || *body.TimeToLive > int64(dyno.MaxTTL/time.Second) {
			return invalidParams(fmt.Sprintf("time_to_live must be between 1 and %d seconds.", int64(dyno.MaxTTL/time.Second)))
		}
		o.TTL = time.Duration(*body.TimeToLive) * time.Second
	}
	var sess *rendezvous.Session
	if body.Attach != nil && *body.Attach {
		if s.cfg.Rendezvous == nil {
			return invalidParams("This Skiff server runs no rendezvous service, so one-off dynos cannot be attached; use heroku run:detached and heroku logs.")
		}
		if sess, err = s.cfg.Rendezvous.Open(); err != nil {
			return err
		}
		o.Attach = sess.Wait
	}
	d, err := s.cfg.Dynos.RunOneOff(r.Context(), app.ID, o)
	if err != nil && sess != nil {
		sess.Close()
	}
	if errors.Is(err, dyno.ErrOneOff) {
		return invalidParams(err.Error())
	}
	if err != nil {
		return err
	}
	j := dynoToJSON(named{ID: app.ID, Name: app.Name}, d)
	if sess != nil {
		j.AttachURL = &sess.URL
	}
	writeJSON(w, http.StatusCreated, j)
	return nil
}

// envStrings takes a one-off dyno's env, whose values are strings except
// that the heroku CLI sends COLUMNS and LINES as JSON numbers.
func envStrings(raw map[string]json.RawMessage) (map[string]string, error) {
	env := make(map[string]string, len(raw))
	for k, v := range raw {
		var str string
		if err := json.Unmarshal(v, &str); err == nil {
			env[k] = str
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, invalidParams("env." + k + " must be a string.")
		}
		env[k] = n.String()
	}
	return env, nil
}
