package roles

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/topologies"
)

// svcKey identifies a service frontend.
type svcKey struct {
	VIP   netip.Addr
	Port  uint16
	Proto datapath.Proto
}

func (k svcKey) String() string {
	return fmt.Sprintf("%v/%v", netip.AddrPortFrom(k.VIP, k.Port), k.Proto)
}

// ids hands out service (rev-NAT) and backend IDs: in topology order the
// first time, then stable for as long as the service or backend exists.
type ids struct {
	svc     map[svcKey]uint16
	backend map[netip.AddrPort]uint32
	nextSvc uint16
	nextBe  uint32
}

func newIDs() *ids {
	return &ids{svc: map[svcKey]uint16{}, backend: map[netip.AddrPort]uint32{}, nextSvc: 1, nextBe: 1}
}

func (i *ids) service(k svcKey) uint16 {
	if id, ok := i.svc[k]; ok {
		return id
	}
	id := i.nextSvc
	i.nextSvc++
	i.svc[k] = id
	return id
}

func (i *ids) backendID(a netip.AddrPort) uint32 {
	if id, ok := i.backend[a]; ok {
		return id
	}
	id := i.nextBe
	i.nextBe++
	i.backend[a] = id
	return id
}

// forget drops the IDs of services and backends that state no longer has.
func (i *ids) forget(s *state) {
	for k := range i.svc {
		if _, ok := s.services[k]; !ok {
			delete(i.svc, k)
		}
	}
	used := map[netip.AddrPort]bool{}
	for _, svc := range s.services {
		for _, b := range svc.Backends {
			used[netip.AddrPortFrom(b.Addr, b.Port)] = true
		}
	}
	for a := range i.backend {
		if !used[a] {
			delete(i.backend, a)
		}
	}
}

// state is what a node's maps and pods should hold for a topology.
type state struct {
	top  *topologies.Topology
	node *topologies.Node
	// pods are the node's pods by name.
	pods map[string]*topologies.Pod
	// endpoints are the pods' endpoints by pod name, without IfIndex (known
	// once the pod exists).
	endpoints map[string]datapath.Endpoint
	// services are every service of the cluster (backends on any node).
	services map[svcKey]datapath.Service
	// policy holds every allow entry of the node's endpoints, with its
	// proxy port (0: not redirected to the L7 proxy).
	policy map[datapath.PolicyKey]uint16
	// ipcache is the node's view of the cluster's prefixes.
	ipcache map[netip.Prefix]datapath.IPCacheEntry
}

// desired computes the state of node name in top, giving IDs from i.
func desired(top *topologies.Topology, name string, i *ids) (*state, error) {
	n := top.Node(name)
	if n == nil {
		return nil, fmt.Errorf("topology %s has no node %q", top.Name, name)
	}
	s := &state{
		top: top, node: n,
		pods:      map[string]*topologies.Pod{},
		endpoints: map[string]datapath.Endpoint{},
		services:  map[svcKey]datapath.Service{},
		policy:    map[datapath.PolicyKey]uint16{},
		ipcache:   map[netip.Prefix]datapath.IPCacheEntry{},
	}
	for _, p := range top.PodsOn(name) {
		ep, err := top.EndpointPolicy(p.Name)
		if err != nil {
			return nil, fmt.Errorf("pod %s: policy: %w", p.Name, err)
		}
		s.pods[p.Name] = p
		s.endpoints[p.Name] = datapath.Endpoint{
			IP: p.IP, ID: p.EndpointID,
			LXCMAC: p.LXCMAC.HardwareAddr(), PodMAC: p.MAC.HardwareAddr(),
			Identity:       datapath.Identity(p.Identity),
			EnforceIngress: ep.IngressEnforced, EnforceEgress: ep.EgressEnforced,
		}
		for _, e := range ep.Entries {
			s.policy[datapath.PolicyKey{
				Endpoint: p.EndpointID, Direction: datapath.Direction(e.Direction),
				Identity: datapath.Identity(e.RemoteIdentity), Port: e.Port, Proto: datapath.Proto(e.Proto),
			}] = e.ProxyPort
		}
	}
	for _, svc := range top.Services {
		k := svcKey{VIP: svc.VIP, Port: svc.Port, Proto: datapath.Proto(svc.Protocol)}
		d := datapath.Service{VIP: svc.VIP, Port: svc.Port, Proto: k.Proto, ID: i.service(k)}
		for _, b := range svc.Backends {
			p := top.Pod(b.Pod)
			if p == nil {
				return nil, fmt.Errorf("service %s: backend %v: %w", svc.Name, b, topologies.ErrUnknownPod)
			}
			a := netip.AddrPortFrom(p.IP, b.Port)
			d.Backends = append(d.Backends, datapath.Backend{ID: i.backendID(a), Addr: p.IP, Port: b.Port})
		}
		s.services[k] = d
		if svc.NodePort != 0 {
			// The NodePort frontend: this node's uplink address at the
			// nodePort, with its own rev-NAT index (replies get that
			// address and port back), load-balanced at from-netdev.
			nk := svcKey{VIP: n.Uplink.Address.Addr(), Port: svc.NodePort, Proto: k.Proto}
			np := d
			np.VIP, np.Port, np.ID, np.NodePort = nk.VIP, nk.Port, i.service(nk), true
			s.services[nk] = np
		}
	}
	for _, e := range top.IPCache(name) {
		entry := datapath.IPCacheEntry{Identity: datapath.Identity(e.Identity)}
		if top.Mode == topologies.Tunnel && e.TunnelEndpoint.IsValid() {
			entry.TunnelEndpoint = e.TunnelEndpoint
		}
		s.ipcache[e.Prefix] = entry
	}
	return s, nil
}

// podNames returns the state's pod names in topology order.
func (s *state) podNames() []string {
	var out []string
	for _, p := range s.top.PodsOn(s.node.Name) {
		out = append(out, p.Name)
	}
	return out
}

// sortedServices returns the services ordered by ID.
func (s *state) sortedServices() []datapath.Service {
	out := make([]datapath.Service, 0, len(s.services))
	for _, svc := range s.services {
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// sortedPolicy returns the policy keys in a stable order.
func sortedPolicy(m map[datapath.PolicyKey]uint16) []datapath.PolicyKey {
	out := make([]datapath.PolicyKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// sortedPrefixes returns the ipcache prefixes in address order.
func sortedPrefixes(m map[netip.Prefix]datapath.IPCacheEntry) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
			return c < 0
		}
		return out[i].Bits() < out[j].Bits()
	})
	return out
}
