//go:build linux

package network

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/skiffhq/skiff/internal/hostlock"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests create real bridges, veths, namespaces and nftables tables.
// Each test has its own names and its own /24 inside 10.213.0.0/16 (see
// testConfig), so they run in parallel; traffic only flows between the host
// and namespaces the test made. Every test ends by removing everything and
// checking that nothing is left.

const dialTimeout = 500 * time.Millisecond

var isRoot = os.Geteuid() == 0

func TestMain(m *testing.M) {
	var lock *hostlock.Lock
	if isRoot {
		// Serialise concurrent runs of this package (say, two `go test
		// ./...` at once): they would use the same names and subnets.
		var err error
		if lock, err = hostlock.Acquire("network-test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Remove what a killed earlier run may have left.
		for n := 1; n <= maxTestConfig; n++ {
			if err := purge(testConfig(n, nil)); err != nil {
				fmt.Fprintln(os.Stderr, "pre-clean:", err)
				os.Exit(1)
			}
		}
	}
	code := m.Run()
	lock.Release()
	os.Exit(code)
}

const maxTestConfig = 7

// testConfig is test n's configuration: bridge "skntNbr", prefix "skntN",
// veths "sktN-…", subnet 10.213.(200+N).0/24.
func testConfig(n int, ports []uint16) Config {
	if n < 1 || n > maxTestConfig {
		panic("testConfig: bad n")
	}
	return Config{
		Bridge:         fmt.Sprintf("sknt%dbr", n),
		Subnet:         netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", 200+n)),
		Prefix:         fmt.Sprintf("sknt%d", n),
		VethPrefix:     fmt.Sprintf("skt%d-", n),
		AllowHostPorts: ports,
	}
}

func purge(cfg Config) error {
	m, err := Open(cfg)
	if err != nil {
		return err
	}
	return m.Close(true)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot {
		skip(t, "needs root (network namespaces, bridges, nftables)")
	}
}

// openTest opens a Manager for cfg and registers a cleanup that removes
// everything and checks that nothing is left.
func openTest(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close(false)
		if err := purge(cfg); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		assertNothingLeft(t, cfg)
	})
	return m
}

func attach(t *testing.T, m *Manager, id string) *Endpoint {
	t.Helper()
	ep, err := m.Attach(id)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// serveIn starts a TCP server in ep's netns that greets with "hello <id>".
func serveIn(t *testing.T, ep *Endpoint, port int) {
	t.Helper()
	var ln net.Listener
	err := inNetns(ep.NetnsPath, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, "hello "+ep.ID)
}

func serve(t *testing.T, ln net.Listener, greeting string) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, greeting)
			}()
		}
	}()
}

// fetch connects to addr, from the netns at nsPath ("" = the host), and
// returns what the server sends.
func fetch(nsPath, addr string) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, dialTimeout)
		return err
	}
	var err error
	if nsPath == "" {
		err = dial()
	} else {
		err = inNetns(nsPath, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// mustReach checks that from reaches addr. It retries for a while: on a
// loaded machine a first connection (ARP, a fresh bridge port) can take
// longer than dialTimeout, and this checks reachability, not speed.
func mustReach(t *testing.T, from, addr, want string) {
	t.Helper()
	eventuallyReach(t, from, addr, want)
}

// eventuallyReach is mustReach with retries for up to 5 s.
func eventuallyReach(t *testing.T, from, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := fetch(from, addr)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s -> %s: got %q, %v; want %q", label(from), addr, got, err, want)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustNotReach(t *testing.T, from, addr string) {
	t.Helper()
	start := time.Now()
	got, err := fetch(from, addr)
	if err == nil {
		t.Errorf("%s -> %s: connected (got %q); want blocked", label(from), addr, got)
		return
	}
	t.Logf("%s -> %s blocked after %v: %v", label(from), addr, time.Since(start).Round(time.Millisecond), err)
}

func label(nsPath string) string {
	if nsPath == "" {
		return "host"
	}
	return filepath.Base(nsPath)
}

func hostListener(t *testing.T, greeting string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, greeting)
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

func TestIsolation(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	denied := hostListener(t, "host denied")
	allowed := hostListener(t, "host allowed")
	cfg := testConfig(1, []uint16{allowed})
	m := openTest(t, cfg)
	a := attach(t, m, "web.1")
	b := attach(t, m, "web.2")
	if a.Addr == b.Addr || !cfg.Subnet.Contains(a.Addr) || !cfg.Subnet.Contains(b.Addr) || a.Addr == m.Gateway() {
		t.Fatalf("addresses: a=%s b=%s gw=%s", a.Addr, b.Addr, m.Gateway())
	}
	serveIn(t, a, 5000)
	serveIn(t, b, 5000)
	aAddr, bAddr := hostPort(a.Addr, 5000), hostPort(b.Addr, 5000)

	// The host (the router) reaches every dyno.
	mustReach(t, "", aAddr, "hello web.1")
	mustReach(t, "", bAddr, "hello web.2")
	// A dyno reaches itself, on its own address and on loopback.
	mustReach(t, a.NetnsPath, aAddr, "hello web.1")
	mustReach(t, a.NetnsPath, "127.0.0.1:5000", "hello web.1")
	// Dynos don't reach each other.
	mustNotReach(t, a.NetnsPath, bAddr)
	mustNotReach(t, b.NetnsPath, aAddr)
	// Dynos reach the host only on AllowHostPorts, at the bridge address.
	gw := m.Gateway()
	mustNotReach(t, a.NetnsPath, hostPort(gw, denied))
	mustReach(t, a.NetnsPath, hostPort(gw, allowed), "host allowed")
	mustReach(t, b.NetnsPath, hostPort(gw, allowed), "host allowed")
	// Not at another host address either (the guard is by interface).
	if other, ok := otherHostAddr(cfg.Bridge); ok {
		mustNotReach(t, a.NetnsPath, hostPort(other, denied))
		mustNotReach(t, a.NetnsPath, hostPort(other, allowed))
	}

	// The nftables rule isolates on its own: with bridge-port isolation
	// off, a->b is still dropped, by the bridge-family rule (its counter
	// moves).
	for _, ep := range []*Endpoint{a, b} {
		setIsolated(t, ep.HostVeth, false)
	}
	before := isolationDrops(t, cfg)
	mustNotReach(t, a.NetnsPath, bAddr)
	if after := isolationDrops(t, cfg); after <= before {
		t.Errorf("bridge isolation rule counter: %d -> %d; want it to count the dropped frames", before, after)
	}
	// Negative control: without the rules (and port isolation off) a->b
	// and a->host connect, so the checks above test the rules...
	if err := removeRules(m.cfg); err != nil {
		t.Fatal(err)
	}
	// (Eventually: a's ARP for b may still be failing from the blocked
	// attempts above, which makes the first tries fail fast.)
	eventuallyReach(t, a.NetnsPath, bAddr, "hello web.2")
	mustReach(t, a.NetnsPath, hostPort(gw, denied), "host denied")
	// ...and Open puts them back.
	m2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(false)
	mustNotReach(t, a.NetnsPath, bAddr)
	mustNotReach(t, a.NetnsPath, hostPort(gw, denied))
	mustReach(t, "", aAddr, "hello web.1")
}

// otherHostAddr is a global IPv4 address of the host that is not on bridge
// (eth0's, typically). Dialling it from a dyno never leaves the machine: the
// host delivers it locally (or drops it).
func otherHostAddr(bridge string) (netip.Addr, bool) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ip.IsLoopback() || a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil && l.Attrs().Name != bridge && l.Attrs().MasterIndex == 0 {
			if !strings.HasPrefix(l.Attrs().Name, "sknt") {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

func setIsolated(t *testing.T, name string, on bool) {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetIsolated(l, on); err != nil {
		t.Fatal(err)
	}
}

// isolationDrops is the packet counter of the bridge-family drop rule.
func isolationDrops(t *testing.T, cfg Config) uint64 {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(cfg.isolationTable(), &nftables.Chain{Name: isolationChain, Table: cfg.isolationTable()})
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				n += ctr.Packets
			}
		}
	}
	return n
}

// ruleCounts maps "family/table/chain" to the number of rules, for the
// tables named after cfg.Prefix.
func ruleCounts(t *testing.T, cfg Config) map[string]int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tb := range tables {
		if !strings.HasPrefix(tb.Name, cfg.Prefix+"_") {
			continue
		}
		out[fmt.Sprintf("%d/%s", tb.Family, tb.Name)] = 0
		chains, err := c.ListChainsOfTableFamily(tb.Family)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chains {
			if ch.Table.Name != tb.Name {
				continue
			}
			rules, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%d/%s/%s", tb.Family, tb.Name, ch.Name)] += len(rules)
		}
	}
	return out
}

func TestOpenIdempotent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(2, []uint16{18080, 18081})
	m := openTest(t, cfg)
	a := attach(t, m, "web.1")

	bridge, inet := nftables.TableFamilyBridge, nftables.TableFamilyINet
	want := map[string]int{
		fmt.Sprintf("%d/sknt2_isolation", bridge):         0,
		fmt.Sprintf("%d/sknt2_isolation/forward", bridge): 1,
		fmt.Sprintf("%d/sknt2_hostguard", inet):           0,
		fmt.Sprintf("%d/sknt2_hostguard/input", inet):     3 + 2,
		fmt.Sprintf("%d/sknt2_hostguard/forward", inet):   2,
	}
	check := func(when string) {
		t.Helper()
		got := ruleCounts(t, cfg)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: nftables objects = %v, want %v", when, got, want)
		}
		br, err := netlink.LinkByName(cfg.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		addrs, _ := netlink.AddrList(br, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.213.202.1/24" {
			t.Errorf("%s: bridge addresses = %v", when, addrs)
		}
		if br.Attrs().HardwareAddr.String() != bridgeMAC(cfg.Bridge).String() || br.Attrs().OperState != netlink.OperUp {
			t.Errorf("%s: bridge MAC %s state %s", when, br.Attrs().HardwareAddr, br.Attrs().OperState)
		}
	}
	check("first Open")
	for _, args := range [][]string{{"list", "table", "bridge", "sknt2_isolation"}, {"list", "table", "inet", "sknt2_hostguard"}} {
		if out, err := exec.Command("nft", args...).CombinedOutput(); err == nil { // for the record
			t.Logf("$ nft %s\n%s", strings.Join(args, " "), out)
		}
	}

	// Open again, over the same state (as after a restart): same objects,
	// no duplicates, and the existing endpoint is recovered.
	m2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close(false) })
	check("second Open")
	if _, err := Open(cfg); err != nil {
		t.Fatal(err)
	}
	check("third Open")
	eps, err := m2.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0] != *a {
		t.Fatalf("recovered endpoints = %+v, want [%+v]", eps, *a)
	}
	b := attach(t, m2, "web.2")
	if b.Addr == a.Addr {
		t.Errorf("recovered address %s handed out again", a.Addr)
	}
	if _, err := m2.Attach("web.1"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Attach of a recovered id: err = %v, want ErrExist", err)
	}
	serveIn(t, b, 5000)
	mustReach(t, "", hostPort(b.Addr, 5000), "hello web.2")

	// A second address on the bridge (someone's manual change) is removed.
	br, _ := netlink.LinkByName(cfg.Bridge)
	extra, _ := netlink.ParseAddr("10.213.202.77/24")
	if err := netlink.AddrAdd(br, extra); err != nil {
		t.Fatal(err)
	}
	m3, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m3.Close(false)
	check("Open after a manual change")

	// A name clash with something that isn't a bridge is refused, untouched.
	clash := cfg
	clash.Bridge = "lo"
	if _, err := Open(clash); err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Errorf("Open with bridge lo: err = %v", err)
	}
}

func TestAttachDetach(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(3, nil)
	m := openTest(t, cfg)
	if _, err := m.Attach("../x"); err == nil {
		t.Error("Attach accepted a bad id")
	}
	ep := attach(t, m, "web.1")
	if want := "/run/netns/sknt3-web.1"; ep.NetnsPath != want {
		t.Errorf("NetnsPath = %s, want %s", ep.NetnsPath, want)
	}
	if _, err := m.Attach("web.1"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Attach: err = %v, want ErrExist", err)
	}

	// Host side: a veth, up, a port of the bridge, isolated.
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := netlink.LinkByName(ep.HostVeth)
	if err != nil {
		t.Fatal(err)
	}
	if hv.Type() != "veth" || hv.Attrs().MasterIndex != br.Attrs().Index || hv.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host veth %s: type %s master %d (bridge %d) flags %v", ep.HostVeth, hv.Type(), hv.Attrs().MasterIndex, br.Attrs().Index, hv.Attrs().Flags)
	}
	if pi, err := netlink.LinkGetProtinfo(hv); err != nil || !pi.Isolated {
		t.Errorf("host veth %s: bridge port not isolated (%+v, %v)", ep.HostVeth, pi, err)
	}
	if want := "sknt3:web.1"; hv.Attrs().Alias != want {
		t.Errorf("host veth %s: alias %q, want %q", ep.HostVeth, hv.Attrs().Alias, want)
	}

	// Inside: lo and eth0 up, the address, a default route via the bridge.
	err = inNetns(ep.NetnsPath, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
			if l.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("in netns: %s is down", l.Attrs().Name)
			}
		}
		if slices.Sort(names); fmt.Sprint(names) != "[eth0 lo]" {
			t.Errorf("in netns: links %v", names)
		}
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, _ := netlink.AddrList(eth, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(ep.Addr, 24).String() {
			t.Errorf("in netns: eth0 addresses %v, want %s/24", addrs, ep.Addr)
		}
		routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
		var def []string
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				def = append(def, r.Gw.String())
			}
		}
		if fmt.Sprint(def) != "["+m.Gateway().String()+"]" {
			t.Errorf("in netns: default routes via %v, want [%s]", def, m.Gateway())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := m.Detach("web.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ep.NetnsPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("netns file after Detach: %v", err)
	}
	if _, err := netlink.LinkByName(ep.HostVeth); err == nil {
		t.Errorf("host veth %s still exists after Detach", ep.HostVeth)
	}
	if err := m.Detach("web.1"); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if err := m.Detach("never.attached"); err != nil {
		t.Errorf("Detach of an unknown id: %v", err)
	}
	if eps, err := m.Endpoints(); err != nil || len(eps) != 0 {
		t.Errorf("Endpoints after Detach = %v, %v", eps, err)
	}
	again := attach(t, m, "web.1")
	if again.Addr == ep.Addr {
		t.Errorf("address %s reused at once; want next-fit", ep.Addr)
	}
	serveIn(t, again, 5000)
	mustReach(t, "", hostPort(again.Addr, 5000), "hello web.1")

	// A dyno is reachable as soon as Attach returns, also when it is the
	// only one on the bridge (the bridge keeps its carrier through its
	// carrier port, so the kernel never stops transmitting on it).
	for i := range 3 {
		if err := m.Detach("web.1"); err != nil {
			t.Fatal(err)
		}
		ep := attach(t, m, "web.1")
		serveIn(t, ep, 5001+i)
		mustReach(t, "", hostPort(ep.Addr, uint16(5001+i)), "hello web.1")
	}
}

func TestReapAfterCrash(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(4, nil)
	old := openTest(t, cfg)
	byID := map[string]*Endpoint{}
	for _, id := range []string{"web.1", "web.2", "worker.1"} {
		byID[id] = attach(t, old, id)
	}
	// The process "crashes": old is never closed. It also left a half-made
	// endpoint (a namespace file that was never mounted) and a host veth
	// with our prefix that belongs to no endpoint.
	if err := os.WriteFile(filepath.Join(DefaultNetnsDir, "sknt4-half.1"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	orphan := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: cfg.VethPrefix + "orphan"}, PeerName: cfg.VethPrefix + "orphanp"}
	if err := netlink.LinkAdd(orphan); err != nil {
		t.Fatal(err)
	}

	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(false) })
	eps, err := m.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ep := range eps {
		ids = append(ids, ep.ID)
		if want, ok := byID[ep.ID]; ok && ep != *want {
			t.Errorf("recovered %+v, want %+v", ep, *want)
		}
		if ep.ID == "half.1" && ep.Addr.IsValid() {
			t.Errorf("half-made endpoint has address %s", ep.Addr)
		}
	}
	if fmt.Sprint(ids) != "[half.1 web.1 web.2 worker.1]" {
		t.Errorf("Endpoints = %v", ids)
	}

	// Keep web.2 (say the dyno manager still wants it); reap the rest.
	if err := m.Reap(func(id string) bool { return id == "web.2" }); err != nil {
		t.Fatal(err)
	}
	eps, _ = m.Endpoints()
	if len(eps) != 1 || eps[0].ID != "web.2" {
		t.Errorf("after Reap(keep web.2): %+v", eps)
	}
	for _, name := range []string{orphan.Name, orphan.PeerName, byID["web.1"].HostVeth, byID["worker.1"].HostVeth} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s survived Reap", name)
		}
	}
	for _, f := range []string{"sknt4-half.1", "sknt4-web.1", "sknt4-worker.1"} {
		if _, err := os.Stat(filepath.Join(DefaultNetnsDir, f)); err == nil {
			t.Errorf("netns %s survived Reap", f)
		}
	}
	web2 := byID["web.2"]
	serveIn(t, web2, 5000)
	mustReach(t, "", hostPort(web2.Addr, 5000), "hello web.2")

	// A new endpoint does not take the kept one's address.
	n := attach(t, m, "web.3")
	if n.Addr == web2.Addr {
		t.Errorf("kept address %s handed out again", n.Addr)
	}

	if err := m.Reap(func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if eps, _ := m.Endpoints(); len(eps) != 0 {
		t.Errorf("after Reap(keep none): %+v", eps)
	}
	if out := leftovers(cfg); len(out) != 0 {
		// The bridge and the tables are expected; nothing else.
		for _, l := range out {
			if l != "bridge "+cfg.Bridge && l != "carrier "+cfg.carrierName() && !strings.HasPrefix(l, "nft ") {
				t.Errorf("left after Reap: %s", l)
			}
		}
	}
}

func TestCloseRemovesAll(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(5, []uint16{18080})
	m := openTest(t, cfg)
	attach(t, m, "web.1")
	attach(t, m, "web.2")
	if l := leftovers(cfg); len(l) != 2+2*2+2 { // bridge and its carrier port, 2 veths, 2 netns, 2 tables
		t.Errorf("before Close: %v", l)
	}
	if err := m.Close(true); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(true); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Attach("web.3"); !errors.Is(err, ErrClosed) {
		t.Errorf("Attach after Close: %v", err)
	}
	if err := m.Detach("web.1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Detach after Close: %v", err)
	}
	assertNothingLeft(t, cfg)
	for _, cmd := range [][]string{{"ip", "-o", "link"}, {"ip", "netns", "list"}, {"nft", "list", "tables"}} {
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			t.Logf("%v: %v", cmd, err) // the tools are only for the record
			continue
		}
		t.Logf("$ %s\n%s", strings.Join(cmd, " "), out)
		for _, name := range []string{cfg.Bridge, cfg.VethPrefix, cfg.Prefix + "-", cfg.Prefix + "_"} {
			if strings.Contains(string(out), name) {
				t.Errorf("%v still shows %q", cmd, name)
			}
		}
	}
}

func TestConcurrentAttach(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(6, nil)
	m := openTest(t, cfg)
	const n = 12
	eps := make([]*Endpoint, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ep, err := m.Attach(fmt.Sprintf("web.%d", i+1))
			if err != nil {
				t.Error(err)
				return
			}
			eps[i] = ep
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[netip.Addr]bool{}
	for _, ep := range eps {
		if seen[ep.Addr] {
			t.Errorf("address %s handed out twice", ep.Addr)
		}
		seen[ep.Addr] = true
	}
	list, err := m.Endpoints()
	if err != nil || len(list) != n {
		t.Errorf("Endpoints: %d, %v", len(list), err)
	}
	serveIn(t, eps[n-1], 5000)
	mustReach(t, "", hostPort(eps[n-1].Addr, 5000), fmt.Sprintf("hello web.%d", n))
	for i := range n {
		wg.Go(func() {
			if err := m.Detach(fmt.Sprintf("web.%d", i+1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if l := leftovers(cfg); len(l) != 4 { // the bridge, its carrier port and two tables
		t.Errorf("after concurrent Detach: %v", l)
	}
}

// TestAttachLatency logs (does not assert) how long Attach and Detach take.
func TestAttachLatency(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cfg := testConfig(7, nil)
	start := time.Now()
	m := openTest(t, cfg)
	t.Logf("Open (new bridge, rules, waiting for the bridge to be up): %v", time.Since(start).Round(10*time.Microsecond))
	start = time.Now()
	if m2, err := Open(cfg); err != nil {
		t.Fatal(err)
	} else {
		m2.Close(false)
	}
	t.Logf("Open again (existing bridge): %v", time.Since(start).Round(10*time.Microsecond))
	const n = 30
	var attachT, detachT []time.Duration
	for i := range n {
		start := time.Now()
		if _, err := m.Attach(fmt.Sprintf("web.%d", i)); err != nil {
			t.Fatal(err)
		}
		attachT = append(attachT, time.Since(start))
	}
	for i := range n {
		start := time.Now()
		if err := m.Detach(fmt.Sprintf("web.%d", i)); err != nil {
			t.Fatal(err)
		}
		detachT = append(detachT, time.Since(start))
	}
	t.Logf("Attach: %s", summary(attachT))
	t.Logf("Detach: %s", summary(detachT))
}

func summary(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	r := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
	return fmt.Sprintf("n=%d min=%v median=%v mean=%v max=%v", len(s), r(s[0]), r(s[len(s)/2]), r(sum/time.Duration(len(s))), r(s[len(s)-1]))
}

// leftovers lists what of cfg's exists: "bridge X", "veth X", "netns X",
// "nft FAMILY NAME".
func leftovers(cfg Config) []string {
	var out []string
	links, _ := netlink.LinkList()
	for _, l := range links {
		name := l.Attrs().Name
		switch {
		case name == cfg.Bridge:
			out = append(out, "bridge "+name)
		case name == cfg.carrierName():
			out = append(out, "carrier "+name)
		case strings.HasPrefix(name, cfg.VethPrefix):
			out = append(out, "veth "+name)
		}
	}
	entries, _ := os.ReadDir(DefaultNetnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), cfg.Prefix+"-") {
			out = append(out, "netns "+e.Name())
		}
	}
	if c, err := nftables.New(); err == nil {
		tables, _ := c.ListTables()
		for _, tb := range tables {
			if strings.HasPrefix(tb.Name, cfg.Prefix+"_") {
				out = append(out, fmt.Sprintf("nft %d %s", tb.Family, tb.Name))
			}
		}
	}
	return out
}

func assertNothingLeft(t *testing.T, cfg Config) {
	t.Helper()
	if l := leftovers(cfg); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}
