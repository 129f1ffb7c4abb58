package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStream(t *testing.T) {
	var gotLast string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("done") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		gotLast = r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 1000\n\n: comment\n\nid: 7\ndata: line one\n\nid: 8\ndata: two\ndata: parts\n\n")
	}))
	defer srv.Close()
	var out bytes.Buffer
	e := &Env{Out: &out}
	last := "6"
	ended, err := e.stream(srv.URL, &last)
	if err != nil || ended {
		t.Fatalf("stream: ended=%v err=%v", ended, err)
	}
	if gotLast != "6" {
		t.Errorf("Last-Event-ID sent = %q, want 6", gotLast)
	}
	if last != "8" {
		t.Errorf("last id = %q, want 8", last)
	}
	if want := "line one\ntwo\nparts\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if ended, err := e.stream(srv.URL+"?done=1", &last); !ended || err != nil {
		t.Errorf("204: ended=%v err=%v", ended, err)
	}
}
