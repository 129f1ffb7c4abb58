package routing

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// The endpoints are tested in internal/api (TestRouterEndpoints), the whole
// path with the real server and `skiff router --api` in test/e2e
// (TestSkiffRouterFedByAPI, TestRouterWithDynos); these check the
// client's own logic.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLogSinkBatchesAndBounds(t *testing.T) {
	var mu sync.Mutex
	var got []map[string][]string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/skiff/router/logs" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		var body struct{ Apps map[string][]string }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body.Apps)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(api.Close)

	s := &LogSink{Client: &Client{URL: api.URL, Token: "tok"}, MaxBytes: 10, Log: quiet()}
	s.Add("a1", "shop", "12345")
	s.Add("", "", "no app: nobody's log")
	s.Add("a2", "blog", "678")
	s.Add("a1", "shop", "too much") // past 10 bytes waiting
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped())
	}
	s.flush(context.Background())
	s.Add("a1", "shop", "after") // room again once sent
	s.flush(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !slices.Equal(got[0]["a1"], []string{"12345"}) || !slices.Equal(got[0]["a2"], []string{"678"}) ||
		!slices.Equal(got[1]["a1"], []string{"after"}) {
		t.Fatalf("batches: %v", got)
	}

	// A refusing API: the batch is dropped and counted, not kept.
	s.Client.Token = "wrong"
	s.Add("a1", "shop", "lost")
	s.flush(context.Background())
	if s.Dropped() != 2 {
		t.Fatalf("dropped %d after a refused batch, want 2", s.Dropped())
	}
}

func TestChallengeHandler(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/skiff/router/acme-challenges/known":
			io.WriteString(w, "known.thumb")
		case "/skiff/router/acme-challenges/broken":
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(api.Close)
	h := (&Client{URL: api.URL, Token: "tok"}).ChallengeHandler(quiet())
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/.well-known/acme-challenge/known", 200, "known.thumb"},
		{"/.well-known/acme-challenge/unknown", 404, ""},
		{"/.well-known/acme-challenge/broken", 404, ""}, // through to the app
		{"/.well-known/acme-challenge/a/b", 404, ""},
		{"/elsewhere", 404, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.status || tc.status == 200 && rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, rec.Code, rec.Body.String(), tc.status, tc.body)
		}
	}
}
