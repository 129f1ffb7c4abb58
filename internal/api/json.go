package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxBody bounds request bodies; no Platform API request needs more.
const maxBody = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"id":"internal_server_error","message":"Internal server error."}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// readBody reads a request body, refusing oversized ones. An empty body
// reads as "{}" so endpoints whose fields are all optional accept it.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, "request_entity_too_large", "Request body is larger than 1 MiB."}
		}
		return nil, badRequest("Could not read the request body.")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return []byte("{}"), nil
	}
	return b, nil
}

// decode reads a JSON object body into v. Malformed JSON is a 400
// bad_request; a field of the wrong type is a 422 invalid_params.
func decode(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshal(b, v)
}

func unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				return badRequest("Request body must be a JSON object.")
			}
			return invalidParams(fmt.Sprintf("Invalid type for %s: expected %s, got %s.", field, jsonType(te.Type.Kind().String()), te.Value))
		}
		return badRequest("Invalid JSON in request body: " + err.Error())
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int64", "float64":
		return "number"
	case "slice":
		return "array"
	}
	return "object"
}
