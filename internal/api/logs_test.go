package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/uuid"
	"github.com/skiffhq/skiff/internal/logplex"
)

// logsEnv is an API server with a log pipeline. The pipeline's URL is a
// placeholder (the test server's address is known only once it runs);
// streamURL points a logplex_url at the test server.
func logsEnv(t *testing.T) (*env, *logplex.Logplex) {
	t.Helper()
	lp, err := logplex.Open(logplex.Config{Dir: t.TempDir(), URL: "http://api.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lp.Close() })
	e := newEnv(t, withConfig(func(c *Config) { c.Logs = lp }))
	return e, lp
}

func (e *env) streamURL(logplexURL string) string {
	e.t.Helper()
	rest, ok := strings.CutPrefix(logplexURL, "http://api.test/logstream/")
	if !ok {
		e.t.Fatalf("logplex_url %q does not start with the configured API URL and /logstream/", logplexURL)
	}
	return e.srv.URL + "/logstream/" + rest
}

// read GETs a stream as the CLI does (no Authorization) and returns the
// status, content type and body.
func (e *env) read(url, lastEventID string) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "heroku-run")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

func TestLogSessions(t *testing.T) {
	e, lp := logsEnv(t)
	app := e.createApp(e.admin.Token, "logsy")
	for _, l := range []struct{ source, dyno, msg string }{
		{"app", "web.1", "hello from web.1"}, {"app", "web.2", "hello from web.2"},
		{"heroku", "web.1", "State changed from starting to up"}, {"heroku", "router", "at=info path=/"},
		{"app", "api", "Set FOO config vars by user " + adminEmail},
	} {
		lp.Log(app.ID, app.Name, l.source, l.dyno, l.msg)
	}
	lp.Sync()

	tests := []struct {
		name string
		body any
		want []string
	}{
		{"defaults", nil, []string{"app[web.1]: hello from web.1", "app[web.2]: hello from web.2",
			"heroku[web.1]: State changed from starting to up", "heroku[router]: at=info path=/",
			"app[api]: Set FOO config vars by user " + adminEmail}},
		{"as the CLI sends -n 5 -d web.1 -s app", `{"source":"app","dyno":"web.1","lines":5,"tail":false}`,
			[]string{"app[web.1]: hello from web.1"}},
		{"process type", `{"dyno":"web","lines":100}`, []string{"app[web.1]: hello from web.1",
			"app[web.2]: hello from web.2", "heroku[web.1]: State changed from starting to up"}},
		{"schema's dyno_name", `{"dyno_name":"web.2"}`, []string{"app[web.2]: hello from web.2"}},
		{"schema's type", `{"type":"web","source":"heroku"}`, []string{"heroku[web.1]: State changed from starting to up"}},
		{"api lines", `{"dyno":"api"}`, []string{"app[api]: Set FOO config vars by user " + adminEmail}},
		{"newest line", `{"lines":1}`, []string{"app[api]: Set FOO config vars by user " + adminEmail}},
		{"more than the history holds", `{"lines":100000}`, []string{"app[web.1]: hello from web.1", "app[web.2]: hello from web.2",
			"heroku[web.1]: State changed from starting to up", "heroku[router]: at=info path=/",
			"app[api]: Set FOO config vars by user " + adminEmail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(http.StatusCreated, "POST", "/apps/logsy/log-sessions", e.admin.Token, tt.body,
				"Accept", "application/vnd.heroku+json; version=3.sdk")
			s := decodeAs[logSessionJSON](t, r)
			if uuid.Validate(s.ID) != nil || s.CreatedAt == "" || s.CreatedAt != s.UpdatedAt {
				t.Errorf("session %+v: want a uuid id and equal created_at and updated_at", s)
			}
			status, ctype, body := e.read(e.streamURL(s.LogplexURL), "")
			if status != http.StatusOK || ctype != "text/event-stream" {
				t.Fatalf("GET logplex_url: %d %s: %s", status, ctype, body)
			}
			var got []string
			for _, line := range strings.Split(body, "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok {
					_, rest, _ := strings.Cut(data, " ") // the timestamp
					got = append(got, rest)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	t.Run("the URL is the only credential", func(t *testing.T) {
		s := decodeAs[logSessionJSON](t, e.must(http.StatusCreated, "POST", "/apps/logsy/log-sessions", e.admin.Token, nil))
		url := e.streamURL(s.LogplexURL)
		for _, bad := range []string{
			strings.Split(url, "?")[0],                      // no token
			strings.Replace(url, "token=", "token=x", 1),    // a forged one
			e.srv.URL + "/logstream/" + uuid.NewString(),    // an unknown session
			strings.Replace(url, s.ID, uuid.NewString(), 1), // another id with this token
		} {
			r := e.do("GET", strings.TrimPrefix(bad, e.srv.URL), "", nil, "Accept", "text/event-stream")
			checkError(t, r, http.StatusNotFound, "not_found")
		}
	})
}

func TestLogSessionErrors(t *testing.T) {
	e, _ := logsEnv(t)
	e.createApp(e.admin.Token, "logsy")
	e.expectError(http.StatusForbidden, "forbidden", "POST", "/apps/logsy/log-sessions", e.bob.Token, nil)
	e.expectError(http.StatusNotFound, "not_found", "POST", "/apps/nosuchapp/log-sessions", e.admin.Token, nil)
	e.expectError(http.StatusUnauthorized, "unauthorized", "POST", "/apps/logsy/log-sessions", "", nil)
	e.expectError(http.StatusUnprocessableEntity, "invalid_params", "POST", "/apps/logsy/log-sessions", e.admin.Token, `{"lines":-1}`)
	e.expectError(http.StatusUnprocessableEntity, "invalid_params", "POST", "/apps/logsy/log-sessions", e.admin.Token, `{"lines":"ten"}`)
	e.expectError(http.StatusUnprocessableEntity, "invalid_params", "POST", "/apps/logsy/log-sessions", e.admin.Token, `{"dyno":"web 1"}`)
	e.expectError(http.StatusBadRequest, "bad_request", "POST", "/apps/logsy/log-sessions", e.admin.Token, `{"lines":`)

	// Without a log pipeline there are no sessions.
	bare := newEnv(t)
	bare.createApp(bare.admin.Token, "plain")
	bare.expectError(http.StatusNotFound, "not_found", "POST", "/apps/plain/log-sessions", bare.admin.Token, nil)
	bare.expectError(http.StatusNotFound, "not_found", "GET", "/logstream/"+uuid.NewString()+"?token=x", "", nil)
}

func TestLogInput(t *testing.T) {
	t.Parallel()
	e, lp := logsEnv(t)
	app := e.createApp(e.admin.Token, "ingest")
	frame := func(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }
	batch := frame("<190>1 2026-01-02T03:04:05+00:00 host app worker.7 - from outside") +
		frame("<45>1 2026-01-02T03:04:05+00:00 host heroku cron - tick")
	ct := "application/logplex-1"
	e.must(http.StatusNoContent, "POST", "/apps/ingest/log-input", e.admin.Token, batch, "Content-Type", ct, "Logplex-Msg-Count", "2")
	lp.Sync()
	var got []string
	for _, l := range lp.History(app.ID, 1500) {
		got = append(got, l.Source+"["+l.Dyno+"]: "+l.Message)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"app[worker.7]: from outside", "heroku[cron]: tick"} {
		if !strings.Contains(all, want) {
			t.Errorf("history lacks %q:\n%s", want, all)
		}
	}
	n := len(got)
	for _, tc := range []struct {
		body, ct, count string
		status          int
		id              string
	}{
		{batch, "application/json", "", 415, "unsupported_media_type"},
		{batch, ct, "3", 400, "bad_request"},
		{batch + "5 <190", ct, "", 400, "bad_request"},
		{frame("<190>1 ts h postgres web.1 - x"), ct, "", 400, "bad_request"},
		{strings.Repeat("x", maxBody+1), ct, "", 413, "request_entity_too_large"},
	} {
		checkError(t, e.do("POST", "/apps/ingest/log-input", e.admin.Token, tc.body, "Content-Type", tc.ct, "Logplex-Msg-Count", tc.count), tc.status, tc.id)
	}
	checkError(t, e.do("POST", "/apps/ingest/log-input", e.bob.Token, batch, "Content-Type", ct), http.StatusForbidden, "forbidden")
	checkError(t, e.do("POST", "/apps/ingest/log-input", "", batch, "Content-Type", ct), http.StatusUnauthorized, "unauthorized")
	lp.Sync()
	if got := len(lp.History(app.ID, 1500)); got != n {
		t.Errorf("refused batches wrote %d lines", got-n)
	}
}

// TestLogInputStream: a log-input body without a length (chunked) is
// taken frame by frame as it arrives, across reads that split frames
// anywhere and across the reader's buffer; a malformed frame or a body
// that ends within a frame is refused after the frames before it were
// taken.
func TestLogInputStream(t *testing.T) {
	t.Parallel()
	e, lp := logsEnv(t)
	app := e.createApp(e.admin.Token, "streamed")
	frame := func(i int) string {
		msg := fmt.Sprintf("<190>1 2026-01-02T03:04:05+00:00 host app web.%d - line %d %s", i%3+1, i, strings.Repeat("x", i%200))
		return fmt.Sprintf("%d %s", len(msg), msg)
	}
	var head, tail strings.Builder
	for i := range 20 {
		head.WriteString(frame(i))
	}
	const n = 4000 // more than a stream buffer holds
	for i := 20; i < n; i++ {
		tail.WriteString(frame(i))
	}
	if tail.Len() < 2*streamBuffer {
		t.Fatalf("the stream (%d bytes) does not cross the buffer (%d bytes)", tail.Len(), streamBuffer)
	}
	ct := "application/logplex-1"
	stream := func(parts ...string) io.Reader {
		var rs []io.Reader
		for _, p := range parts {
			rs = append(rs, strings.NewReader(p))
		}
		// The head one byte per read: frames and octet counts split everywhere.
		return io.MultiReader(append([]io.Reader{iotest.OneByteReader(strings.NewReader(head.String()))}, rs...)...)
	}
	e.must(http.StatusNoContent, "POST", "/apps/streamed/log-input", e.admin.Token, stream(tail.String()), "Content-Type", ct, "Logplex-Msg-Count", strconv.Itoa(n))
	lp.Sync()
	hist := lp.History(app.ID, 1500) // the newest 1 500 lines
	if len(hist) != 1500 {
		t.Fatalf("history holds %d lines, want 1500", len(hist))
	}
	for j, l := range hist {
		i := n - 1500 + j
		if want := fmt.Sprintf("line %d %s", i, strings.Repeat("x", i%200)); l.Message != want || l.Dyno != fmt.Sprintf("web.%d", i%3+1) {
			t.Fatalf("line %d is %s[%s]: %q", i, l.Source, l.Dyno, l.Message)
		}
	}
	for k, tc := range []struct {
		name  string
		parts []string
		count string
	}{
		{"ends within a frame", []string{"120 <190>1 2026"}, ""},
		{"ends within an octet count", []string{"12"}, ""},
		{"malformed frame", []string{"5 <190", frame(99)}, ""},
		{"wrong count", nil, "21"},
	} {
		name := "streamed-" + strconv.Itoa(k)
		t.Run(tc.name, func(t *testing.T) {
			app := e.createApp(e.admin.Token, name)
			checkError(t, e.do("POST", "/apps/"+name+"/log-input", e.admin.Token, stream(tc.parts...), "Content-Type", ct, "Logplex-Msg-Count", tc.count), http.StatusBadRequest, "bad_request")
			lp.Sync()
			if got := len(lp.History(app.ID, 1500)); got != 20 {
				t.Errorf("%d lines taken, want the 20 before the error", got)
			}
		})
	}
}

// TestLogInputGrants: log-input requests are authenticated through a cache
// (grants), which a revoked token or a destroyed app leaves at once.
func TestLogInputGrants(t *testing.T) {
	t.Parallel()
	e, _ := logsEnv(t)
	e.createApp(e.admin.Token, "granted")
	auth := decodeAs[authorizationJSON](t, e.must(http.StatusCreated, "POST", "/oauth/authorizations", "",
		`{"description":"shipper"}`, "Authorization", basic(adminEmail, e.admin.Token)))
	tok := *auth.AccessToken.Token
	msg := "<190>1 2026-01-02T03:04:05+00:00 host app worker.7 - hello"
	batch := fmt.Sprintf("%d %s", len(msg), msg)
	ct := "application/logplex-1"
	for range 3 {
		e.must(http.StatusNoContent, "POST", "/apps/granted/log-input", tok, batch, "Content-Type", ct)
	}
	gen := e.srv.Config.Handler.(*Server).grants.gen.Load()
	e.must(http.StatusNoContent, "POST", "/apps/granted/log-input", tok, batch, "Content-Type", ct)
	if e.srv.Config.Handler.(*Server).grants.gen.Load() != gen {
		t.Error("a log-input request invalidated the grants")
	}
	e.must(http.StatusOK, "DELETE", "/oauth/authorizations/"+auth.ID, e.admin.Token, nil)
	checkError(t, e.do("POST", "/apps/granted/log-input", tok, batch, "Content-Type", ct), http.StatusUnauthorized, "unauthorized")
	e.must(http.StatusNoContent, "POST", "/apps/granted/log-input", e.admin.Token, batch, "Content-Type", ct)
	e.must(http.StatusOK, "DELETE", "/apps/granted", e.admin.Token, nil)
	checkError(t, e.do("POST", "/apps/granted/log-input", e.admin.Token, batch, "Content-Type", ct), http.StatusNotFound, "not_found")
}
