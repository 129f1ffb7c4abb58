package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestConfigNormalize(t *testing.T) {
	good := Config{Bridge: "skiff0", Subnet: netip.MustParsePrefix("10.213.0.7/16"), Prefix: "skiff"}
	cfg, err := good.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Subnet.String() != "10.213.0.0/16" || cfg.VethPrefix != DefaultVethPrefix || cfg.NetnsDir != DefaultNetnsDir {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	cfg, err = Config{Bridge: "b", Subnet: good.Subnet, Prefix: "p", AllowHostPorts: []uint16{80, 80, 443}}.normalize()
	if err != nil || len(cfg.AllowHostPorts) != 2 {
		t.Errorf("ports not deduplicated: %v %v", cfg.AllowHostPorts, err)
	}

	bad := map[string]Config{
		"long bridge":       {Bridge: "abcdefghijklmnop", Subnet: good.Subnet, Prefix: "p"},
		"empty bridge":      {Subnet: good.Subnet, Prefix: "p"},
		"slash bridge":      {Bridge: "a/b", Subnet: good.Subnet, Prefix: "p"},
		"ipv6 subnet":       {Bridge: "b", Subnet: netip.MustParsePrefix("fd00::/64"), Prefix: "p"},
		"no subnet":         {Bridge: "b", Prefix: "p"},
		"/30 subnet":        {Bridge: "b", Subnet: netip.MustParsePrefix("10.213.0.0/30"), Prefix: "p"},
		"dash prefix":       {Bridge: "b", Subnet: good.Subnet, Prefix: "a-b"},
		"upper prefix":      {Bridge: "b", Subnet: good.Subnet, Prefix: "Skiff"},
		"digit prefix":      {Bridge: "b", Subnet: good.Subnet, Prefix: "1a"},
		"empty prefix":      {Bridge: "b", Subnet: good.Subnet},
		"long veth prefix":  {Bridge: "b", Subnet: good.Subnet, Prefix: "p", VethPrefix: "abcdefgh"},
		"bridge like veth":  {Bridge: "vh-br", Subnet: good.Subnet, Prefix: "p"},
		"relative netnsdir": {Bridge: "b", Subnet: good.Subnet, Prefix: "p", NetnsDir: "run/netns"},
		"port 0":            {Bridge: "b", Subnet: good.Subnet, Prefix: "p", AllowHostPorts: []uint16{0}},
	}
	for name, c := range bad {
		if _, err := c.normalize(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"web.1", "run.42", "a", "0", "worker_2-x", strings.Repeat("a", 128)} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", ".web", "-x", "a/b", "a b", "é", strings.Repeat("a", 129)} {
		if ValidID(id) == nil {
			t.Errorf("ValidID(%q) accepted", id)
		}
	}
}

func TestNames(t *testing.T) {
	cfg, err := Config{Bridge: "skiff0", Subnet: netip.MustParsePrefix("10.213.0.0/16"), Prefix: "skiff"}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.vethName("web.1")
	if len(v) != 15 || !strings.HasPrefix(v, "vh-") || v != cfg.vethName("web.1") || v == cfg.vethName("web.2") {
		t.Errorf("vethName: %q", v)
	}
	other := cfg
	other.Prefix = "other"
	if other.vethName("web.1") == v {
		t.Error("vethName ignores the prefix")
	}
	if err := validIfName(v); err != nil {
		t.Error(err)
	}
	if got := cfg.netnsName("web.1"); got != "skiff-web.1" {
		t.Errorf("netnsName = %q", got)
	}
	for name, want := range map[string]string{"skiff-web.1": "web.1", "skiff-a-b": "a-b", "skiffx-web.1": "", "skiff-": "", "other-web.1": "", "skiff-../x": ""} {
		id, ok := cfg.idFromNetnsName(name)
		if id != want || ok != (want != "") {
			t.Errorf("idFromNetnsName(%q) = %q, %v", name, id, ok)
		}
	}
	mac := bridgeMAC("skiff0")
	if mac[0]&1 != 0 || mac[0]&2 == 0 || mac.String() != bridgeMAC("skiff0").String() {
		t.Errorf("bridgeMAC = %s: want a stable, unicast, locally administered MAC", mac)
	}
	if g := gateway(cfg.Subnet); g.String() != "10.213.0.1" {
		t.Errorf("gateway = %s", g)
	}
}

func TestAllocator(t *testing.T) {
	a := newAllocator(netip.MustParsePrefix("10.213.9.0/29")) // .0 net, .1 gw, .2-.6 hosts, .7 broadcast
	var got []string
	for i := range 5 {
		addr, err := a.take(string(rune('a' + i)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, addr.String())
	}
	if want := "10.213.9.2 10.213.9.3 10.213.9.4 10.213.9.5 10.213.9.6"; strings.Join(got, " ") != want {
		t.Errorf("took %v, want %s", got, want)
	}
	if _, err := a.take("f"); !errors.Is(err, ErrNoAddress) {
		t.Errorf("exhausted subnet: err = %v", err)
	}
	a.release(netip.MustParseAddr("10.213.9.4"), "x") // not the holder: no effect
	if _, err := a.take("f"); err == nil {
		t.Error("release by a non-holder freed the address")
	}
	a.release(netip.MustParseAddr("10.213.9.4"), "c")
	a.release(netip.MustParseAddr("10.213.9.3"), "b")
	if addr, _ := a.take("g"); addr.String() != "10.213.9.3" {
		// Next-fit wrapped around to the lowest free address.
		t.Errorf("after wrap took %s", addr)
	}

	b := newAllocator(netip.MustParsePrefix("10.213.9.0/24"))
	for _, s := range []string{"10.213.9.0", "10.213.9.1", "10.213.9.255", "10.213.10.5", "::1"} {
		if b.reserve(netip.MustParseAddr(s), "x") {
			t.Errorf("reserved %s", s)
		}
	}
	if !b.reserve(netip.MustParseAddr("10.213.9.40"), "x") || b.reserve(netip.MustParseAddr("10.213.9.40"), "y") {
		t.Error("reserve of a free / used address")
	}
	if addr, _ := b.take("z"); addr.String() != "10.213.9.41" {
		t.Errorf("after recovery took %s, want the address after the highest recovered", addr)
	}
}
