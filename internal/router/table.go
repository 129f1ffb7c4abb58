package router

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Balance modes for choosing among an app's up web dynos.
const (
	BalanceRandom = "random" // Heroku's behaviour: uniform random choice
	BalanceP2C    = "p2c"    // power of two choices on in-flight requests
)

// Route is one app as the routing table feed describes it.
type Route struct {
	AppID       string    `json:"app_id"`
	App         string    `json:"app"`
	Hosts       []string  `json:"hosts"` // default <app>.<base domain> and custom domains
	Maintenance bool      `json:"maintenance,omitempty"`
	Balance     string    `json:"balance,omitempty"`  // "" or "random", or "p2c"
	Backends    []Backend `json:"backends"`           // up web dynos
	Starting    int       `json:"starting,omitempty"` // web dynos starting (H20 after the boot wait)
	Crashed     int       `json:"crashed,omitempty"`  // web dynos crashed (H10 when none is up)
	// ErrorPage and MaintenancePage are the app's ERROR_PAGE_URL and
	// MAINTENANCE_PAGE_URL: pages hosted elsewhere that the router's
	// error and maintenance answers show in place of its own (in an
	// iframe, as Heroku does). Empty, or not an http(s) URL: its own.
	ErrorPage       string `json:"error_page,omitempty"`
	MaintenancePage string `json:"maintenance_page,omitempty"`
}

// Backend is one up web dyno.
type Backend struct {
	Name string `json:"name"` // web.1
	Addr string `json:"addr"` // host:port
}

// table is immutable once published; the router swaps it atomically.
type table struct {
	hosts   map[string]*route
	changed chan struct{} // closed when a newer table replaces this one
}

type route struct {
	id, name    string
	maintenance bool
	p2c         bool
	backends    []*backend
	starting    int
	crashed     int
	errorPage   string // the page for H-code answers: pageAppError or the app's own
	maintPage   string // the page for H80: pageMaintenance or the app's own
	metrics     *appMetrics
	inflight    *atomic.Int64 // per app, for H11
}

// maxInflight is how many requests the app may have in flight before
// the router answers H11: 200 per up web dyno.
func (rt *route) maxInflight() int64 { return 200 * int64(max(1, len(rt.backends))) }

// backend carries state that outlives table swaps: in-flight count,
// quarantine and the pool of idle connections.
type backend struct {
	name      string
	addr      string
	inflight  atomic.Int64
	quarUntil atomic.Int64 // unix nanos; quarantined while now < quarUntil
	pool      pool
}

func (b *backend) quarantined(now int64) bool { return now < b.quarUntil.Load() }

// states keeps the per-backend and per-app objects across table swaps so
// counters and pooled connections survive a change in the feed.
type states struct {
	mu       sync.Mutex
	backends map[string]*backend // key: app id + "\x00" + addr + "\x00" + name
	apps     map[string]*appState
}

type appState struct {
	metrics  *appMetrics
	inflight atomic.Int64
}

// build makes an immutable table from routes, reusing state objects, and
// closes the idle connections of backends that left.
func (s *states) build(routes []Route, idleTimeout time.Duration) *table {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backends == nil {
		s.backends = map[string]*backend{}
		s.apps = map[string]*appState{}
	}
	t := &table{hosts: make(map[string]*route, len(routes)), changed: make(chan struct{})}
	seenB := map[string]bool{}
	seenA := map[string]bool{}
	for _, r := range routes {
		key := r.AppID
		if key == "" {
			key = r.App
		}
		as := s.apps[key]
		if as == nil {
			as = &appState{metrics: newAppMetrics(key, r.App)}
			s.apps[key] = as
		}
		as.metrics.name = r.App
		seenA[key] = true
		rt := &route{id: r.AppID, name: r.App, maintenance: r.Maintenance, p2c: r.Balance == BalanceP2C,
			starting: r.Starting, crashed: r.Crashed, metrics: as.metrics, inflight: &as.inflight,
			errorPage: customPage(r.ErrorPage, "Application Error", pageAppError),
			maintPage: customPage(r.MaintenancePage, "Offline for Maintenance", pageMaintenance)}
		for _, b := range r.Backends {
			k := key + "\x00" + b.Addr + "\x00" + b.Name
			be := s.backends[k]
			if be == nil {
				be = &backend{name: b.Name, addr: b.Addr}
				be.pool.idleTimeout = idleTimeout
				s.backends[k] = be
			}
			seenB[k] = true
			rt.backends = append(rt.backends, be)
		}
		for _, h := range r.Hosts {
			t.hosts[normHost(h)] = rt
		}
	}
	for k, be := range s.backends {
		if !seenB[k] {
			be.pool.closeAll()
			delete(s.backends, k)
		}
	}
	for k := range s.apps {
		if !seenA[k] {
			delete(s.apps, k)
		}
	}
	return t
}

func normHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	return strings.TrimSuffix(h, ".")
}

// lookup finds the route of a Host header value without allocating: the
// port and a trailing dot are dropped and ASCII letters lowered.
func (t *table) lookup(host []byte) *route {
	var buf [256]byte
	if len(host) > len(buf) {
		return nil
	}
	n := 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c == ':' {
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	if n > 0 && buf[n-1] == '.' {
		n--
	}
	if rt := t.hosts[string(buf[:n])]; rt != nil {
		return rt
	}
	// A wildcard domain "*.example.com" answers for one label more
	// ("a.example.com"); an exact host wins. The first label's last byte
	// becomes the "*": "abc.example.com" looks up "*.example.com".
	if i := bytes.IndexByte(buf[:n], '.'); i > 0 {
		buf[i-1] = '*'
		return t.hosts[string(buf[i-1:n])]
	}
	return nil
}
