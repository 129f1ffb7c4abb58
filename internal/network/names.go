package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

const (
	// ifNameMax is the longest Linux interface name (IFNAMSIZ-1).
	ifNameMax = 15
	// maxVethPrefix keeps at least 8 hex digits (32 bits) of hash in a host
	// veth name.
	maxVethPrefix = ifNameMax - 8
	// maxIDLen bounds endpoint IDs so that "<prefix>-<id>" is a valid file
	// name with room to spare.
	maxIDLen = 128
	// maxPrefixLen bounds Config.Prefix.
	maxPrefixLen = 32

	// DefaultVethPrefix is the host-side veth name prefix when
	// Config.VethPrefix is empty.
	DefaultVethPrefix = "vh-"
	// DefaultNetnsDir is where named network namespaces are bind-mounted when
	// Config.NetnsDir is empty: the directory `ip netns` uses, so operators
	// can inspect a dyno with `ip netns exec`.
	DefaultNetnsDir = "/run/netns"
	// PeerName is the name of the dyno-side interface inside each netns.
	PeerName = "eth0"
)

// normalize checks cfg and fills defaults. It returns the config to use.
func (cfg Config) normalize() (Config, error) {
	if err := validIfName(cfg.Bridge); err != nil {
		return cfg, fmt.Errorf("network: bridge name: %w", err)
	}
	if !cfg.Subnet.IsValid() || !cfg.Subnet.Addr().Is4() {
		return cfg, fmt.Errorf("network: subnet %v: must be an IPv4 prefix", cfg.Subnet)
	}
	if b := cfg.Subnet.Bits(); b < 8 || b > 29 {
		return cfg, fmt.Errorf("network: subnet %v: prefix length must be between /8 and /29", cfg.Subnet)
	}
	cfg.Subnet = cfg.Subnet.Masked()
	if err := validPrefix(cfg.Prefix); err != nil {
		return cfg, err
	}
	if cfg.VethPrefix == "" {
		cfg.VethPrefix = DefaultVethPrefix
	}
	if len(cfg.VethPrefix) > maxVethPrefix {
		return cfg, fmt.Errorf("network: veth prefix %q: at most %d characters", cfg.VethPrefix, maxVethPrefix)
	}
	if err := validIfName(cfg.VethPrefix); err != nil {
		return cfg, fmt.Errorf("network: veth prefix: %w", err)
	}
	if strings.HasPrefix(cfg.Bridge, cfg.VethPrefix) {
		return cfg, fmt.Errorf("network: bridge %q must not start with the veth prefix %q", cfg.Bridge, cfg.VethPrefix)
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = DefaultNetnsDir
	}
	if !filepath.IsAbs(cfg.NetnsDir) {
		return cfg, fmt.Errorf("network: netns dir %q must be absolute", cfg.NetnsDir)
	}
	cfg.NetnsDir = filepath.Clean(cfg.NetnsDir)
	seen := map[uint16]bool{}
	var ports []uint16
	for _, p := range cfg.AllowHostPorts {
		if p == 0 {
			return cfg, errors.New("network: AllowHostPorts: port 0")
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	cfg.AllowHostPorts = ports
	return cfg, nil
}

// validIfName reports whether name is usable as a Linux interface name.
func validIfName(name string) error {
	if name == "" || len(name) > ifNameMax {
		return fmt.Errorf("%q: must be 1 to %d characters", name, ifNameMax)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q: not a valid interface name", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

// validPrefix checks Config.Prefix: a lower-case letter, then lower-case
// letters, digits or '_'. No '-', so "<prefix>-<id>" splits unambiguously and
// one manager never mistakes another's namespaces for its own.
func validPrefix(p string) error {
	if p == "" || len(p) > maxPrefixLen {
		return fmt.Errorf("network: prefix %q: must be 1 to %d characters", p, maxPrefixLen)
	}
	for i, c := range p {
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')
		if !ok {
			return fmt.Errorf("network: prefix %q: a lower-case letter followed by lower-case letters, digits or '_'", p)
		}
	}
	return nil
}

// ValidID reports whether id can name an endpoint: 1 to 128 characters from
// letters, digits, '.', '_' and '-', starting with a letter or digit (dyno
// names such as "web.1" or "run.42" qualify).
func ValidID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("network: endpoint id %q: must be 1 to %d characters", id, maxIDLen)
	}
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("network: endpoint id %q: letters, digits, '.', '_' and '-', starting with a letter or digit", id)
		}
	}
	return nil
}

// netnsName is the file name of the endpoint's namespace under NetnsDir.
func (cfg Config) netnsName(id string) string { return cfg.Prefix + "-" + id }

// idFromNetnsName is the inverse of netnsName; ok is false for names that
// are not ours.
func (cfg Config) idFromNetnsName(name string) (id string, ok bool) {
	id, ok = strings.CutPrefix(name, cfg.Prefix+"-")
	if !ok || ValidID(id) != nil {
		return "", false
	}
	return id, true
}

// vethName is the host-side veth name for id: VethPrefix followed by hex
// digits of SHA-256(prefix, id), filling the 15 characters Linux allows. It
// is deterministic, so it can be recomputed after a restart, and it keeps the
// VethPrefix that the nftables wildcard rule matches on.
func (cfg Config) vethName(id string) string {
	sum := sha256.Sum256([]byte(cfg.Prefix + "\x00" + id))
	return cfg.VethPrefix + hex.EncodeToString(sum[:])[:ifNameMax-len(cfg.VethPrefix)]
}

// carrierName is the dummy port that keeps the bridge's carrier on:
// VethPrefix + "carrier" (not a hash, so it never clashes with a veth).
func (cfg Config) carrierName() string { return cfg.VethPrefix + "carrier" }

// bridgeMAC is a fixed, locally administered unicast MAC for the bridge. A
// bridge without an explicitly set address takes the lowest MAC among its
// ports, so it would change as dynos come and go and leave stale ARP entries
// for the gateway inside every dyno.
func bridgeMAC(bridge string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("skiff-bridge\x00" + bridge))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

// gateway is the bridge's address: the first address of the subnet.
func gateway(subnet netip.Prefix) netip.Addr { return subnet.Addr().Next() }
