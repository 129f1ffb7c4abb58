package api

import (
	"net/http"
	"time"

	"github.com/skiffhq/skiff/internal/platform"
)

// createAuthorization serves `heroku login -i`: Basic email:password (the
// password may also be one of the account's API tokens) gets a new token.
// A caller with a valid bearer token may also mint another token.
func (s *Server) createAuthorization(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Description string   `json:"description"`
		ExpiresIn   *int     `json:"expires_in"`
		Scope       []string `json:"scope"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	var ttl time.Duration
	if body.ExpiresIn != nil {
		if *body.ExpiresIn < 0 {
			return invalidParams("expires_in must not be negative.")
		}
		ttl = time.Duration(*body.ExpiresIn) * time.Second
	}
	var auth *platform.Authorization
	var err error
	if email, pass, ok := basicLogin(r); ok {
		auth, err = s.p.Login(r.Context(), email, pass, body.Description, ttl)
	} else {
		var c *call
		if c, err = s.authenticate(r); err == nil {
			auth, err = s.p.CreateToken(r.Context(), c.account, body.Description, ttl)
		}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.authorizationToJSON(auth))
	return nil
}

func (s *Server) listAuthorizations(w http.ResponseWriter, r *http.Request, c *call) error {
	auths, err := s.p.Authorizations(r.Context(), c.account, c.token)
	if err != nil {
		return err
	}
	out := make([]authorizationJSON, 0, len(auths))
	for _, a := range auths {
		out = append(out, s.authorizationToJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) findAuthorization(r *http.Request, c *call) (*platform.Authorization, error) {
	auths, err := s.p.Authorizations(r.Context(), c.account, c.token)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	for _, a := range auths {
		if a.ID == id || (id == "~" && a.Secret != "") {
			return a, nil
		}
	}
	return nil, notFound("Couldn't find that authorization.")
}

func (s *Server) getAuthorization(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := s.findAuthorization(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.authorizationToJSON(a))
	return nil
}

func (s *Server) deleteAuthorization(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := s.findAuthorization(r, c)
	if err != nil {
		return err
	}
	if err := s.p.RevokeAuthorization(r.Context(), c.account, a.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.authorizationToJSON(a))
	return nil
}

// deleteSession answers `heroku logout`'s session delete. Skiff has no
// browser sessions; the CLI revokes the token itself afterwards.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// getAccount also answers the CLI's delinquency check when
// HEROKU_PARTICLEBOARD_URL points here: it reads only fields we leave out.
func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, accountToJSON(c.account))
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	if !isSelf(r.PathValue("user"), c.account) {
		return notFound("Couldn't find that user.")
	}
	writeJSON(w, http.StatusOK, accountToJSON(c.account))
	return nil
}

func isSelf(ident string, a *platform.Account) bool {
	return ident == "~" || ident == a.ID || ident == a.Email
}

// rateLimits reports the caller's remaining requests; it costs nothing.
func (s *Server) rateLimits(w http.ResponseWriter, r *http.Request) {
	c, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_, remaining := s.limit.take("account:"+c.account.ID, 0)
	writeJSON(w, http.StatusOK, map[string]int{"remaining": remaining})
}

// createAccount is a Skiff extension: an admin adds an account and gets
// its first token, once.
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Email == "" {
		return invalidParams("email is required.")
	}
	a, auth, err := s.p.CreateAccountAs(r.Context(), c.account, body.Email, body.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		accountJSON
		AccessToken accessToken `json:"access_token"`
	}{accountToJSON(a), accessToken{ID: auth.ID, Token: &auth.Secret}})
	return nil
}
