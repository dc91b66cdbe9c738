package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// PolicyKey is one entry of an endpoint's policy. Zero Identity, Port or
// Proto are wildcards; the datapath looks up, in order, L3L4
// {identity, port, proto}, L4-only {0, port, proto}, L3-only {identity,
// 0, 0} and allow-all {0, 0, 0}. Use the constructors below.
type PolicyKey struct {
	Endpoint  uint16
	Direction Direction
	Identity  Identity
	Port      uint16
	Proto     Proto
}

// Less orders policy keys by endpoint, direction, identity, port and
// protocol: the order of listings.
func (k PolicyKey) Less(o PolicyKey) bool {
	switch {
	case k.Endpoint != o.Endpoint:
		return k.Endpoint < o.Endpoint
	case k.Direction != o.Direction:
		return k.Direction < o.Direction
	case k.Identity != o.Identity:
		return k.Identity < o.Identity
	case k.Port != o.Port:
		return k.Port < o.Port
	}
	return k.Proto < o.Proto
}

// L3L4Key allows (or denies) identity on port/proto.
func L3L4Key(ep uint16, dir Direction, id Identity, port uint16, proto Proto) PolicyKey {
	return PolicyKey{Endpoint: ep, Direction: dir, Identity: id, Port: port, Proto: proto}
}

// L4OnlyKey matches any identity on port/proto.
func L4OnlyKey(ep uint16, dir Direction, port uint16, proto Proto) PolicyKey {
	return PolicyKey{Endpoint: ep, Direction: dir, Port: port, Proto: proto}
}

// L3OnlyKey matches identity on any port and protocol.
func L3OnlyKey(ep uint16, dir Direction, id Identity) PolicyKey {
	return PolicyKey{Endpoint: ep, Direction: dir, Identity: id}
}

// AllowAllKey matches everything in the direction.
func AllowAllKey(ep uint16, dir Direction) PolicyKey {
	return PolicyKey{Endpoint: ep, Direction: dir}
}

// String returns e.g. "ep 1 egress identity 2 TCP/8080".
func (k PolicyKey) String() string {
	return fmt.Sprintf("ep %d %v identity %d %v/%d", k.Endpoint, k.Direction, k.Identity, k.Proto, k.Port)
}

func (k PolicyKey) raw() (lxcPolicyKey, error) {
	var egress uint8
	switch k.Direction {
	case Egress:
		egress = 1
	case Ingress:
	default:
		return lxcPolicyKey{}, fmt.Errorf("policy key %v: direction: %w", k, ErrInvalid)
	}
	return lxcPolicyKey{SecLabel: uint32(k.Identity), EpId: k.Endpoint, Dport: be16(k.Port),
		Protocol: uint8(k.Proto), Egress: egress}, nil
}

// PolicyEntry is the verdict of a policy key and its hit counters.
type PolicyEntry struct {
	Deny bool
	// ProxyPort, when not 0, redirects the entry's flows to the node's L7
	// proxy listening on that port: the programs mark their packets
	// (MarkToProxy) and hand them to the stack, and the CT entry of the
	// flow keeps the port for the flow's later packets.
	ProxyPort uint16
	Packets   uint64
	Bytes     uint64
}

// PolicyMap is hoplab_policy, the policy of every local endpoint.
type PolicyMap struct {
	m *ebpf.Map
}

func (p *PolicyMap) put(k PolicyKey, deny bool, proxyPort uint16) error {
	rk, err := k.raw()
	if err != nil {
		return err
	}
	v := lxcPolicyEntry{}
	if deny {
		v.Deny = 1
	}
	setProxyPort(&v, proxyPort)
	if err := p.m.Put(&rk, &v); err != nil {
		return fmt.Errorf("policy put %v: %w", k, err)
	}
	return nil
}

// Allow inserts an allow entry.
func (p *PolicyMap) Allow(k PolicyKey) error { return p.put(k, false, 0) }

// AllowProxy inserts (or replaces) an allow entry that redirects the
// flows it admits to the L7 proxy on proxyPort; 0 is Allow. Replacing an
// entry zeroes its counters; tracked flows keep the proxy port their CT
// entry recorded.
func (p *PolicyMap) AllowProxy(k PolicyKey, proxyPort uint16) error {
	return p.put(k, false, proxyPort)
}

// Deny inserts a deny entry ("Policy deny" drops).
func (p *PolicyMap) Deny(k PolicyKey) error { return p.put(k, true, 0) }

// Lookup returns the entry for exactly k.
func (p *PolicyMap) Lookup(k PolicyKey) (PolicyEntry, error) {
	rk, err := k.raw()
	if err != nil {
		return PolicyEntry{}, err
	}
	var v lxcPolicyEntry
	if err := p.m.Lookup(&rk, &v); err != nil {
		return PolicyEntry{}, fmt.Errorf("policy lookup %v: %w", k, ErrNotFound)
	}
	return PolicyEntry{Deny: v.Deny != 0, ProxyPort: proxyPortOf(&v), Packets: v.Packets, Bytes: v.Bytes}, nil
}

// Delete removes the entry for k.
func (p *PolicyMap) Delete(k PolicyKey) error {
	rk, err := k.raw()
	if err != nil {
		return err
	}
	if err := p.m.Delete(&rk); err != nil {
		return fmt.Errorf("policy delete %v: %w", k, err)
	}
	return nil
}

// setProxyPort stores port in the entry's proxy_port (network order).
func setProxyPort(v *lxcPolicyEntry, port uint16) { v.ProxyPort = be16(port) }

// proxyPortOf reads the entry's proxy_port.
func proxyPortOf(v *lxcPolicyEntry) uint16 { return port16(v.ProxyPort) }
