package routing

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffhq/skiff/internal/certs"
	"github.com/skiffhq/skiff/internal/router"
)

// Client is a router's side of the API that feeds routers running apart
// from the server (`skiff router --api`): it fetches the routing table,
// asks for ACME challenge answers and sends router lines. Its token must
// be an admin's.
type Client struct {
	URL   string // the API's base URL
	Token string
	HTTP  *http.Client // nil: http.DefaultClient
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// apiError reads a failed response's message.
func apiError(what string, res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	var e struct{ Message string }
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return fmt.Errorf("%s: %s: %s", what, res.Status, e.Message)
	}
	return fmt.Errorf("%s: %s", what, res.Status)
}

// Fetch returns the routing table unless it is still the one tagged etag
// after waiting up to wait for a change; then it returns a nil table. The
// table is checked as a table file is (router.CheckRoutes), and its
// certificates are parsed.
func (c *Client) Fetch(ctx context.Context, etag string, wait time.Duration) (t *Table, certs []router.NamedCert, newTag string, err error) {
	url := strings.TrimSuffix(c.URL, "/") + "/skiff/router/table"
	if wait > 0 {
		url += "?wait=" + strconv.Itoa(int(wait/time.Second))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, nil, "", fmt.Errorf("routing table: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	res, err := c.do(req)
	if err != nil {
		return nil, nil, "", fmt.Errorf("routing table: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotModified:
		return nil, nil, etag, nil
	case http.StatusOK:
	default:
		return nil, nil, "", apiError("routing table", res)
	}
	var tb Table
	if err := json.NewDecoder(res.Body).Decode(&tb); err != nil {
		return nil, nil, "", fmt.Errorf("routing table: %w", err)
	}
	if err := router.CheckRoutes(tb.Routes); err != nil {
		return nil, nil, "", fmt.Errorf("routing table from %s: %w", c.URL, err)
	}
	if certs, err = Certificates(tb.Certificates); err != nil {
		return nil, nil, "", fmt.Errorf("routing table from %s: %w", c.URL, err)
	}
	return &tb, certs, res.Header.Get("ETag"), nil
}

// Certificates parses served certificates for a router's certificate set.
func Certificates(served []certs.Served) ([]router.NamedCert, error) {
	named := make([]router.NamedCert, 0, len(served))
	for _, s := range served {
		c, err := tls.X509KeyPair([]byte(s.Chain), []byte(s.Key))
		if err != nil {
			return nil, fmt.Errorf("certificate for %v: %w", s.Hosts, err)
		}
		named = append(named, router.NamedCert{Cert: &c, Hosts: s.Hosts})
	}
	return named, nil
}

// ChallengeHandler answers ACME HTTP-01 challenges by asking the API,
// whose certificate manager runs the orders: any router the CA reaches
// can answer. A token the API does not know, or an API it cannot reach,
// is a 404, which lets the request through to the app.
func (c *Client) ChallengeHandler(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, certs.ChallengePrefix)
		if !ok || token == "" || strings.Contains(token, "/") {
			http.NotFound(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(c.URL, "/")+"/skiff/router/acme-challenges/"+token, nil)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		res, err := c.do(req)
		if err != nil {
			log.Warn("ACME challenge not answered: API unreachable", "err", err)
			http.NotFound(w, r)
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			if res.StatusCode != http.StatusNotFound {
				log.Warn("ACME challenge not answered", "err", apiError("challenge", res))
			}
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
}

// LogSink carries router lines to the API in batches: one request per
// Interval with every app's lines. It never blocks the router: past
// MaxBytes of lines waiting, new ones are dropped and counted.
type LogSink struct {
	Client   *Client
	Interval time.Duration // default 100 ms
	MaxBytes int           // default 8 MiB
	Log      *slog.Logger

	mu      sync.Mutex
	apps    map[string][]string
	bytes   int
	dropped atomic.Uint64
}

// Add queues a router line; it has the shape of router.Config.Log.
func (s *LogSink) Add(appID, _, line string) {
	if appID == "" {
		return // a request for no app: nobody's log
	}
	s.mu.Lock()
	if s.bytes+len(line) > s.maxBytes() {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	if s.apps == nil {
		s.apps = map[string][]string{}
	}
	s.apps[appID] = append(s.apps[appID], line)
	s.bytes += len(line)
	s.mu.Unlock()
}

func (s *LogSink) maxBytes() int {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return 8 << 20
}

// Dropped is how many lines were dropped because the API was behind.
func (s *LogSink) Dropped() uint64 { return s.dropped.Load() }

// Run sends the queued lines every Interval until ctx ends, then once
// more.
func (s *LogSink) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flush(sctx)
			cancel()
			return
		case <-tick.C:
		}
		s.flush(ctx)
		if d := s.dropped.Load(); d != reported {
			s.Log.Warn("router lines dropped: the API takes them slower than they come", "dropped_total", d)
			reported = d
		}
	}
}

// flush sends what is queued. Lines the API refuses or cannot take are
// dropped and counted: holding them would only delay newer ones.
func (s *LogSink) flush(ctx context.Context) {
	s.mu.Lock()
	apps, n := s.apps, 0
	for _, ls := range apps {
		n += len(ls)
	}
	s.apps, s.bytes = nil, 0
	s.mu.Unlock()
	if n == 0 {
		return
	}
	body, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		s.dropped.Add(uint64(n))
		return
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(s.Client.URL, "/")+"/skiff/router/logs", bytes.NewReader(body))
	if err != nil {
		s.dropped.Add(uint64(n))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.Client.do(req)
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			err = apiError("router lines", res)
		}
	}
	if err != nil {
		s.dropped.Add(uint64(n))
		if !errors.Is(err, context.Canceled) {
			s.Log.Warn("router lines not delivered", "lines", n, "err", err)
		}
	}
}
