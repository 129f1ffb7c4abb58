package routing

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/certs"
	"github.com/skiffhq/skiff/internal/router"
)

// closed reports whether ch is closed, waiting at most wait.
func closed(ch <-chan struct{}, wait time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(wait):
		return false
	}
}

// servedCerts stands in for certs.Manager.Served.
type servedCerts struct {
	mu      sync.Mutex
	served  []certs.Served
	changed chan struct{}
}

func (c *servedCerts) get() ([]certs.Served, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served, c.changed
}

func (c *servedCerts) set(s []certs.Served) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served = s
	close(c.changed)
	c.changed = make(chan struct{})
}

func TestHub(t *testing.T) {
	platform := certs.Served{Chain: "platform chain", Key: "platform key"}
	sc := &servedCerts{changed: make(chan struct{})}
	h := &Hub{Certs: sc.get}

	body, etag, changed := h.Table()
	if string(body) != `{"routes":[],"certificates":[]}` || etag == "" {
		t.Fatalf("empty hub: %s %s", body, etag)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	sc.set([]certs.Served{platform})
	if !closed(changed, 5*time.Second) {
		t.Fatal("the certificates did not change the table")
	}

	_, etag, changed = h.Table()
	routes := []router.Route{{AppID: "a1", App: "shop", Hosts: []string{"shop.example"},
		Backends: []router.Backend{{Name: "web.1", Addr: "10.0.0.2:5000"}}}}
	h.SetRoutes(routes)
	if !closed(changed, 0) {
		t.Fatal("new routes did not close the channel")
	}
	body, etag2, changed := h.Table()
	if etag2 == etag {
		t.Fatal("new routes kept the ETag")
	}
	var got Table
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Routes) != 1 || got.Routes[0].Backends[0].Addr != "10.0.0.2:5000" ||
		len(got.Certificates) != 1 || got.Certificates[0].Key != "platform key" {
		t.Fatalf("table: %s", body)
	}

	// The same routes again (the feed's resync) wake nobody.
	h.SetRoutes(append([]router.Route(nil), routes...))
	if closed(changed, 0) {
		t.Fatal("an unchanged table closed the channel")
	}
	if _, etag3, _ := h.Table(); etag3 != etag2 {
		t.Fatal("an unchanged table changed the ETag")
	}

	// New certificates do.
	sc.set([]certs.Served{platform, {Hosts: []string{"shop.example"}, Chain: "c", Key: "k"}})
	if !closed(changed, 5*time.Second) {
		t.Fatal("new certificates did not change the table")
	}

	// Close answers every waiter, now and later, with the same table.
	_, etag, changed = h.Table()
	h.Close()
	h.Close()
	if !closed(changed, 0) {
		t.Fatal("Close did not wake a waiter")
	}
	h.SetRoutes(nil)
	if _, etag2, changed := h.Table(); etag2 != etag || !closed(changed, 0) {
		t.Fatal("after Close: the table changed, or a new wait does not end at once")
	}
}
