package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Routers is what routers running apart from the server (`skiff router
// --api`) get from it: the routing table, ACME challenge answers, and a
// way into the apps' logs for their router lines.
type Routers interface {
	// Table returns the routing table as JSON, its quoted ETag, and a
	// channel closed when a different table replaces it.
	Table() (body []byte, etag string, changed <-chan struct{})
	// Challenge returns the key authorization for an ACME HTTP-01 token.
	Challenge(token string) (string, bool)
	// Log writes a router line into an app's log.
	Log(appID, line string)
}

// RouterLogs is the body of POST /skiff/router/logs: router lines by app
// id, in the order they were written.
type RouterLogs struct {
	Apps map[string][]string `json:"apps"`
}

// maxRouterWait bounds how long GET /skiff/router/table holds a request
// open waiting for a change.
const maxRouterWait = 60 * time.Second

// routerLogsPattern is the route routers send their lines to; like
// log-input, it changes nothing that cached grants depend on.
const routerLogsPattern = "POST /skiff/router/logs"

// maxRouterLogs bounds one POST /skiff/router/logs body.
const maxRouterLogs = 8 << 20

// handleRouter registers a route for routers: admins only (the table holds
// every app's private keys) and not rate limited, since a busy router
// sends its lines several times a second and must not use up the admin's
// allowance for the CLI.
func (s *Server) handleRouter(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err == nil && !c.account.Admin {
			err = &apiError{http.StatusForbidden, "forbidden", "Only an admin may run a router."}
		}
		if err == nil && s.cfg.Routers == nil {
			err = notFound("This Skiff server serves no routers.")
		}
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// routerTable is GET /skiff/router/table[?wait=SECONDS]. With
// If-None-Match naming the table the router has, the answer is 304 at
// once, or after waiting up to wait seconds for a change, which is then
// sent as soon as it happens (a long poll).
func (s *Server) routerTable(w http.ResponseWriter, r *http.Request, _ *call) error {
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("wait must be a number of seconds.")
		}
		wait = min(time.Duration(n)*time.Second, maxRouterWait)
	}
	have := r.Header.Get("If-None-Match")
	body, etag, changed := s.cfg.Routers.Table()
	if etag == have && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-changed:
			body, etag, _ = s.cfg.Routers.Table()
		case <-t.C:
		case <-r.Context().Done():
			return nil
		}
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-store")
	if etag == have {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
	return nil
}

// routerChallenge is GET /skiff/router/acme-challenges/{token}: the answer
// to an ACME HTTP-01 challenge, for a router that received it.
func (s *Server) routerChallenge(w http.ResponseWriter, r *http.Request, _ *call) error {
	v, ok := s.cfg.Routers.Challenge(r.PathValue("token"))
	if !ok {
		return notFound("No ACME challenge with this token is in progress.")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(v))
	return nil
}

// routerLogs is POST /skiff/router/logs: a router's lines, as RouterLogs.
// Lines for apps this server does not know are dropped by the log
// pipeline, as for any other writer.
func (s *Server) routerLogs(w http.ResponseWriter, r *http.Request, _ *call) error {
	var body RouterLogs
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRouterLogs))
	if err := dec.Decode(&body); err != nil {
		return badRequest("Send router lines as {\"apps\": {\"<app id>\": [\"line\", …]}} of at most 8 MiB: " + err.Error())
	}
	for app, lines := range body.Apps {
		for _, l := range lines {
			s.cfg.Routers.Log(app, l)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
