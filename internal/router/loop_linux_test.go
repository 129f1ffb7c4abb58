package router

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// TestLoopProcs checks the loops' own Ps: while a router serves, each of
// its loops has added one P to GOMAXPROCS and the loop count comes from
// GOMAXPROCS without them; Close gives them back. (Not parallel: other
// routers would move GOMAXPROCS meanwhile.)
func TestLoopProcs(t *testing.T) {
	p0, base := runtime.GOMAXPROCS(0), baseProcs()
	cfg := fastConfig()
	cfg.Log = func(appID, app, line string) {}
	r := New(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(l) }()

	want := p0
	if loopsOn() {
		want = p0 + base // one loop per P it had, each adding its own
	}
	// The loops add their Ps as they start, after Serve has begun.
	for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("serving: GOMAXPROCS %d, want %d (%d before)", runtime.GOMAXPROCS(0), want, p0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := baseProcs(); got != base {
		t.Errorf("serving: GOMAXPROCS without the loops' Ps is %d, want %d", got, base)
	}

	r.Close()
	<-served
	if got := runtime.GOMAXPROCS(0); got != p0 {
		t.Errorf("after Close: GOMAXPROCS %d, want %d", got, p0)
	}
}
