package datapath

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Endpoint is a local pod as the datapath sees it.
type Endpoint struct {
	// IP is the pod's address.
	IP netip.Addr
	// ID is the endpoint id, the pod's slot in the policy program array.
	ID uint16
	// IfIndex is the host-side veth (lxc) the pod is reached through.
	IfIndex int
	// LXCMAC is the MAC of the host-side veth, PodMAC the pod's eth0 MAC.
	LXCMAC, PodMAC net.HardwareAddr
	// Identity is the pod's security identity.
	Identity Identity
	// EnforceIngress and EnforceEgress turn on policy in that direction;
	// without them everything is allowed.
	EnforceIngress, EnforceEgress bool
}

// EndpointMap is hoplab_lxc (pod IP -> endpoint) and its index by the
// lxc's ifindex, hoplab_lxc_ifindex, which from-container reads for the
// source endpoint (an array lookup instead of a hash lookup, and the check
// that the pod sends with its own address). Both are written together.
// Endpoints lie in the node's PodCIDR where one is set
// ([Datapath.SetPodCIDR]).
type EndpointMap struct {
	m         *ebpf.Map
	byIfindex *ebpf.Map
	podCIDR   func() (netip.Prefix, error)
}

// Upsert writes ep. Register the endpoint's policy program with
// Datapath.RegisterEndpoint so that packets can be delivered to it.
func (e *EndpointMap) Upsert(ep Endpoint) error {
	ip, err := be32(ep.IP)
	if err != nil {
		return fmt.Errorf("endpoint upsert: %w", err)
	}
	if len(ep.LXCMAC) != 6 || len(ep.PodMAC) != 6 {
		return fmt.Errorf("endpoint upsert %v: MACs %v, %v: %w", ep.IP, ep.LXCMAC, ep.PodMAC, ErrInvalid)
	}
	if cidr, err := e.podCIDR(); err != nil {
		return fmt.Errorf("endpoint upsert %v: %w", ep.IP, err)
	} else if cidr.IsValid() && !cidr.Contains(ep.IP) {
		return fmt.Errorf("endpoint upsert %v: outside the node's PodCIDR %v: %w", ep.IP, cidr, ErrInvalid)
	}
	v := lxcEndpointInfo{Ifindex: uint32(ep.IfIndex), EpId: ep.ID, SecIdentity: uint32(ep.Identity)}
	if ep.EnforceIngress {
		v.Flags |= 1
	}
	if ep.EnforceEgress {
		v.Flags |= 2
	}
	copy(v.LxcMac[:], ep.LXCMAC)
	copy(v.PodMac[:], ep.PodMAC)
	var old lxcEndpointInfo
	moved := e.m.Lookup(&lxcEndpointKey{Ip: ip}, &old) == nil && old.Ifindex != v.Ifindex
	if err := e.m.Put(&lxcEndpointKey{Ip: ip}, &v); err != nil {
		return fmt.Errorf("endpoint upsert %v: %w", ep.IP, err)
	}
	if moved {
		if err := e.clearIfindex(old.Ifindex, ip); err != nil {
			return fmt.Errorf("endpoint upsert %v: %w", ep.IP, err)
		}
	}
	if !e.hasSlot(v.Ifindex) {
		return nil
	}
	if err := e.byIfindex.Put(v.Ifindex, &lxcEndpointByIfindex{Ip: ip, Info: v}); err != nil {
		return fmt.Errorf("endpoint upsert %v: ifindex %d: %w", ep.IP, v.Ifindex, err)
	}
	return nil
}

// hasSlot reports whether hoplab_lxc_ifindex has a slot for ifindex;
// endpoints on other lxcs are found by address alone.
func (e *EndpointMap) hasSlot(ifindex uint32) bool {
	return ifindex != 0 && ifindex < e.byIfindex.MaxEntries()
}

// clearIfindex empties the ifindex slot if it holds the endpoint with
// address ip (an array's entries cannot be deleted).
func (e *EndpointMap) clearIfindex(ifindex, ip uint32) error {
	if !e.hasSlot(ifindex) {
		return nil
	}
	var cur lxcEndpointByIfindex
	if err := e.byIfindex.Lookup(ifindex, &cur); err != nil {
		return fmt.Errorf("ifindex %d: %w", ifindex, err)
	}
	if cur.Ip != ip || cur.Info.Ifindex != ifindex {
		return nil
	}
	if err := e.byIfindex.Put(ifindex, &lxcEndpointByIfindex{}); err != nil {
		return fmt.Errorf("ifindex %d: %w", ifindex, err)
	}
	return nil
}

// Lookup returns the endpoint with address ip.
func (e *EndpointMap) Lookup(ip netip.Addr) (Endpoint, error) {
	k, err := be32(ip)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint lookup: %w", err)
	}
	var v lxcEndpointInfo
	if err := e.m.Lookup(&lxcEndpointKey{Ip: k}, &v); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint lookup %v: %w", ip, ErrNotFound)
	}
	return Endpoint{
		IP: ip, ID: v.EpId, IfIndex: int(v.Ifindex),
		LXCMAC:   net.HardwareAddr(append([]byte(nil), v.LxcMac[:]...)),
		PodMAC:   net.HardwareAddr(append([]byte(nil), v.PodMac[:]...)),
		Identity: Identity(v.SecIdentity), EnforceIngress: v.Flags&1 != 0, EnforceEgress: v.Flags&2 != 0,
	}, nil
}

// Delete removes the endpoint with address ip.
func (e *EndpointMap) Delete(ip netip.Addr) error {
	k, err := be32(ip)
	if err != nil {
		return fmt.Errorf("endpoint delete: %w", err)
	}
	var old lxcEndpointInfo
	if err := e.m.Lookup(&lxcEndpointKey{Ip: k}, &old); err != nil {
		return fmt.Errorf("endpoint delete %v: %w", ip, err)
	}
	if err := e.clearIfindex(old.Ifindex, k); err != nil {
		return fmt.Errorf("endpoint delete %v: %w", ip, err)
	}
	if err := e.m.Delete(&lxcEndpointKey{Ip: k}); err != nil {
		return fmt.Errorf("endpoint delete %v: %w", ip, err)
	}
	return nil
}
