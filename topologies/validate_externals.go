package topologies

import "net/netip"

// externals checks the hosts outside the cluster: unique names (shared
// with the router, nodes and pods), unique addresses outside every
// PodCIDR, uplink and service VIP, and not the gateway (.1) of their /24,
// which is the router's.
func (v *validator) externals(claim func(string, Pos, string) bool) {
	t := v.t
	ips := map[netip.Addr]*External{}
	for _, e := range t.Externals {
		claim(e.Name, e.Pos, "external")
		if !e.IP.IsValid() {
			continue
		}
		if prev := ips[e.IP]; prev != nil {
			v.failAt(e.Pos, "external %s: IP %s is already used by external %s (line %d)", e.Name, e.IP, prev.Name, prev.Pos.Line)
			continue
		}
		ips[e.IP] = e
		if gw := externalGateway(e.IP); e.IP == gw || e.IP == lastAddr(netip.PrefixFrom(e.IP, 24)) || e.IP == gw.Prev() {
			v.failAt(e.Pos, "external %s: IP %s is the network, broadcast or router (.1) address of %s", e.Name, e.IP, netip.PrefixFrom(e.IP, 24).Masked())
		}
		for _, n := range t.Nodes {
			if n.PodCIDR.IsValid() && n.PodCIDR.Overlaps(netip.PrefixFrom(e.IP, 24)) {
				v.failAt(e.Pos, "external %s: its network %s overlaps node %s's podCIDR %s", e.Name, netip.PrefixFrom(e.IP, 24).Masked(), n.Name, n.PodCIDR)
			}
			if n.Uplink.Address.IsValid() && n.Uplink.Address.Masked().Overlaps(netip.PrefixFrom(e.IP, 24)) {
				v.failAt(e.Pos, "external %s: its network %s overlaps node %s's uplink %s", e.Name, netip.PrefixFrom(e.IP, 24).Masked(), n.Name, n.Uplink.Address.Masked())
			}
		}
		for _, s := range t.Services {
			if s.VIP == e.IP {
				v.failAt(e.Pos, "external %s: IP %s is service %s's VIP", e.Name, e.IP, s.Name)
			}
		}
	}
}

// externalGateway is the router's address toward an external host: the
// first address of the host's /24.
func externalGateway(ip netip.Addr) netip.Addr {
	return netip.PrefixFrom(ip, 24).Masked().Addr().Next()
}
