package topologies

import (
	"fmt"
	"net/netip"
)

type validator struct {
	*decoder
	t *Topology
}

// lastAddr returns the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (v *validator) validate() {
	t := v.t
	t.nodes = map[string]*Node{}
	t.pods = map[string]*Pod{}
	t.podsByIP = map[netip.Addr]*Pod{}

	// Host names: the router, nodes and pods share one namespace, since
	// injection points and journeys name them without a kind.
	hosts := map[string]Pos{}
	// Validation runs only on a topology that decoded without errors, so
	// every name is non-empty, every ASN non-zero and every uplink address
	// and gateway valid (the decoder refuses the others).
	claim := func(name string, p Pos, kind string) bool {
		if name == ReservedHostName {
			v.failAt(p, "%s name %q is reserved: NODE:%s names a node's host namespace", kind, name, name)
			return false
		}
		if prev, dup := hosts[name]; dup {
			v.failAt(p, "%s name %q is already used at line %d", kind, name, prev.Line)
			return false
		}
		hosts[name] = p
		return true
	}
	claim(t.Router.Name, t.Router.Pos, "router")

	asns := map[uint32]string{}
	claimASN := func(asn uint32, owner string, p Pos) {
		if prev, dup := asns[asn]; dup {
			v.failAt(p, "%s: ASN %d is already used by %s (every speaker needs its own ASN for eBGP)", owner, asn, prev)
			return
		}
		asns[asn] = owner
	}
	claimASN(t.Router.ASN, "router "+t.Router.Name, t.Router.Pos)

	for _, n := range t.Nodes {
		if claim(n.Name, n.Pos, "node") {
			t.nodes[n.Name] = n
		}
		claimASN(n.ASN, "node "+n.Name, n.Pos)
		v.uplink(n)
	}
	v.overlaps()
	v.pods(claim)
	v.externals(claim)
	if len(t.Pods) > MaxEndpointID {
		v.failAt(Pos{1, 1}, "%d pods: at most %d are supported", len(t.Pods), MaxEndpointID)
	}
	v.services()
	v.policies()
	if len(v.errs) > 0 {
		return
	}
	t.allocateIdentities()
	t.derive()
}

func (v *validator) uplink(n *Node) {
	u := n.Uplink
	switch a := u.Address.Addr(); {
	case a == u.Address.Masked().Addr():
		v.failAt(n.Pos, "node %s: uplink address %s is the network address of its prefix", n.Name, u.Address)
	case a == lastAddr(u.Address):
		v.failAt(n.Pos, "node %s: uplink address %s is the broadcast address of its prefix", n.Name, u.Address)
	}
	switch {
	case !u.Address.Contains(u.Gateway):
		v.failAt(n.Pos, "node %s: uplink gateway %s is not in the uplink prefix %s", n.Name, u.Gateway, u.Address.Masked())
	case u.Gateway == u.Address.Addr():
		v.failAt(n.Pos, "node %s: uplink gateway %s is the node's own address", n.Name, u.Gateway)
	case u.Gateway == u.Address.Masked().Addr() || u.Gateway == lastAddr(u.Address):
		v.failAt(n.Pos, "node %s: uplink gateway %s is the network or broadcast address of %s", n.Name, u.Gateway, u.Address.Masked())
	}
}

// overlaps rejects overlapping PodCIDRs and uplink prefixes, in any
// combination: every link and every node's pods need their own prefix.
func (v *validator) overlaps() {
	type pfx struct {
		p    netip.Prefix
		what string
		pos  Pos
	}
	var all []pfx
	for _, n := range v.t.Nodes {
		if n.PodCIDR.IsValid() {
			all = append(all, pfx{n.PodCIDR, fmt.Sprintf("node %s podCIDR %s", n.Name, n.PodCIDR), n.Pos})
		}
		if n.Uplink.Address.IsValid() {
			m := n.Uplink.Address.Masked()
			all = append(all, pfx{m, fmt.Sprintf("node %s uplink %s", n.Name, m), n.Pos})
		}
	}
	for i := range all {
		for j := range i {
			if all[i].p.Overlaps(all[j].p) {
				v.failAt(all[i].pos, "%s overlaps %s (line %d)", all[i].what, all[j].what, all[j].pos.Line)
			}
		}
	}
}

func (v *validator) pods(claim func(string, Pos, string) bool) {
	t := v.t
	macs := map[MAC]*Pod{}
	for _, p := range t.Pods {
		if claim(p.Name, p.Pos, "pod") {
			t.pods[p.Name] = p
		}
		n := t.nodes[p.Node]
		if p.Node != "" && n == nil {
			v.failAt(p.Pos, "pod %s: unknown node %q", p.Name, p.Node)
		}
		if p.IP.IsValid() {
			if prev := t.podsByIP[p.IP]; prev != nil {
				v.failAt(p.Pos, "pod %s: IP %s is already used by pod %s (line %d)", p.Name, p.IP, prev.Name, prev.Pos.Line)
			} else {
				t.podsByIP[p.IP] = p
			}
			if n != nil && n.PodCIDR.IsValid() {
				switch {
				case !n.PodCIDR.Contains(p.IP):
					v.failAt(p.Pos, "pod %s: IP %s is outside node %s's podCIDR %s", p.Name, p.IP, n.Name, n.PodCIDR)
				case p.IP == n.PodCIDR.Addr():
					v.failAt(p.Pos, "pod %s: IP %s is the network address of %s", p.Name, p.IP, n.PodCIDR)
				case p.IP == n.PodCIDR.Addr().Next():
					v.failAt(p.Pos, "pod %s: IP %s is node %s's router IP (the pods' gateway, first address of %s)", p.Name, p.IP, n.Name, n.PodCIDR)
				case p.IP == lastAddr(n.PodCIDR):
					v.failAt(p.Pos, "pod %s: IP %s is the broadcast address of %s", p.Name, p.IP, n.PodCIDR)
				}
			}
		}
		if p.MACPinned {
			if prev := macs[p.MAC]; prev != nil {
				v.failAt(p.Pos, "pod %s: MAC %s is already used by pod %s (line %d)", p.Name, p.MAC, prev.Name, prev.Pos.Line)
			} else {
				macs[p.MAC] = p
			}
		}
	}
}

func (v *validator) services() {
	t := v.t
	names := map[string]*Service{}
	frontends := map[string]*Service{}
	nodePorts := map[string]*Service{}
	for _, s := range t.Services {
		if prev := names[s.Name]; prev != nil && s.Name != "" {
			v.failAt(s.Pos, "service name %q is already used at line %d", s.Name, prev.Pos.Line)
		} else {
			names[s.Name] = s
		}
		if s.VIP.IsValid() {
			v.vip(s)
			key := fmt.Sprintf("%s:%d/%s", s.VIP, s.Port, s.Protocol)
			if prev := frontends[key]; prev != nil && s.Port != 0 {
				v.failAt(s.Pos, "service %s: %s is already service %s (line %d)", s.Name, key, prev.Name, prev.Pos.Line)
			} else {
				frontends[key] = s
			}
		}
		if s.NodePort != 0 {
			key := fmt.Sprintf("%d/%s", s.NodePort, s.Protocol)
			if prev := nodePorts[key]; prev != nil {
				v.failAt(s.Pos, "service %s: nodePort %s is already used by service %s (line %d)", s.Name, key, prev.Name, prev.Pos.Line)
			} else {
				nodePorts[key] = s
			}
		}
		seen := map[Backend]bool{}
		for _, b := range s.Backends {
			key := Backend{Pod: b.Pod, Port: b.Port}
			if seen[key] {
				v.failAt(b.Pos, "service %s: backend %s is listed twice", s.Name, b)
				continue
			}
			seen[key] = true
			p := t.pods[b.Pod]
			if p == nil {
				v.failAt(b.Pos, "service %s: backend %s names unknown pod %q", s.Name, b, b.Pod)
				continue
			}
			if !p.listens(s.Protocol, b.Port) {
				v.warnAt(b.Pos, "service %s: backend pod %s does not listen on %s/%d", s.Name, p.Name, s.Protocol, b.Port)
			}
		}
	}
}

func (v *validator) vip(s *Service) {
	if p := v.t.podsByIP[s.VIP]; p != nil {
		v.failAt(s.Pos, "service %s: VIP %s collides with pod %s's IP", s.Name, s.VIP, p.Name)
		return
	}
	if s.VIP.IsUnspecified() || s.VIP.IsMulticast() || s.VIP.IsLoopback() || s.VIP == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		v.failAt(s.Pos, "service %s: VIP %s is not a unicast address", s.Name, s.VIP)
		return
	}
	for _, n := range v.t.Nodes {
		if n.PodCIDR.IsValid() && n.PodCIDR.Contains(s.VIP) {
			v.failAt(s.Pos, "service %s: VIP %s is inside node %s's podCIDR %s", s.Name, s.VIP, n.Name, n.PodCIDR)
		}
		if n.Uplink.Address.IsValid() && n.Uplink.Address.Contains(s.VIP) {
			v.failAt(s.Pos, "service %s: VIP %s is inside node %s's uplink %s", s.Name, s.VIP, n.Name, n.Uplink.Address.Masked())
		}
	}
}

func (p *Pod) listens(proto Protocol, port uint16) bool {
	for _, l := range p.Listen {
		if l.Protocol == proto && l.Port == port {
			return true
		}
	}
	return false
}

func (v *validator) policies() {
	t := v.t
	names := map[string]*Policy{}
	for _, pol := range t.Policies {
		if prev := names[pol.Name]; prev != nil {
			v.failAt(pol.Pos, "policy name %q is already used at line %d", pol.Name, prev.Pos.Line)
		} else {
			names[pol.Name] = pol
		}
		if len(pol.Ingress) == 0 && len(pol.Egress) == 0 {
			v.warnAt(pol.Pos, "policy %s has no ingress or egress rules and enforces nothing", pol.Name)
		}
		if !t.selectsAny(pol.EndpointSelector) {
			v.warnAt(pol.Pos, "policy %s: endpointSelector %s selects no pod", pol.Name, pol.EndpointSelector)
		}
		for _, rules := range [][]Rule{pol.Ingress, pol.Egress} {
			for _, r := range rules {
				for _, sel := range r.Endpoints {
					if !sel.IsWildcard() && !t.selectsAny(sel) {
						v.warnAt(r.Pos, "policy %s: peer selector %s selects no pod, so it allows nothing", pol.Name, sel)
					}
				}
			}
		}
	}
}

func (t *Topology) selectsAny(s EndpointSelector) bool {
	for _, p := range t.Pods {
		if s.Matches(p.Labels) {
			return true
		}
	}
	return false
}
