package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type fixed struct{}

func (fixed) WriteMetrics(w io.Writer) {
	Family(w, "skiff_x_total", "counter", "Things.\nCounted.")
	Sample(w, "skiff_x_total", 3)
	Sample(w, "skiff_x_total", 1.5, "app", `a"b\c`, "drain", "d.1")
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	var r Registry
	r.Add(fixed{})
	for _, tc := range []struct {
		method string
		status int
		body   string
	}{
		{"GET", 200, "# HELP skiff_x_total Things.\\nCounted.\n# TYPE skiff_x_total counter\nskiff_x_total 3\nskiff_x_total{app=\"a\\\"b\\\\c\",drain=\"d.1\"} 1.5\n"},
		{"POST", 405, "method not allowed\n"},
	} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(tc.method, "/metrics", nil))
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.method, rec.Code, rec.Body.String(), tc.status, tc.body)
		}
		if tc.status == http.StatusOK && rec.Header().Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
			t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
		}
	}
}
