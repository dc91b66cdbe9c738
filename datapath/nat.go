package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
)

// NATEntry is one entry of the SNAT table, the datapath's
// cilium_snat_v4_external. A NodePort connection to a backend on another
// node has two: the egress entry (Key.Flags [TupleOut], the connection as
// the client sent it; Xlate is the node's address and the allocated port
// its source becomes) and the ingress entry (Key.Flags [TupleIn], the
// backend's reply to that address and port; Xlate is the client's address
// and port its destination goes back to).
type NATEntry struct {
	Key   CTKey
	Xlate netip.AddrPort
	// Created is when the entry was made, in seconds of CLOCK_MONOTONIC.
	Created uint32
}

// String formats the entry like "cilium bpf nat list":
// "TCP OUT 192.0.2.50:40000 -> 10.1.2.40:8080 XLATE_SRC 10.255.1.11:40000 Created=1234".
func (e NATEntry) String() string {
	xlate := "XLATE_SRC"
	if e.Key.Flags == TupleIn {
		xlate = "XLATE_DST"
	}
	return fmt.Sprintf("%v %s %v Created=%d", e.Key, xlate, e.Xlate, e.Created)
}

func natEntryFrom(k lxcCtKey, v lxcNatEntry) NATEntry {
	return NATEntry{Key: ctKeyFrom(k), Xlate: netip.AddrPortFrom(addrFrom32(v.ToAddr), port16(v.ToPort)), Created: v.Created}
}

// NATMap is the SNAT table hoplab_snat_v4_external.
type NATMap struct {
	m *ebpf.Map
}

// Lookup returns the entry for k.
func (n *NATMap) Lookup(k CTKey) (NATEntry, error) {
	rk, err := k.raw()
	if err != nil {
		return NATEntry{}, fmt.Errorf("nat lookup: %w", err)
	}
	var v lxcNatEntry
	if err := n.m.Lookup(&rk, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return NATEntry{}, fmt.Errorf("nat lookup %v: %w", k, ErrNotFound)
		}
		return NATEntry{}, fmt.Errorf("nat lookup %v: %w", k, err)
	}
	return natEntryFrom(rk, v), nil
}

// Put writes e under e.Key (used to seed the table, e.g. with a taken
// port in tests).
func (n *NATMap) Put(e NATEntry) error {
	rk, err := e.Key.raw()
	if err != nil {
		return fmt.Errorf("nat put: %w", err)
	}
	a, err := be32(e.Xlate.Addr())
	if err != nil {
		return fmt.Errorf("nat put %v: %w", e.Key, err)
	}
	v := lxcNatEntry{Created: e.Created, ToAddr: a, ToPort: be16(e.Xlate.Port())}
	if err := n.m.Put(&rk, &v); err != nil {
		return fmt.Errorf("nat put %v: %w", e.Key, err)
	}
	return nil
}

// Entries returns every entry, egress entries first, each group ordered
// by source and destination.
func (n *NATMap) Entries() ([]NATEntry, error) {
	var (
		out []NATEntry
		k   lxcCtKey
		v   lxcNatEntry
	)
	it := n.m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, natEntryFrom(k, v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("nat dump: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		if a.Flags != b.Flags {
			return a.Flags < b.Flags
		}
		if c := a.Src.Compare(b.Src); c != 0 {
			return c < 0
		}
		if c := a.Dst.Compare(b.Dst); c != 0 {
			return c < 0
		}
		return a.Proto < b.Proto
	})
	return out, nil
}

// Flush removes every entry.
func (n *NATMap) Flush() error {
	if err := deleteMatching[lxcCtKey, lxcNatEntry](n.m, nil); err != nil {
		return fmt.Errorf("nat flush: %w", err)
	}
	return nil
}
