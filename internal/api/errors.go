package api

import (
	"errors"
	"net/http"

	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/store"
)

// apiError is an error with the HTTP status and Heroku error id it answers with.
type apiError struct {
	Status  int
	ID      string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func badRequest(msg string) error { return &apiError{http.StatusBadRequest, "bad_request", msg} }
func invalidParams(msg string) error {
	return &apiError{http.StatusUnprocessableEntity, "invalid_params", msg}
}
func unauthorized() error {
	return &apiError{http.StatusUnauthorized, "unauthorized", "Invalid credentials provided."}
}
func notFound(msg string) error { return &apiError{http.StatusNotFound, "not_found", msg} }

var kindStatus = map[platform.Kind]struct {
	status int
	id     string
}{
	platform.KindInvalid:      {http.StatusUnprocessableEntity, "invalid_params"},
	platform.KindNotFound:     {http.StatusNotFound, "not_found"},
	platform.KindForbidden:    {http.StatusForbidden, "forbidden"},
	platform.KindConflict:     {http.StatusConflict, "conflict"},
	platform.KindUnauthorized: {http.StatusUnauthorized, "unauthorized"},
}

// writeError answers with Heroku's error shape. Errors that are not the
// user's doing are logged and reported without their detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeJSON(w, ae.Status, map[string]string{"id": ae.ID, "message": ae.Message})
		return
	}
	if errors.Is(err, store.ErrBadRange) {
		writeJSON(w, http.StatusRequestedRangeNotSatisfiable, map[string]string{"id": "requested_range_not_satisfiable", "message": "Invalid Range header: " + err.Error()})
		return
	}
	if pe, ok := platform.AsError(err); ok {
		k := kindStatus[pe.Kind]
		writeJSON(w, k.status, map[string]string{"id": k.id, "message": pe.Message})
		return
	}
	if errors.Is(err, r.Context().Err()) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", w.Header().Get("Request-Id"), "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"id": "internal_server_error",
		"message": "Internal server error. Request-Id: " + w.Header().Get("Request-Id")})
}
