package api

import (
	"net/http"

	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Name   *string `json:"name"`
		Region *string `json:"region"`
		Stack  *string `json:"stack"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	app, err := s.p.CreateApp(r.Context(), c.account, platform.AppSpec{Name: deref(body.Name), Region: deref(body.Region), Stack: deref(body.Stack)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.appJSON(app))
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := page(r, "id", "name", "updated_at")
	if err != nil {
		return err
	}
	apps, more, err := s.p.Apps(r.Context(), c.account, p)
	if err != nil {
		return err
	}
	out := make([]appJSON, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.appJSON(a))
	}
	var first, last string
	if len(apps) > 0 {
		first, last = appField(apps[0], p.Field), appField(apps[len(apps)-1], p.Field)
	}
	writeJSON(w, writePage(w, p, more, first, last, "id, name, updated_at"), out)
	return nil
}

func appField(a *platform.App, field string) string {
	switch field {
	case "name":
		return a.Name
	case "updated_at":
		return store.Time(a.UpdatedAt)
	}
	return a.ID
}

func (s *Server) listUserApps(w http.ResponseWriter, r *http.Request, c *call) error {
	if !isSelf(r.PathValue("user"), c.account) {
		return notFound("Couldn't find that user.")
	}
	return s.listApps(w, r, c)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, c *call) error {
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Name        *string `json:"name"`
		Maintenance *bool   `json:"maintenance"`
		BuildStack  *string `json:"build_stack"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	app, err := s.p.UpdateApp(r.Context(), c.account, r.PathValue("app"), platform.AppUpdate{Name: body.Name, Maintenance: body.Maintenance, BuildStack: body.BuildStack})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}

func (s *Server) destroyApp(w http.ResponseWriter, r *http.Request, c *call) error {
	app, err := s.p.DestroyApp(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appJSON(app))
	return nil
}

type collaboratorJSON struct {
	App         named    `json:"app"`
	CreatedAt   string   `json:"created_at"`
	ID          string   `json:"id"`
	Permissions []string `json:"permissions"`
	Role        string   `json:"role"`
	UpdatedAt   string   `json:"updated_at"`
	User        struct {
		Email     string `json:"email"`
		Federated bool   `json:"federated"`
		ID        string `json:"id"`
	} `json:"user"`
}

func (s *Server) listCollaborators(w http.ResponseWriter, r *http.Request, c *call) error {
	app, cs, err := s.p.Collaborators(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	out := make([]collaboratorJSON, 0, len(cs))
	for _, cb := range cs {
		j := collaboratorJSON{App: named{ID: app.ID, Name: app.Name}, CreatedAt: timeJSON(cb.CreatedAt), ID: cb.ID,
			Permissions: []string{}, Role: cb.Role, UpdatedAt: timeJSON(cb.UpdatedAt)}
		j.User.Email, j.User.ID = cb.Email, cb.AccountID
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listAddons: Skiff has no add-on marketplace, so every app has none. The
// CLI's apps:info needs the call to succeed.
func (s *Server) listAddons(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := s.p.App(r.Context(), c.account, r.PathValue("app")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, []any{})
	return nil
}
