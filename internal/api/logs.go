package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/platform"
)

// LogSessions is the log pipeline as the API sees it (a *logplex.Logplex).
type LogSessions interface {
	CreateSession(appID, appName string, o logplex.SessionOptions) (logplex.Session, error)
	// ServeStream serves a session's logplex_url; logplex.ErrSessionNotFound
	// means nothing was written and the answer is a 404.
	ServeStream(w http.ResponseWriter, r *http.Request, id string) error
	// Log writes one line into an app's log; it never blocks.
	Log(appID, app, source, dyno, message string)
	// LogFrames writes a log-input batch into an app's log; it never
	// blocks and does not keep frames.
	LogFrames(appID string, frames []logplex.Frame)
}

// maxLogLines is the most lines a session's backlog holds (Logplex's history).
const maxLogLines = 1500

type logSessionJSON struct {
	CreatedAt  string `json:"created_at"`
	ID         string `json:"id"`
	LogplexURL string `json:"logplex_url"`
	UpdatedAt  string `json:"updated_at"`
}

// createLogSession is POST /apps/{app}/log-sessions. The body's fields are
// all optional: lines (default 100, at most 1500), tail, source, and the
// dyno as `dyno` (what the CLI sends: "web.1" or "web"), `dyno_name` or
// `type` (the schema's names).
func (s *Server) createLogSession(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Lines    *int   `json:"lines"`
		Tail     bool   `json:"tail"`
		Source   string `json:"source"`
		Dyno     string `json:"dyno"`
		DynoName string `json:"dyno_name"`
		Type     string `json:"type"`
	}
	app, err := s.p.App(r.Context(), c.account, r.PathValue("app"))
	if err != nil {
		return err
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if s.cfg.Logs == nil {
		return notFound("Logs are not available on this server.")
	}
	lines := 100
	if body.Lines != nil {
		lines = *body.Lines
	}
	if lines < 0 {
		return invalidParams("lines must be a number from 0 to 1500.")
	}
	lines = min(lines, maxLogLines)
	dyno := body.Dyno
	for _, d := range []string{body.DynoName, body.Type} {
		if dyno == "" {
			dyno = d
		}
	}
	if strings.ContainsAny(dyno+body.Source, " []\r\n") {
		return invalidParams("source and dyno must be names such as app, heroku, web or web.1.")
	}
	sess, err := s.cfg.Logs.CreateSession(app.ID, app.Name, logplex.SessionOptions{
		Lines: lines, Tail: body.Tail, Dyno: dyno, Source: body.Source})
	if err != nil {
		return err
	}
	ts := timeJSON(sess.CreatedAt)
	writeJSON(w, http.StatusCreated, logSessionJSON{CreatedAt: ts, ID: sess.ID, LogplexURL: sess.URL, UpdatedAt: ts})
	return nil
}

// logStream is GET /logstream/{id}: a session's logplex_url. The CLI sends
// no Authorization header; the URL carries the session's own credential.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request) {
	err := errors.New("no log pipeline")
	if s.cfg.Logs != nil {
		err = s.cfg.Logs.ServeStream(w, r, r.PathValue("id"))
	}
	if err != nil {
		s.writeError(w, r, notFound("This log session does not exist or has expired."))
	}
}

// ingestLogs is POST /apps/{app}/log-input: an application/logplex-1 batch
// (octet-counted syslog frames, as Heroku's log-shuttle and HTTPS drains
// send them) written into the app's log, so that processes outside dynos
// can log there. The caller needs an API token with access to the app. A
// malformed batch is refused whole.
//
// It is a hot path: a log shipper calls it many times a second. It
// authenticates through the grants cache (see grants), reads the body into
// a pooled buffer and parses it into a pooled slice of frames, so that a
// batch costs one allocation per line (its message) and a few per request.
func (s *Server) ingestLogs(w http.ResponseWriter, r *http.Request) {
	if err := s.ingest(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) error {
	app, err := s.logInputApp(w, r)
	if err != nil {
		return err
	}
	if s.cfg.Logs == nil {
		return notFound("This Skiff server has no log pipeline.")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/logplex-1" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/logplex-1" {
			return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type",
				"Send log lines as Content-Type: application/logplex-1 (octet-counted syslog frames)."}
		}
	}
	if r.ContentLength < 0 {
		return s.ingestStream(w, r, app)
	}
	buf := bodies.Get().(*[]byte)
	defer func() {
		if cap(*buf) > 256<<10 {
			*buf = nil // a rare big batch: don't keep its buffer
		}
		bodies.Put(buf)
	}()
	b, err := appendBody((*buf)[:0], r)
	*buf = b[:0]
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{http.StatusRequestEntityTooLarge, "request_entity_too_large", "A log batch is at most 1 MiB."}
		}
		return badRequest("Could not read the request body.")
	}
	fp := frameSlices.Get().(*[]logplex.Frame)
	defer putFrames(fp)
	frames, err := logplex.AppendFrames((*fp)[:0], b)
	*fp = frames
	if err != nil {
		return badRequest("Invalid application/logplex-1 batch: " + err.Error())
	}
	if n := r.Header.Get("Logplex-Msg-Count"); n != "" && n != strconv.Itoa(len(frames)) {
		return badRequest(fmt.Sprintf("Logplex-Msg-Count says %s, the batch holds %d frames.", n, len(frames)))
	}
	s.cfg.Logs.LogFrames(app.ID, frames)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ingestStream takes a log-input request whose body has no length
// (chunked): its frames are written into the app's log as they arrive, so
// one long request can carry what many batches would, like a TCP syslog
// stream. Memory is bounded (one buffer of streamBuffer bytes); a
// malformed frame, or a body that ends within a frame, ends the request
// with 400 after the frames before it were taken. Authentication and
// access are checked again every grantTTL (through the grants cache), so a
// revoked token stops a stream as it stops batches.
func (s *Server) ingestStream(w http.ResponseWriter, r *http.Request, app *platform.App) error {
	buf := streams.Get().(*[]byte)
	defer streams.Put(buf)
	fp := frameSlices.Get().(*[]logplex.Frame)
	defer putFrames(fp)
	b := (*buf)[:0]
	taken := 0
	checked := s.cfg.Now()
	for {
		n, rerr := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		frames, rest, err := logplex.AppendStreamFrames((*fp)[:0], b, taken+1)
		*fp = frames
		if len(frames) > 0 {
			if now := s.cfg.Now(); now.Sub(checked) >= grantTTL {
				if app, err = s.logInputApp(w, r); err != nil {
					return err
				}
				checked = now
			}
			s.cfg.Logs.LogFrames(app.ID, frames)
			taken += len(frames)
			clear(frames)
		}
		if err != nil {
			return badRequest(fmt.Sprintf("Invalid application/logplex-1 stream (the %d frames before were taken): %s", taken, err))
		}
		b = b[:copy(b[:cap(b)], rest)]
		if rerr == io.EOF {
			if len(b) > 0 {
				return badRequest(fmt.Sprintf("The application/logplex-1 stream ends within frame %d (the %d frames before were taken).", taken+1, taken))
			}
			break
		}
		if rerr != nil {
			return badRequest(fmt.Sprintf("Could not read the request body (the %d frames before were taken).", taken))
		}
	}
	if n := r.Header.Get("Logplex-Msg-Count"); n != "" && n != strconv.Itoa(taken) {
		return badRequest(fmt.Sprintf("Logplex-Msg-Count says %s, the stream held %d frames (all taken).", n, taken))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// streamBuffer is the read buffer of a streamed log-input request: room
// for a whole frame of the largest size, and for many small ones.
const streamBuffer = 4 * logplex.MaxFrameBytes

// logInputApp authenticates a log-input request and finds its app, as
// handle and platform.App do (401, then the rate limit, then 403/404),
// from the grants cache when it can.
func (s *Server) logInputApp(w http.ResponseWriter, r *http.Request) (*platform.App, error) {
	tok := bearer(r)
	if tok == "" {
		return nil, unauthorized()
	}
	k := grantKey{token: sha256.Sum256([]byte(tok)), app: r.PathValue("app")}
	if g := s.grants.get(&k); g != nil {
		if err := s.rateLimit(w, g.limit, 1); err != nil {
			return nil, err
		}
		return g.app, nil
	}
	gen := s.grants.gen.Load()
	now := s.cfg.Now()
	a, t, err := s.p.Authenticate(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	if err := s.rateLimit(w, "account:"+a.ID, 1); err != nil {
		return nil, err
	}
	app, err := s.p.App(r.Context(), a, k.app)
	if err != nil {
		return nil, err
	}
	s.grants.put(k, gen, a, now, t.ExpiresAt, app)
	return app, nil
}

// appendBody appends the request body (at most maxBody) to b.
func appendBody(b []byte, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= maxBody && int64(cap(b)) < n {
		b = make([]byte, 0, n)
	}
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// Pools of the log-input endpoint: request bodies (kept up to 256 KiB)
// and frame slices.
var (
	bodies      = sync.Pool{New: func() any { return new([]byte) }}
	streams     = sync.Pool{New: func() any { b := make([]byte, 0, streamBuffer); return &b }}
	frameSlices = sync.Pool{New: func() any { return new([]logplex.Frame) }}
)

// putFrames gives a frame slice back to frameSlices, cleared so that the
// pool does not hold on to the messages.
func putFrames(fp *[]logplex.Frame) {
	clear(*fp)
	*fp = (*fp)[:0]
	frameSlices.Put(fp)
}
