package datapath

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// IPCacheEntry is what the ipcache knows about a prefix.
type IPCacheEntry struct {
	// Identity is the security identity of addresses in the prefix.
	Identity Identity
	// TunnelEndpoint is the node hosting the prefix in tunnel mode.
	TunnelEndpoint netip.Addr
}

// IPCache is hoplab_ipcache, an LPM trie: prefix -> identity. Addresses
// without an entry are WORLD.
type IPCache struct {
	m *ebpf.Map
}

func ipcacheKey(p netip.Prefix) (lxcIpcacheKey, error) {
	a, err := be32(p.Masked().Addr())
	if err != nil {
		return lxcIpcacheKey{}, err
	}
	return lxcIpcacheKey{Prefixlen: uint32(p.Bits()), Ip: a}, nil
}

// Upsert maps prefix to e.
func (c *IPCache) Upsert(prefix netip.Prefix, e IPCacheEntry) error {
	k, err := ipcacheKey(prefix)
	if err != nil {
		return fmt.Errorf("ipcache upsert %v: %w", prefix, err)
	}
	v := lxcRemoteEndpointInfo{SecIdentity: uint32(e.Identity)}
	if e.TunnelEndpoint.IsValid() {
		if v.TunnelEndpoint, err = be32(e.TunnelEndpoint); err != nil {
			return fmt.Errorf("ipcache upsert %v: %w", prefix, err)
		}
	}
	if err := c.m.Put(&k, &v); err != nil {
		return fmt.Errorf("ipcache upsert %v: %w", prefix, err)
	}
	return nil
}

// Lookup returns the entry of the longest prefix containing addr.
func (c *IPCache) Lookup(addr netip.Addr) (IPCacheEntry, error) {
	k, err := ipcacheKey(netip.PrefixFrom(addr, 32))
	if err != nil {
		return IPCacheEntry{}, fmt.Errorf("ipcache lookup %v: %w", addr, err)
	}
	var v lxcRemoteEndpointInfo
	if err := c.m.Lookup(&k, &v); err != nil {
		return IPCacheEntry{}, fmt.Errorf("ipcache lookup %v: %w", addr, ErrNotFound)
	}
	e := IPCacheEntry{Identity: Identity(v.SecIdentity)}
	if v.TunnelEndpoint != 0 {
		e.TunnelEndpoint = addrFrom32(v.TunnelEndpoint)
	}
	return e, nil
}

// Delete removes prefix.
func (c *IPCache) Delete(prefix netip.Prefix) error {
	k, err := ipcacheKey(prefix)
	if err != nil {
		return fmt.Errorf("ipcache delete %v: %w", prefix, err)
	}
	if err := c.m.Delete(&k); err != nil {
		return fmt.Errorf("ipcache delete %v: %w", prefix, err)
	}
	return nil
}
