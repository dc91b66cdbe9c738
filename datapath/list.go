package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
)

// List returns every service with its backends, ordered by VIP, port and
// protocol.
func (s *ServiceMap) List() ([]Service, error) {
	var (
		k    lxcLb4Key
		v    lxcLb4Service
		keys []lxcLb4Key
	)
	it := s.m.Iterate()
	for it.Next(&k, &v) {
		if k.BackendSlot == 0 {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []Service
	for _, k := range keys {
		svc, err := s.Lookup(addrFrom32(k.Address), port16(k.Dport), Proto(k.Proto))
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].VIP.Compare(out[j].VIP); c != 0 {
			return c < 0
		}
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out, nil
}

// String returns e.g. "10.224.1.1:80/TCP (id 1) -> [1=10.1.2.40:8080]".
func (s Service) String() string {
	return fmt.Sprintf("%v/%v (id %d) -> %v", netip.AddrPortFrom(s.VIP, s.Port), s.Proto, s.ID, s.Backends)
}

// List returns every local endpoint, ordered by IP.
func (e *EndpointMap) List() ([]Endpoint, error) {
	var (
		k   lxcEndpointKey
		v   lxcEndpointInfo
		out []Endpoint
	)
	it := e.m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Endpoint{
			IP: addrFrom32(k.Ip), ID: v.EpId, IfIndex: int(v.Ifindex),
			LXCMAC:   net.HardwareAddr(append([]byte(nil), v.LxcMac[:]...)),
			PodMAC:   net.HardwareAddr(append([]byte(nil), v.PodMac[:]...)),
			Identity: Identity(v.SecIdentity), EnforceIngress: v.Flags&1 != 0, EnforceEgress: v.Flags&2 != 0,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out, nil
}

// String returns e.g. "10.1.1.10 ep 1 identity 1001 ifindex 11 ingress+egress".
func (e Endpoint) String() string {
	enf := "none"
	switch {
	case e.EnforceIngress && e.EnforceEgress:
		enf = "ingress+egress"
	case e.EnforceIngress:
		enf = "ingress"
	case e.EnforceEgress:
		enf = "egress"
	}
	return fmt.Sprintf("%v ep %d identity %d ifindex %d lxc %v pod %v enforce %s", e.IP, e.ID, e.Identity, e.IfIndex, e.LXCMAC, e.PodMAC, enf)
}

// PolicyRule is one policy map entry.
type PolicyRule struct {
	Key   PolicyKey
	Entry PolicyEntry
}

// Entries returns every policy entry, ordered by endpoint, direction,
// identity, port and protocol.
func (p *PolicyMap) Entries() ([]PolicyRule, error) {
	var (
		k   lxcPolicyKey
		v   lxcPolicyEntry
		out []PolicyRule
	)
	it := p.m.Iterate()
	for it.Next(&k, &v) {
		dir := Ingress
		if k.Egress != 0 {
			dir = Egress
		}
		out = append(out, PolicyRule{
			Key:   PolicyKey{Endpoint: k.EpId, Direction: dir, Identity: Identity(k.SecLabel), Port: port16(k.Dport), Proto: Proto(k.Protocol)},
			Entry: PolicyEntry{Deny: v.Deny != 0, ProxyPort: proxyPortOf(&v), Packets: v.Packets, Bytes: v.Bytes},
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list policy: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Less(out[j].Key) })
	return out, nil
}

// IPCacheRecord is one ipcache entry.
type IPCacheRecord struct {
	Prefix netip.Prefix
	IPCacheEntry
}

// Entries returns every ipcache entry, ordered by prefix.
func (c *IPCache) Entries() ([]IPCacheRecord, error) {
	var (
		k   lxcIpcacheKey
		v   lxcRemoteEndpointInfo
		out []IPCacheRecord
	)
	it := c.m.Iterate()
	for it.Next(&k, &v) {
		r := IPCacheRecord{Prefix: netip.PrefixFrom(addrFrom32(k.Ip), int(k.Prefixlen)), IPCacheEntry: IPCacheEntry{Identity: Identity(v.SecIdentity)}}
		if v.TunnelEndpoint != 0 {
			r.TunnelEndpoint = addrFrom32(v.TunnelEndpoint)
		}
		out = append(out, r)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list ipcache: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Prefix.Addr().Compare(out[j].Prefix.Addr()); c != 0 {
			return c < 0
		}
		return out[i].Prefix.Bits() < out[j].Prefix.Bits()
	})
	return out, nil
}
