package routing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/skiffhq/skiff/internal/certs"
	"github.com/skiffhq/skiff/internal/router"
)

// Table is the routing table as routers running apart from the server
// (`skiff router --api`) receive it: the routes the feed builds and the
// certificates the certificate manager serves.
type Table struct {
	Routes       []router.Route `json:"routes"`
	Certificates []certs.Served `json:"certificates"`
}

// Hub holds the latest Table, encoded once per change, for the API to hand
// to any number of routers. Routers poll with the ETag they have and wait
// on the channel Table returns, so a change reaches them at once.
type Hub struct {
	// Certs returns the certificates and a channel closed when they
	// change (certs.Manager.Served); nil: no certificates.
	Certs func() ([]certs.Served, <-chan struct{})

	mu      sync.Mutex
	routes  []router.Route
	served  []certs.Served
	body    []byte
	etag    string
	changed chan struct{}
	closed  bool
}

// Close wakes every waiter, for a server that shuts down: a router
// waiting for a change is answered at once (304) instead of holding the
// shutdown up. The table is frozen from then on.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.changed == nil {
		h.rebuild()
	}
	h.closed = true
	close(h.changed) // and never replaced: every later wait ends at once
}

// SetRoutes replaces the routes; it has the shape of Feed.Set.
func (h *Hub) SetRoutes(rs []router.Route) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes = rs
	h.rebuild()
}

// Run follows the certificates until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	if h.Certs == nil {
		return
	}
	for {
		served, changed := h.Certs()
		h.mu.Lock()
		h.served = served
		h.rebuild()
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// Table returns the current table as JSON, its ETag (quoted, as the header
// carries it) and a channel closed when a different table replaces it.
func (h *Hub) Table() (body []byte, etag string, changed <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.rebuild()
	}
	return h.body, h.etag, h.changed
}

// rebuild encodes the table; with mu held. The ETag is a digest of the
// encoding, so a table rebuilt without a change (the feed's periodic
// resync) wakes nobody, and a restarted server gives the same table the
// same ETag.
func (h *Hub) rebuild() {
	if h.closed {
		return
	}
	t := Table{Routes: h.routes, Certificates: h.served}
	if t.Routes == nil {
		t.Routes = []router.Route{}
	}
	if t.Certificates == nil {
		t.Certificates = []certs.Served{}
	}
	body, err := json.Marshal(t)
	if err != nil { // plain strings and numbers: cannot happen
		panic("routing: encode table: " + err.Error())
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	if h.changed != nil && etag == h.etag {
		return
	}
	h.body, h.etag = body, etag
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}
