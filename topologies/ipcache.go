package topologies

import (
	"net/netip"
	"sort"
)

// IPCacheEntry maps a prefix to the identity the datapath resolves for it
// on one node, as Cilium's ipcache does.
type IPCacheEntry struct {
	// Prefix is a /32 for pods and node addresses, 0.0.0.0/0 for world.
	Prefix netip.Prefix `json:"prefix"`
	// Identity is the prefix's identity as seen from the node.
	Identity Identity `json:"identity"`
	// Node is the node the address lives on (empty for world).
	Node string `json:"node,omitempty"`
	// TunnelEndpoint is that node's uplink address when it is another
	// node (the VXLAN destination in tunnel mode); invalid otherwise.
	TunnelEndpoint netip.Addr `json:"tunnel_endpoint,omitzero"`
}

// IPCache returns the ipcache of the named node, sorted by prefix: every
// pod's /32 with its identity; every node's uplink address and router IP
// as host (on that node itself) or remote-node (elsewhere); 0.0.0.0/0 as
// world. Trace resolves identities the same way.
func (t *Topology) IPCache(node string) []IPCacheEntry {
	var out []IPCacheEntry
	tep := func(n string) netip.Addr {
		if n == node {
			return netip.Addr{}
		}
		return t.nodes[n].Uplink.Address.Addr()
	}
	for _, p := range t.Pods {
		out = append(out, IPCacheEntry{Prefix: netip.PrefixFrom(p.IP, 32), Identity: p.Identity, Node: p.Node, TunnelEndpoint: tep(p.Node)})
	}
	for _, n := range t.Nodes {
		id := IdentityRemoteNode
		if n.Name == node {
			id = IdentityHost
		}
		for _, a := range []netip.Addr{n.Uplink.Address.Addr(), n.RouterIP} {
			out = append(out, IPCacheEntry{Prefix: netip.PrefixFrom(a, 32), Identity: id, Node: n.Name, TunnelEndpoint: tep(n.Name)})
		}
	}
	out = append(out, IPCacheEntry{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Identity: IdentityWorld})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Prefix, out[j].Prefix
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c < 0
		}
		return a.Bits() < b.Bits()
	})
	return out
}
