package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/skiffhq/skiff/internal/certs"
	"github.com/skiffhq/skiff/internal/dyno"
	"github.com/skiffhq/skiff/internal/logplex"
	"github.com/skiffhq/skiff/internal/platform"
	"github.com/skiffhq/skiff/internal/router"
	"github.com/skiffhq/skiff/internal/routing"
)

// routerSetup is what `skiff server` needs to run its router.
type routerSetup struct {
	httpAddr, httpsAddr string // "" or "off": not served
	loops               int    // router.Config.Loops
	baseDomain          string
	platform            *platform.Platform
	bus                 *platform.Bus
	dynos               *dyno.Manager // nil without dynos
	logs                *logplex.Logplex
	certs               *certs.Manager  // chooses certificates by SNI, answers ACME challenges
	domains             routing.Domains // custom hostnames of each app
	log                 *slog.Logger
}

// parseLoops reads --router-loops / --loops: empty for router.Config's
// default (one loop per CPU), "off" for none, else a number of loops.
func parseLoops(v string) (int, error) {
	switch v {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 256 {
		return 0, fmt.Errorf("%q: want a number of loops (1–256), empty or off", v)
	}
	return n, nil
}

// startRouter serves apps on their hosts: plain HTTP (which also answers
// ACME HTTP-01 challenges) and HTTPS with the certificate the certificate
// manager chooses by SNI, the table fed from the platform and the dyno
// manager. The same table goes to the hub, from which routers running
// apart from the server (`skiff router --api`) take it through the API;
// the feed runs even when this server serves no traffic itself. stop
// closes the listeners and waits for the router.
func startRouter(ctx context.Context, s routerSetup) (r *router.Router, hub *routing.Hub, stop func(), err error) {
	off := func(a string) bool { return a == "" || a == "off" }
	hub = &routing.Hub{Certs: s.certs.Served}
	set := hub.SetRoutes
	var ls []net.Listener
	if !off(s.httpAddr) || !off(s.httpsAddr) {
		if off(s.httpAddr) {
			s.log.Warn("the router serves no plain HTTP (--router-http-addr off): ACM cannot answer the CA's HTTP-01 challenges")
		}
		r = router.New(router.Config{
			Loops:          s.loops,
			GetCertificate: s.certs.GetCertificate,
			ACME:           s.certs.ChallengeHandler(),
			Log: func(appID, app, line string) {
				if appID != "" {
					s.logs.Log(appID, app, "heroku", "router", line)
				}
			},
		})
		closeAll := func() {
			for _, l := range ls {
				l.Close()
			}
		}
		for _, l := range []struct {
			addr, scheme string
			serve        func(net.Listener) error
		}{{s.httpAddr, "http", r.Serve}, {s.httpsAddr, "https", r.ServeTLS}} {
			if off(l.addr) {
				continue
			}
			ln, err := net.Listen("tcp", l.addr)
			if err != nil {
				closeAll()
				r.Close()
				return nil, nil, nil, fmt.Errorf("router listener: %w", err)
			}
			ls = append(ls, ln)
			fmt.Printf("Router %s: %s://%s\n", l.scheme, l.scheme, dialable(ln.Addr().(*net.TCPAddr)))
			go l.serve(ln)
		}
		set = func(routes []router.Route) {
			r.SetRoutes(routes)
			hub.SetRoutes(routes)
		}
	}
	feed := &routing.Feed{Apps: s.platform, Domains: s.domains, BaseDomain: s.baseDomain, Events: s.bus, Set: set, Log: s.log}
	if s.dynos != nil {
		feed.Dynos = s.dynos
	}
	feed.Init()
	if s.dynos != nil {
		s.dynos.Watch(feed.Notify)
	}
	context.AfterFunc(ctx, hub.Close) // routers waiting for a change must not hold up the API's shutdown
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { feed.Run(fctx) })
	wg.Go(func() { hub.Run(fctx) })
	return r, hub, func() {
		cancel()
		wg.Wait()
		if r != nil {
			r.Close()
		}
	}, nil
}

// routersAPI is what the API hands to routers running apart from the
// server: the hub's table, the certificate manager's ACME answers, and
// the apps' logs for their router lines.
type routersAPI struct {
	hub   *routing.Hub
	certs *certs.Manager
	logs  *logplex.Logplex
}

func (a routersAPI) Table() ([]byte, string, <-chan struct{}) { return a.hub.Table() }
func (a routersAPI) Challenge(token string) (string, bool)    { return a.certs.Challenge(token) }
func (a routersAPI) Log(appID, line string)                   { a.logs.Log(appID, "", "heroku", "router", line) }
