package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cilium/ebpf"
)

// TupleFlags is the direction part of a CT tuple (Cilium's TUPLE_F_*).
type TupleFlags uint8

// Tuple flags.
const (
	TupleOut     TupleFlags = 0 // created at from-container (egress)
	TupleIn      TupleFlags = 1 // created at to-container (ingress)
	TupleRelated TupleFlags = 2
	TupleService TupleFlags = 4 // service entry, keyed by the pre-DNAT tuple
)

// String returns the direction as "cilium bpf ct list" prints it.
func (f TupleFlags) String() string {
	switch f {
	case TupleOut:
		return "OUT"
	case TupleIn:
		return "IN"
	case TupleRelated:
		return "RELATED"
	case TupleService:
		return "SVC"
	}
	return fmt.Sprintf("flags(%d)", uint8(f))
}

// CTFlags are the state flags of a CT entry.
type CTFlags uint16

// CT entry flags, as in bpf/lib/conntrack.h.
const (
	CTRxClosing  CTFlags = 0x1
	CTTxClosing  CTFlags = 0x2
	CTSeenNonSyn CTFlags = 0x4
	CTService    CTFlags = 0x8
	CTNodePort   CTFlags = 0x10 // a NodePort connection, keyed by its post-DNAT tuple
)

// String lists the set flags, e.g. "[ RxClosing SeenNonSyn ]".
func (f CTFlags) String() string {
	var parts []string
	for _, n := range []struct {
		f    CTFlags
		name string
	}{{CTRxClosing, "RxClosing"}, {CTTxClosing, "TxClosing"}, {CTSeenNonSyn, "SeenNonSyn"}, {CTService, "Service"}, {CTNodePort, "NodePort"}} {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	return "[ " + strings.Join(parts, " ") + " ]"
}

// CTKey is a connection-tracking tuple: the packet's addresses and ports in
// the direction the entry was created for. ICMP echo keys carry the echo
// identifier as source port (requests) or destination port (replies).
type CTKey struct {
	Src   netip.AddrPort
	Dst   netip.AddrPort
	Proto Proto
	Flags TupleFlags
}

// String returns "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080".
func (k CTKey) String() string {
	return fmt.Sprintf("%v %v %v -> %v", k.Proto, k.Flags, k.Src, k.Dst)
}

func (k CTKey) raw() (lxcCtKey, error) {
	s, err := be32(k.Src.Addr())
	if err != nil {
		return lxcCtKey{}, err
	}
	d, err := be32(k.Dst.Addr())
	if err != nil {
		return lxcCtKey{}, err
	}
	return lxcCtKey{Daddr: d, Saddr: s, Dport: be16(k.Dst.Port()), Sport: be16(k.Src.Port()),
		Nexthdr: uint8(k.Proto), Flags: uint8(k.Flags)}, nil
}

func ctKeyFrom(r lxcCtKey) CTKey {
	return CTKey{
		Src:   netip.AddrPortFrom(addrFrom32(r.Saddr), port16(r.Sport)),
		Dst:   netip.AddrPortFrom(addrFrom32(r.Daddr), port16(r.Dport)),
		Proto: Proto(r.Nexthdr),
		Flags: TupleFlags(r.Flags),
	}
}

// CTEntry is a connection-tracking entry. Tx counts the tuple's direction,
// Rx the replies.
type CTEntry struct {
	Key         CTKey
	Lifetime    uint32 // expiry in seconds of CLOCK_MONOTONIC
	Created     uint32 // seconds of CLOCK_MONOTONIC
	TxPackets   uint64
	TxBytes     uint64
	RxPackets   uint64
	RxBytes     uint64
	TxFlagsSeen uint8 // TCP flags seen in the tuple's direction
	RxFlagsSeen uint8
	Flags       CTFlags
	RevNAT      uint16 // rev-NAT index of the service, 0 if none
	BackendID   uint32
	SrcIdentity Identity
	// ProxyPort is the L7 proxy port of a flow its policy redirects
	// there (its packets are marked for the proxy), 0 otherwise.
	ProxyPort uint16
	// Backend is a service entry's pinned backend (a copy of BackendID's
	// address and port, which its established packets go to).
	Backend netip.AddrPort
}

// String formats the entry like "cilium bpf ct list global" (with
// " ProxyPort=N" for a flow redirected to the L7 proxy).
func (e CTEntry) String() string {
	s := fmt.Sprintf("%v expires=%d TxPackets=%d TxBytes=%d TxFlagsSeen=%#02x RxPackets=%d RxBytes=%d RxFlagsSeen=%#02x Flags=%#04x %v RevNAT=%d SourceSecurityID=%d BackendID=%d",
		e.Key, e.Lifetime, e.TxPackets, e.TxBytes, e.TxFlagsSeen, e.RxPackets, e.RxBytes, e.RxFlagsSeen,
		uint16(e.Flags), e.Flags, e.RevNAT, e.SrcIdentity, e.BackendID)
	if e.ProxyPort != 0 {
		s += fmt.Sprintf(" ProxyPort=%d", e.ProxyPort)
	}
	return s
}

func (e CTEntry) raw() lxcCtEntry {
	var backendAddr uint32
	if e.Backend.IsValid() {
		backendAddr, _ = be32(e.Backend.Addr())
	}
	return lxcCtEntry{
		RxPackets: e.RxPackets, RxBytes: e.RxBytes, TxPackets: e.TxPackets, TxBytes: e.TxBytes,
		Lifetime: e.Lifetime, Flags: uint16(e.Flags), RevNatIndex: e.RevNAT, BackendId: e.BackendID,
		SrcSecId: uint32(e.SrcIdentity), TxFlagsSeen: e.TxFlagsSeen, RxFlagsSeen: e.RxFlagsSeen,
		ProxyPort: be16(e.ProxyPort), Created: e.Created,
		BackendAddr: backendAddr, BackendPort: be16(e.Backend.Port()),
	}
}

func ctEntryFrom(k lxcCtKey, v lxcCtEntry) CTEntry {
	return CTEntry{
		Key: ctKeyFrom(k), Lifetime: v.Lifetime, Created: v.Created,
		TxPackets: v.TxPackets, TxBytes: v.TxBytes, RxPackets: v.RxPackets, RxBytes: v.RxBytes,
		TxFlagsSeen: v.TxFlagsSeen, RxFlagsSeen: v.RxFlagsSeen, Flags: CTFlags(v.Flags),
		RevNAT: v.RevNatIndex, BackendID: v.BackendId, SrcIdentity: Identity(v.SrcSecId),
		ProxyPort: port16(v.ProxyPort),
		Backend:   backendFrom(v.BackendAddr, v.BackendPort),
	}
}

// backendFrom is a service entry's backend, the zero AddrPort if none.
func backendFrom(addr uint32, port uint16) netip.AddrPort {
	if addr == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addrFrom32(addr), port16(port))
}

// CTMap is the connection-tracking table hoplab_ct4_global.
type CTMap struct {
	m *ebpf.Map
}

// Lookup returns the entry for k.
func (c *CTMap) Lookup(k CTKey) (CTEntry, error) {
	rk, err := k.raw()
	if err != nil {
		return CTEntry{}, fmt.Errorf("ct lookup: %w", err)
	}
	var v lxcCtEntry
	if err := c.m.Lookup(&rk, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return CTEntry{}, fmt.Errorf("ct lookup %v: %w", k, ErrNotFound)
		}
		return CTEntry{}, fmt.Errorf("ct lookup %v: %w", k, err)
	}
	return ctEntryFrom(rk, v), nil
}

// Put writes e under e.Key (used to seed tables, e.g. in benchmarks).
func (c *CTMap) Put(e CTEntry) error {
	rk, err := e.Key.raw()
	if err != nil {
		return fmt.Errorf("ct put: %w", err)
	}
	v := e.raw()
	if err := c.m.Put(&rk, &v); err != nil {
		return fmt.Errorf("ct put %v: %w", e.Key, err)
	}
	return nil
}

// Delete removes the entry for k.
func (c *CTMap) Delete(k CTKey) error {
	rk, err := k.raw()
	if err != nil {
		return fmt.Errorf("ct delete: %w", err)
	}
	if err := c.m.Delete(&rk); err != nil {
		return fmt.Errorf("ct delete %v: %w", k, err)
	}
	return nil
}

// Entries returns every entry of the table.
func (c *CTMap) Entries() ([]CTEntry, error) {
	var (
		out []CTEntry
		k   lxcCtKey
		v   lxcCtEntry
	)
	it := c.m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, ctEntryFrom(k, v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("ct dump: %w", err)
	}
	return out, nil
}

// Count returns how many entries the table holds and how many it can
// hold, without keeping them (a full table's dump is tens of MB).
func (c *CTMap) Count() (n, capacity int, err error) {
	var (
		k lxcCtKey
		v lxcCtEntry
	)
	it := c.m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		return 0, 0, fmt.Errorf("ct count: %w", err)
	}
	return n, int(c.m.MaxEntries()), nil
}

// deletePinnedTo deletes the service entries that pin backend id (they
// keep a copy of its address and port).
func (c *CTMap) deletePinnedTo(id uint32) error {
	err := deleteMatching(c.m, func(k *lxcCtKey, v *lxcCtEntry) bool {
		return TupleFlags(k.Flags) == TupleService && v.BackendId == id
	})
	if err != nil {
		return fmt.Errorf("ct entries pinned to backend %d: %w", id, err)
	}
	return nil
}

// Flush removes every entry.
func (c *CTMap) Flush() error {
	if err := deleteMatching[lxcCtKey, lxcCtEntry](c.m, nil); err != nil {
		return fmt.Errorf("ct flush: %w", err)
	}
	return nil
}
