//go:build linux

package network

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Config names everything a Manager creates. Two Managers on one host must
// use different Bridge, Prefix, VethPrefix and non-overlapping Subnets.
type Config struct {
	// Bridge is the bridge device, e.g. "skiff0" (at most 15 characters).
	Bridge string
	// Subnet is the dynos' IPv4 network, e.g. 10.213.0.0/16 (/8 to /29).
	// The bridge takes the first address, which is the dynos' gateway.
	Subnet netip.Prefix
	// Prefix names the namespaces ("<Prefix>-<id>" under NetnsDir) and the
	// nftables tables ("<Prefix>_isolation", "<Prefix>_hostguard"). A
	// lower-case letter, then lower-case letters, digits or '_'.
	Prefix string
	// VethPrefix starts every host-side veth name (default "vh-", at most 7
	// characters); the rest is a hash of the id. The isolation rule matches
	// this prefix, so no other interface on the host may start with it.
	VethPrefix string
	// NetnsDir is where namespaces are bind-mounted (default /run/netns,
	// where `ip netns` finds them).
	NetnsDir string
	// AllowHostPorts are host TCP ports that dynos may reach on the bridge
	// address (e.g. a metadata or log-intake service). Default: none.
	AllowHostPorts []uint16
}

// Endpoint is one dyno's network: a named netns whose "eth0" has Addr and a
// default route via the bridge, plus the host end of its veth pair.
type Endpoint struct {
	ID        string
	NetnsPath string     // join with setns(2), or runc's linux.namespaces[].path
	Addr      netip.Addr // the dyno's address; invalid if unknown (a half-made endpoint)
	HostVeth  string     // the host-side veth, a port of the bridge
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("network: manager closed")

// Manager creates and removes endpoints on one bridge. Its methods are safe
// for concurrent use. Use one Manager per Config at a time: address
// allocation is in memory, recovered from the endpoints that exist at Open.
type Manager struct {
	cfg Config
	gw  netip.Addr
	nl  *netlink.Handle // rtnetlink in the host namespace

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup // calls in progress; Close waits for them
	alloc    *allocator
	eps      map[string]Endpoint      // attached (or recovered) endpoints
	busy     map[string]chan struct{} // ids with an Attach/Detach/reap in progress; closed when done

	carrierless bool // no carrier port (see ensureCarrierPort): Attach waits for the bridge
}

// Open prepares the bridge, its address and the isolation rules, and
// recovers the endpoints that already exist (from an earlier run) so their
// addresses are not handed out again. It is idempotent: opening the same
// Config again converges on the same state (one bridge with one address, the
// same two nftables tables with the same rules).
func Open(cfg Config) (*Manager, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("network: netlink: %w", err)
	}
	m := &Manager{
		cfg:   cfg,
		gw:    gateway(cfg.Subnet),
		nl:    h,
		alloc: newAllocator(cfg.Subnet),
		eps:   map[string]Endpoint{},
		busy:  map[string]chan struct{}{},
	}
	if err := m.open(); err != nil {
		h.Close()
		return nil, err
	}
	return m, nil
}

func (m *Manager) open() error {
	if err := prepareNetnsDir(m.cfg.NetnsDir); err != nil {
		return err
	}
	if err := m.ensureBridge(); err != nil {
		return err
	}
	if err := installRules(m.cfg); err != nil {
		return err
	}
	eps, err := m.scan()
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.Addr.IsValid() {
			// A conflicting or out-of-subnet address is left out of the
			// allocator; Reap is what removes such endpoints.
			m.alloc.reserve(ep.Addr, ep.ID)
		}
		m.eps[ep.ID] = ep
	}
	return nil
}

// ensureBridge creates the bridge if needed, gives it a fixed MAC and
// exactly one IPv4 address (the gateway), and sets it up.
func (m *Manager) ensureBridge() error {
	name := m.cfg.Bridge
	mac := bridgeMAC(name)
	link, err := m.nl.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.HardwareAddr = mac
		if err := m.nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("network: create bridge %s: %w", name, err)
		}
		if link, err = m.nl.LinkByName(name); err != nil {
			return fmt.Errorf("network: bridge %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("network: bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("network: %s exists and is a %s, not a bridge; refusing to touch it", name, link.Type())
	}
	if link.Attrs().HardwareAddr.String() != mac.String() {
		if err := m.nl.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("network: bridge %s: set MAC: %w", name, err)
		}
	}
	want := &netlink.Addr{IPNet: ipNet(m.gw, m.cfg.Subnet.Bits())}
	if err := m.nl.AddrReplace(link, want); err != nil {
		return fmt.Errorf("network: bridge %s: set address: %w", name, err)
	}
	addrs, err := m.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("network: bridge %s: list addresses: %w", name, err)
	}
	for _, a := range addrs {
		if !a.IPNet.IP.Equal(want.IP) || a.IPNet.String() != want.IPNet.String() {
			if err := m.nl.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("network: bridge %s: remove stale address %s: %w", name, a.IPNet, err)
			}
		}
	}
	if err := m.ensureCarrierPort(link); err != nil {
		return err
	}
	if err := m.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: bridge %s: up: %w", name, err)
	}
	return m.waitBridgeUp()
}

// ensureCarrierPort makes a sink interface, always up, a port of the
// bridge. A bridge has carrier only while one of its ports does, and the
// kernel only starts transmitting on it (attaches its qdisc) once the
// carrier-on event has gone through linkwatch, which for a bridge may be
// deferred by up to a second. Without a permanent port, the first dyno after
// an idle period would be unreachable from the host for that long.
//
// The port is a dummy device, or an ifb device where the kernel has no dummy
// driver (as on the project's VMs); both drop whatever the bridge sends
// them and never send anything. Where neither exists, the manager works
// without one and Attach waits for the bridge to be up instead.
func (m *Manager) ensureCarrierPort(bridge netlink.Link) error {
	name := m.cfg.carrierName()
	link, err := m.nl.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		err := m.nl.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = m.nl.LinkAdd(&netlink.Ifb{LinkAttrs: attrs})
		}
		if errors.Is(err, unix.EOPNOTSUPP) {
			m.carrierless = true
			return nil
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("network: create %s: %w", name, err)
		}
		if link, err = m.nl.LinkByName(name); err != nil {
			return fmt.Errorf("network: %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("network: %s: %w", name, err)
	}
	if !isCarrierType(link) {
		return fmt.Errorf("network: %s exists and is a %s, not a dummy or ifb; refusing to touch it", name, link.Type())
	}
	if link.Attrs().MasterIndex != bridge.Attrs().Index {
		if err := m.nl.LinkSetMasterByIndex(link, bridge.Attrs().Index); err != nil {
			return fmt.Errorf("network: %s: attach to bridge: %w", name, err)
		}
	}
	if err := m.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("network: %s: up: %w", name, err)
	}
	return nil
}

func isCarrierType(l netlink.Link) bool { return l.Type() == "dummy" || l.Type() == "ifb" }

// bridgeUpTimeout bounds the wait for the bridge to come up in Open.
const bridgeUpTimeout = 5 * time.Second

// waitBridgeUp waits until the kernel reports the bridge operationally up
// (its carrier-on event processed, so it transmits), which is usually at
// once and at most about a second after the bridge was created.
func (m *Manager) waitBridgeUp() error {
	deadline := time.Now().Add(bridgeUpTimeout)
	for {
		link, err := m.nl.LinkByName(m.cfg.Bridge)
		if err != nil {
			return fmt.Errorf("network: bridge %s: %w", m.cfg.Bridge, err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("network: bridge %s: not up after %v (state %s)", m.cfg.Bridge, bridgeUpTimeout, link.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// begin registers a call in progress; it fails once Close has begun. Every
// begin must be followed by m.inflight.Done().
func (m *Manager) begin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.inflight.Add(1)
	return nil
}

// Gateway is the bridge's address: the dynos' default gateway and the
// address at which they reach AllowHostPorts.
func (m *Manager) Gateway() netip.Addr { return m.gw }

// acquire marks id busy, first waiting for an operation in progress on the
// same id. The slow netlink work then runs without m.mu held, so operations
// on different ids proceed in parallel, while operations on one id (a
// restart's Detach and Attach, say) run one after the other.
func (m *Manager) acquire(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		if m.closed {
			return ErrClosed
		}
		done, busy := m.busy[id]
		if !busy {
			m.busy[id] = make(chan struct{})
			return nil
		}
		m.mu.Unlock()
		<-done
		m.mu.Lock()
	}
}

// releaseLocked ends what acquire began. m.mu must be held.
func (m *Manager) releaseLocked(id string) {
	close(m.busy[id])
	delete(m.busy, id)
}

// Attach creates the endpoint for id: a new named netns, a veth pair whose
// host end is a port of the bridge (isolated, up) and whose other end is
// "eth0" inside the netns with a free address of the subnet, lo and eth0
// up, and a default route via the bridge address. It fails if an endpoint
// for id exists already (fs.ErrExist). On failure nothing is left behind.
func (m *Manager) Attach(id string) (*Endpoint, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.inflight.Done()
	if err := m.acquire(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if _, ok := m.eps[id]; ok {
		m.releaseLocked(id)
		m.mu.Unlock()
		return nil, fmt.Errorf("network: endpoint %s: %w", id, fs.ErrExist)
	}
	addr, err := m.alloc.take(id)
	if err != nil {
		m.releaseLocked(id)
		m.mu.Unlock()
		return nil, err
	}
	m.mu.Unlock()

	ep := Endpoint{
		ID:        id,
		NetnsPath: filepath.Join(m.cfg.NetnsDir, m.cfg.netnsName(id)),
		Addr:      addr,
		HostVeth:  m.cfg.vethName(id),
	}
	err = m.create(ep)
	if err == nil && m.carrierless {
		err = m.waitBridgeUp()
	}
	if err != nil && !errors.Is(err, fs.ErrExist) { // never remove what another party made
		_ = m.remove(ep)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.releaseLocked(id)
	if err != nil {
		m.alloc.release(addr, id)
		return nil, fmt.Errorf("network: attach %s: %w", id, err)
	}
	m.eps[id] = ep
	return &ep, nil
}

// create builds ep. It runs without m.mu held, so Attaches run in parallel.
func (m *Manager) create(ep Endpoint) error {
	bridge, err := m.nl.LinkByName(m.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", m.cfg.Bridge, err)
	}
	return createNetns(ep.NetnsPath, func() error {
		// This runs on a discarded thread inside the new namespace. The
		// handle opened here talks to the new namespace; m.nl still talks
		// to the host's.
		ns, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink in netns: %w", err)
		}
		defer ns.Close()
		nsfd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns: %w", err)
		}
		defer unix.Close(nsfd)

		attrs := netlink.NewLinkAttrs()
		attrs.Name = ep.HostVeth
		attrs.MasterIndex = bridge.Attrs().Index
		attrs.Flags = net.FlagUp
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: PeerName, PeerNamespace: netlink.NsFd(nsfd)}
		if err := m.nl.LinkAdd(veth); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("host veth %s: %w", ep.HostVeth, fs.ErrExist)
			}
			return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
		}
		// The alias maps the hashed name back to the dyno in `ip link`
		// (the kernel ignores an alias given at creation).
		if err := m.nl.LinkSetAlias(veth, m.cfg.Prefix+":"+ep.ID); err != nil {
			return fmt.Errorf("alias %s: %w", ep.HostVeth, err)
		}
		// Bridge-port isolation: the bridge itself refuses to forward
		// between isolated ports. It duplicates the nftables rule, and
		// survives an `nft flush ruleset` that would wipe the rule.
		if err := m.nl.LinkSetIsolated(veth, true); err != nil {
			return fmt.Errorf("isolate %s: %w", ep.HostVeth, err)
		}

		lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo", Index: 1}}
		if err := ns.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up: %w", err)
		}
		eth, err := ns.LinkByName(PeerName)
		if err != nil {
			return fmt.Errorf("%s: %w", PeerName, err)
		}
		if err := ns.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(ep.Addr, m.cfg.Subnet.Bits())}); err != nil {
			return fmt.Errorf("%s address: %w", PeerName, err)
		}
		if err := ns.LinkSetUp(eth); err != nil {
			return fmt.Errorf("%s up: %w", PeerName, err)
		}
		route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(m.gw.AsSlice())}
		if err := ns.RouteAdd(route); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
		return nil
	})
}

// Detach removes id's veth pair and netns. It is idempotent: removing an
// endpoint that does not exist is not an error. The veth is deleted
// explicitly first, so the dyno is off the bridge when Detach returns even
// if a process still holds the namespace, and the same id can be attached
// again at once.
func (m *Manager) Detach(id string) error {
	if err := ValidID(id); err != nil {
		return err
	}
	if err := m.begin(); err != nil {
		return err
	}
	defer m.inflight.Done()
	if err := m.acquire(id); err != nil {
		return err
	}
	m.mu.Lock()
	ep, ok := m.eps[id]
	m.mu.Unlock()
	if !ok {
		ep = m.endpointFor(id)
	}
	err := m.remove(ep)

	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.releaseLocked(id)
	if err != nil {
		return fmt.Errorf("network: detach %s: %w", id, err)
	}
	m.forgetLocked(ep)
	return nil
}

// endpointFor is the Endpoint for id with its names filled in and its
// address unknown.
func (m *Manager) endpointFor(id string) Endpoint {
	return Endpoint{
		ID:        id,
		NetnsPath: filepath.Join(m.cfg.NetnsDir, m.cfg.netnsName(id)),
		HostVeth:  m.cfg.vethName(id),
	}
}

// forgetLocked drops ep from memory and frees its address. m.mu held.
func (m *Manager) forgetLocked(ep Endpoint) {
	if known, ok := m.eps[ep.ID]; ok {
		m.alloc.release(known.Addr, ep.ID)
		delete(m.eps, ep.ID)
	}
	if ep.Addr.IsValid() {
		m.alloc.release(ep.Addr, ep.ID)
	}
}

// remove deletes ep's host veth (which takes its peer with it) and netns.
func (m *Manager) remove(ep Endpoint) error {
	if err := m.delLink(ep.HostVeth); err != nil {
		return err
	}
	return removeNetns(ep.NetnsPath)
}

// delLink deletes a link by name; a missing link is not an error.
func (m *Manager) delLink(name string) error {
	link, err := m.nl.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := m.nl.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Endpoints lists the endpoints that exist now, found from the namespaces
// under NetnsDir named "<Prefix>-<id>", sorted by ID. It includes those left
// by an earlier process (for reaping) and half-made ones (Addr invalid), and
// leaves out those with an Attach or Detach in progress.
func (m *Manager) Endpoints() ([]Endpoint, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.inflight.Done()
	m.mu.Lock()
	known := maps.Clone(m.eps)
	m.mu.Unlock()
	all, err := m.scanWith(known)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(all, func(ep Endpoint) bool { return m.busy[ep.ID] != nil }), nil
}

// scan lists our namespaces and reads each one's address.
func (m *Manager) scan() ([]Endpoint, error) { return m.scanWith(nil) }

// scanWith is scan, taking the addresses of endpoints in known from there
// instead of entering their namespaces.
func (m *Manager) scanWith(known map[string]Endpoint) ([]Endpoint, error) {
	entries, err := os.ReadDir(m.cfg.NetnsDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("network: list %s: %w", m.cfg.NetnsDir, err)
	}
	var out []Endpoint
	for _, e := range entries {
		id, ok := m.cfg.idFromNetnsName(e.Name())
		if !ok {
			continue
		}
		if ep, ok := known[id]; ok {
			out = append(out, ep)
			continue
		}
		ep := m.endpointFor(id)
		ep.Addr = m.readAddr(ep.NetnsPath)
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// readAddr returns the IPv4 address of eth0 in the namespace at path that
// lies in our subnet, or the zero Addr (not a namespace, no eth0, ...).
func (m *Manager) readAddr(path string) netip.Addr {
	var found netip.Addr
	_ = inNetns(path, func() error {
		ns, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer ns.Close()
		eth, err := ns.LinkByName(PeerName)
		if err != nil {
			return err
		}
		addrs, err := ns.AddrList(eth, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && m.cfg.Subnet.Contains(ip) {
				found = ip
				return nil
			}
		}
		return nil
	})
	return found
}

// Reap removes stale endpoints, typically once at start after a crash,
// before new endpoints are attached: every endpoint for which keep(id) is
// false (keep == nil removes all), and every host veth with our VethPrefix
// that belongs to no endpoint (left by a crash in the middle of Attach).
// Endpoints with an Attach or Detach in progress are left alone.
func (m *Manager) Reap(keep func(id string) bool) error {
	if err := m.begin(); err != nil {
		return err
	}
	defer m.inflight.Done()
	return m.reap(keep)
}

func (m *Manager) reap(keep func(id string) bool) error {
	if keep == nil {
		keep = func(string) bool { return false }
	}
	// List links first: a veth made after this listing can't be mistaken
	// for an orphan, and one made before belongs to an id that is busy or
	// has a namespace by the time we look.
	links, err := m.nl.LinkList()
	if err != nil {
		return fmt.Errorf("network: list links: %w", err)
	}
	m.mu.Lock()
	known := maps.Clone(m.eps)
	m.mu.Unlock()
	eps, err := m.scanWith(known)
	if err != nil {
		return err
	}

	m.mu.Lock()
	ours := map[string]bool{} // host veths not to touch
	for id := range m.busy {
		ours[m.cfg.vethName(id)] = true
	}
	onDisk := map[string]bool{}
	var stale []Endpoint
	for _, ep := range eps {
		onDisk[ep.ID] = true
		if m.busy[ep.ID] != nil || keep(ep.ID) {
			ours[ep.HostVeth] = true
			continue
		}
		m.busy[ep.ID] = make(chan struct{})
		stale = append(stale, ep)
	}
	// Endpoints we knew whose namespace vanished behind our back (an admin
	// ran `ip netns del`): forget them, and let their veth be reaped.
	for id, ep := range m.eps {
		if !onDisk[id] && m.busy[id] == nil {
			m.forgetLocked(ep)
		}
	}
	m.mu.Unlock()

	var errs []error
	for _, ep := range stale {
		err := m.remove(ep)
		m.mu.Lock()
		if err == nil {
			m.forgetLocked(ep)
		} else {
			errs = append(errs, fmt.Errorf("network: reap %s: %w", ep.ID, err))
		}
		m.releaseLocked(ep.ID)
		m.mu.Unlock()
	}
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "veth" || !strings.HasPrefix(name, m.cfg.VethPrefix) || ours[name] {
			continue
		}
		if err := m.delLink(name); err != nil {
			errs = append(errs, fmt.Errorf("network: reap %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Close ends the manager. With removeAll (orderly shutdown of the platform)
// it also removes every endpoint, the nftables tables and the bridge, so
// nothing of Skiff's network remains; without it, endpoints and rules stay
// for the next Open to recover or reap. Calls in progress finish first;
// later calls return ErrClosed. Close is idempotent. If removal fails, Open
// the Config again and retry Close(true).
func (m *Manager) Close(removeAll bool) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.inflight.Wait()
	defer m.nl.Close()
	if !removeAll {
		return nil
	}
	var errs []error
	if err := m.reap(nil); err != nil {
		errs = append(errs, err)
	}
	if err := removeRules(m.cfg); err != nil {
		errs = append(errs, err)
	}
	if link, err := m.nl.LinkByName(m.cfg.carrierName()); err == nil && isCarrierType(link) {
		if err := m.nl.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("network: delete %s: %w", m.cfg.carrierName(), err))
		}
	}
	if link, err := m.nl.LinkByName(m.cfg.Bridge); err == nil && link.Type() == "bridge" {
		if err := m.nl.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("network: delete bridge %s: %w", m.cfg.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, a.BitLen())}
}
