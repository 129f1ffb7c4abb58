//go:build linux

package network

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the nftables objects a Manager owns. Tables are named after
// Config.Prefix; chains have fixed names inside them.
const (
	isolationChain = "forward"
	guardInput     = "input"
	guardForward   = "forward"
)

func (cfg Config) isolationTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyBridge, Name: cfg.Prefix + "_isolation"}
}

func (cfg Config) hostguardTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: cfg.Prefix + "_hostguard"}
}

// bridgeFilterPriority is NF_BR_PRI_FILTER_BRIDGED, what `nft` calls
// "priority filter" in the bridge family. It runs before br_netfilter's hook
// (priority 0), so our drop comes first whatever br_netfilter is set to.
var bridgeFilterPriority = nftables.ChainPriorityRef(-200)

// installRules replaces the manager's two tables in one atomic nftables
// transaction: "add table; delete table; add table with chains and rules".
// The add-before-delete makes the delete valid when the table doesn't exist
// yet, and because it is one batch, the kernel switches from the old rule
// set to the new one with no window in between and never holds duplicates.
// Running it any number of times yields the same state.
func installRules(cfg Config) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	accept := nftables.ChainPolicyAccept

	// (1) Bridge family, forward hook: the bridge forwards a frame from one
	// port to another only between dynos (host<->dyno traffic goes through
	// the bridge device's input/output, not forward). Drop every frame, of
	// any ether type (IP, ARP, IPv6), that enters on a dyno veth and leaves
	// on a dyno veth.
	iso := cfg.isolationTable()
	c.AddTable(iso)
	c.DelTable(iso)
	c.AddTable(iso)
	fwd := c.AddChain(&nftables.Chain{
		Name: isolationChain, Table: iso, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: bridgeFilterPriority, Policy: &accept,
	})
	c.AddRule(&nftables.Rule{Table: iso, Chain: fwd, Exprs: concat(
		matchIfnamePrefix(expr.MetaKeyIIFNAME, cfg.VethPrefix),
		matchIfnamePrefix(expr.MetaKeyOIFNAME, cfg.VethPrefix),
		counterVerdict(expr.VerdictDrop),
	)})

	// (2) inet family (IPv4 and IPv6), input hook: what dynos may send to
	// the host itself. Packets from a dyno to any host address (the bridge
	// address, but also eth0's or anything else bound to 0.0.0.0) arrive
	// with iifname == the bridge. Replies to connections the host opened
	// are established and pass; ICMP passes (ping the gateway, errors);
	// TCP to AllowHostPorts on the bridge address passes; the rest is
	// dropped. The output hook is untouched, so host->dyno keeps working.
	guard := cfg.hostguardTable()
	c.AddTable(guard)
	c.DelTable(guard)
	c.AddTable(guard)
	in := c.AddChain(&nftables.Chain{
		Name: guardInput, Table: guard, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	fromBridge := matchIfname(expr.MetaKeyIIFNAME, cfg.Bridge)
	c.AddRule(&nftables.Rule{Table: guard, Chain: in, Exprs: concat(
		fromBridge, ctStateEstablishedRelated(), verdict(expr.VerdictAccept),
	)})
	c.AddRule(&nftables.Rule{Table: guard, Chain: in, Exprs: concat(
		fromBridge, matchL4Proto(unix.IPPROTO_ICMP), verdict(expr.VerdictAccept),
	)})
	gw := gateway(cfg.Subnet).As4()
	for _, port := range cfg.AllowHostPorts {
		c.AddRule(&nftables.Rule{Table: guard, Chain: in, Exprs: concat(
			fromBridge,
			matchNFProto(unix.NFPROTO_IPV4),
			[]expr.Any{
				// ip daddr <gateway>
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: gw[:]},
			},
			matchL4Proto(unix.IPPROTO_TCP),
			[]expr.Any{
				// tcp dport <port>
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
			},
			verdict(expr.VerdictAccept),
		)})
	}
	c.AddRule(&nftables.Rule{Table: guard, Chain: in, Exprs: concat(
		fromBridge, counterVerdict(expr.VerdictDrop),
	)})

	// (3) inet family, forward hook: nothing is routed to or from dynos.
	// With ip_forward=0 this never matches; it keeps dynos cut off if
	// something else on the host (a Docker install, say) turns forwarding
	// on. With br_netfilter, bridged dyno<->dyno IPv4 also shows up here
	// (in and out = the bridge) and is dropped a second time.
	out := c.AddChain(&nftables.Chain{
		Name: guardForward, Table: guard, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	c.AddRule(&nftables.Rule{Table: guard, Chain: out, Exprs: concat(
		fromBridge, counterVerdict(expr.VerdictDrop),
	)})
	c.AddRule(&nftables.Rule{Table: guard, Chain: out, Exprs: concat(
		matchIfname(expr.MetaKeyOIFNAME, cfg.Bridge), counterVerdict(expr.VerdictDrop),
	)})

	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: install nftables rules: %w", err)
	}
	return nil
}

// removeRules deletes the manager's tables, if they exist, in one batch.
func removeRules(cfg Config) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	for _, t := range []*nftables.Table{cfg.isolationTable(), cfg.hostguardTable()} {
		c.AddTable(t) // makes the delete valid if the table is already gone
		c.DelTable(t)
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network: remove nftables rules: %w", err)
	}
	return nil
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ifnameBytes pads an interface name to IFNAMSIZ, as the kernel stores it.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// matchIfname matches an exact interface name (`iifname "skiff0"`).
func matchIfname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(name)},
	}
}

// matchIfnamePrefix matches an interface-name wildcard (`iifname "vh-*"`):
// nft compiles it to a comparison of only the prefix's bytes.
func matchIfnamePrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

func matchL4Proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func matchNFProto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// ctStateEstablishedRelated is `ct state established,related`.
func ctStateEstablishedRelated() []expr.Any {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k}}
}

func counterVerdict(k expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: k}}
}
