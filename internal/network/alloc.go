package network

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ErrNoAddress is returned by Attach when every address of the subnet is in
// use.
var ErrNoAddress = errors.New("network: no free address in subnet")

// allocator hands out host addresses of an IPv4 subnet. The network address,
// the gateway (first address) and the broadcast address are never handed
// out. Allocation is next-fit: it continues after the last address handed
// out and wraps around, so a just-released address is the last to be reused
// (stale ARP entries and late packets for a stopped dyno don't reach its
// successor). It is not safe for concurrent use; Manager serialises it.
type allocator struct {
	base  uint32            // network address
	first uint32            // lowest allocatable offset
	last  uint32            // highest allocatable offset
	next  uint32            // next offset to try
	used  map[uint32]string // offset -> endpoint id
}

func newAllocator(subnet netip.Prefix) *allocator {
	subnet = subnet.Masked()
	size := uint32(1) << (32 - subnet.Bits())
	return &allocator{
		base:  addrToU32(subnet.Addr()),
		first: 2,
		last:  size - 2,
		next:  2,
		used:  map[uint32]string{},
	}
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32ToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// offset returns a's offset in the subnet, and whether it is allocatable.
func (a *allocator) offset(addr netip.Addr) (uint32, bool) {
	if !addr.Is4() {
		return 0, false
	}
	off := addrToU32(addr) - a.base
	return off, off >= a.first && off <= a.last
}

// take hands out a free address for id.
func (a *allocator) take(id string) (netip.Addr, error) {
	n := a.last - a.first + 1
	for i := uint32(0); i < n; i++ {
		off := a.next
		a.next++
		if a.next > a.last {
			a.next = a.first
		}
		if _, busy := a.used[off]; !busy {
			a.used[off] = id
			return u32ToAddr(a.base + off), nil
		}
	}
	return netip.Addr{}, ErrNoAddress
}

// reserve marks addr as used by id (recovery of existing endpoints). It
// reports false if addr is outside the allocatable range or already used.
// The next-fit cursor moves past the highest reserved address.
func (a *allocator) reserve(addr netip.Addr, id string) bool {
	off, ok := a.offset(addr)
	if !ok {
		return false
	}
	if _, busy := a.used[off]; busy {
		return false
	}
	a.used[off] = id
	if off >= a.next {
		a.next = off + 1
		if a.next > a.last {
			a.next = a.first
		}
	}
	return true
}

// release frees addr if id holds it.
func (a *allocator) release(addr netip.Addr, id string) {
	if off, ok := a.offset(addr); ok && a.used[off] == id {
		delete(a.used, off)
	}
}
