package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hoplab/hoplab/topologies"
)

// Policy is what the proxy enforces on one node.
type Policy struct {
	// Endpoints are the node's pods with L7 ports, by address.
	Endpoints map[netip.Addr]*Endpoint
	// Local are the node's own addresses: a flow to one of them that no
	// policy explains is refused (forwarding it would reach the proxy
	// again).
	Local map[netip.Addr]bool
	// peers names addresses as the node's ipcache does.
	peers []topologies.IPCacheEntry
	top   *topologies.Topology
}

// Endpoint is a local pod's L7 policy.
type Endpoint struct {
	// Name is the pod's name and Identity its identity.
	Name     string
	Identity topologies.Identity
	// Ingress and Egress are its L7 ports by destination port.
	Ingress map[uint16]*topologies.L7Port
	Egress  map[uint16]*topologies.L7Port
}

// Peer is an address as the node's ipcache names it.
type Peer struct {
	// Name is the pod's or node's name; empty for world.
	Name string
	// Identity is the address's identity on the node.
	Identity topologies.Identity
}

// FromTopology builds the policy of node in top: the L7 ports of its pods'
// policies.
func FromTopology(top *topologies.Topology, node string) (*Policy, error) {
	p := &Policy{Endpoints: map[netip.Addr]*Endpoint{}, Local: map[netip.Addr]bool{}, peers: top.IPCache(node), top: top}
	if n := top.Node(node); n != nil {
		p.Local[n.Uplink.Address.Addr()] = true
		p.Local[n.RouterIP] = true
	}
	for _, pod := range top.PodsOn(node) {
		ep, err := top.EndpointPolicy(pod.Name)
		if err != nil {
			return nil, err
		}
		if len(ep.L7Ports) == 0 {
			continue
		}
		e := &Endpoint{Name: pod.Name, Identity: pod.Identity, Ingress: map[uint16]*topologies.L7Port{}, Egress: map[uint16]*topologies.L7Port{}}
		for i := range ep.L7Ports {
			l := &ep.L7Ports[i]
			if l.Direction == topologies.Egress {
				e.Egress[l.Port] = l
			} else {
				e.Ingress[l.Port] = l
			}
		}
		p.Endpoints[pod.IP] = e
	}
	return p, nil
}

// Ports returns the ports the proxy listens on: every L7 port of every
// endpoint, each once, ascending.
func (p *Policy) Ports() []uint16 {
	if p == nil {
		return nil
	}
	set := map[uint16]bool{}
	for _, e := range p.Endpoints {
		for port := range e.Ingress {
			set[port] = true
		}
		for port := range e.Egress {
			set[port] = true
		}
	}
	out := make([]uint16, 0, len(set))
	for port := range set {
		out = append(out, port)
	}
	slices.Sort(out)
	return out
}

// Peer names addr as the node's ipcache does (longest prefix).
func (p *Policy) Peer(addr netip.Addr) Peer {
	best, out := -1, Peer{Identity: topologies.IdentityWorld}
	for _, e := range p.peers {
		if e.Prefix.Contains(addr) && e.Prefix.Bits() > best {
			best, out.Identity = e.Prefix.Bits(), e.Identity
			out.Name = ""
			if e.Prefix.Bits() == 32 {
				if pod := p.top.PodByIP(addr); pod != nil {
					out.Name = pod.Name
				} else {
					out.Name = e.Node
				}
			}
		}
	}
	return out
}

// flowPolicy is the policy deciding one flow's requests.
type flowPolicy struct {
	direction topologies.Direction
	endpoint  *Endpoint
	port      *topologies.L7Port
	// remote is the peer the rules look at: the client at ingress, the
	// destination at egress.
	remote topologies.Identity
}

// forFlow finds the policy that redirected the flow src → dst: the
// source's egress L7 port if the source is a local endpoint with one on
// dst's port (its from-container redirected first), else the
// destination's ingress L7 port. ok is false when neither applies (rules
// removed since the flow was redirected, or a flow no policy sends here).
func (p *Policy) forFlow(src, dst netip.AddrPort) (fp flowPolicy, ok bool) {
	if p == nil {
		return fp, false
	}
	if e := p.Endpoints[src.Addr()]; e != nil {
		if l := e.Egress[dst.Port()]; l != nil {
			return flowPolicy{topologies.Egress, e, l, p.Peer(dst.Addr()).Identity}, true
		}
	}
	if e := p.Endpoints[dst.Addr()]; e != nil {
		if l := e.Ingress[dst.Port()]; l != nil {
			return flowPolicy{topologies.Ingress, e, l, p.Peer(src.Addr()).Identity}, true
		}
	}
	return fp, false
}

// Rules describes the policy, one line per endpoint, direction and port
// ("pod4 ingress 8080/TCP: policy "l7" ingress[0] toPorts[0] (line 9): GET /public/.*; ..."),
// sorted: two policies enforce the same rules when their lines are equal.
func (p *Policy) Rules() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, e := range p.Endpoints {
		for _, ports := range []map[uint16]*topologies.L7Port{e.Ingress, e.Egress} {
			for port, l := range ports {
				var allows []string
				for i := range l.Allows {
					a := &l.Allows[i]
					peers := make([]string, len(a.Peers))
					for j, id := range a.Peers {
						peers[j] = id.String()
					}
					rules := "any request"
					if len(a.HTTP) > 0 {
						hs := make([]string, len(a.HTTP))
						for j, h := range a.HTTP {
							hs[j] = h.String()
						}
						rules = strings.Join(hs, " | ")
					}
					allows = append(allows, fmt.Sprintf("%s from/to %s: %s", a.String(), strings.Join(peers, ","), rules))
				}
				out = append(out, fmt.Sprintf("%s %s %d/TCP: %s", e.Name, l.Direction, port, strings.Join(allows, "; ")))
			}
		}
	}
	slices.Sort(out)
	return out
}
