package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Backend is one backend of a service.
type Backend struct {
	// ID is the backend's id in the backend map; it must not be 0.
	ID uint32
	// Addr and Port are where the traffic is DNATed to.
	Addr netip.Addr
	Port uint16
}

// String returns "id=ADDR:PORT".
func (b Backend) String() string {
	return fmt.Sprintf("%d=%s", b.ID, netip.AddrPortFrom(b.Addr, b.Port))
}

// Service is a virtual IP and port with its backends.
type Service struct {
	// VIP, Port and Proto (TCP or UDP) identify the service.
	VIP   netip.Addr
	Port  uint16
	Proto Proto
	// ID is the service's rev-NAT index; it must not be 0.
	ID uint16
	// Backends receive the flows; empty means "Service backend not found".
	Backends []Backend
	// NodePort marks a NodePort frontend: VIP is this node's address (see
	// [Datapath.SetNodeAddress]) and Port the nodePort, load-balanced at
	// from-netdev for traffic from outside; connections to backends on
	// other nodes are SNATed to the node's address ([Datapath.NAT]).
	NodePort bool
}

// svcFlagNodePort is SVC_F_NODEPORT of bpf/lib/lb.h, in the master entry.
const svcFlagNodePort = 0x01

// ServiceMap is the service map hoplab_lb4_services: a master entry (slot
// 0: backend count, rev-NAT id) and one entry per backend slot.
type ServiceMap struct {
	m        *ebpf.Map
	backends *BackendMap
	revNAT   *RevNATMap
}

func serviceKey(vip netip.Addr, port uint16, proto Proto, slot uint16) (lxcLb4Key, error) {
	a, err := be32(vip)
	if err != nil {
		return lxcLb4Key{}, err
	}
	return lxcLb4Key{Address: a, Dport: be16(port), BackendSlot: slot, Proto: uint8(proto)}, nil
}

// Upsert writes a service: its backends into the backend map, its rev-NAT
// entry, the slot entries and last the master entry, then removes slots
// left over from a previous version with more backends.
func (s *ServiceMap) Upsert(svc Service) error {
	if svc.ID == 0 || len(svc.Backends) > 0xfffe || (svc.Proto != ProtoTCP && svc.Proto != ProtoUDP) {
		return fmt.Errorf("upsert service %v:%d: id %d, %d backends, %v: %w",
			svc.VIP, svc.Port, svc.ID, len(svc.Backends), svc.Proto, ErrInvalid)
	}
	master, err := serviceKey(svc.VIP, svc.Port, svc.Proto, 0)
	if err != nil {
		return fmt.Errorf("upsert service: %w", err)
	}
	var old lxcLb4Service
	oldCount := 0
	if err := s.m.Lookup(&master, &old); err == nil {
		oldCount = int(old.Count)
	}
	for _, b := range svc.Backends {
		if err := s.backends.Upsert(b); err != nil {
			return fmt.Errorf("upsert service %v:%d: %w", svc.VIP, svc.Port, err)
		}
	}
	if err := s.revNAT.Upsert(svc.ID, netip.AddrPortFrom(svc.VIP, svc.Port)); err != nil {
		return fmt.Errorf("upsert service %v:%d: %w", svc.VIP, svc.Port, err)
	}
	for i, b := range svc.Backends {
		k := master
		k.BackendSlot = uint16(i + 1)
		if err := s.m.Put(&k, &lxcLb4Service{BackendId: b.ID}); err != nil {
			return fmt.Errorf("upsert service %v:%d: slot %d: %w", svc.VIP, svc.Port, i+1, err)
		}
	}
	v := lxcLb4Service{Count: uint16(len(svc.Backends)), RevNatIndex: svc.ID}
	if svc.NodePort {
		v.Flags = svcFlagNodePort
	}
	if err := s.m.Put(&master, &v); err != nil {
		return fmt.Errorf("upsert service %v:%d: %w", svc.VIP, svc.Port, err)
	}
	for i := len(svc.Backends) + 1; i <= oldCount; i++ {
		k := master
		k.BackendSlot = uint16(i)
		if err := s.m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("upsert service %v:%d: delete stale slot %d: %w", svc.VIP, svc.Port, i, err)
		}
	}
	return nil
}

// Delete removes the service's master and slot entries (not its backends
// or rev-NAT entry, which other services may share).
func (s *ServiceMap) Delete(vip netip.Addr, port uint16, proto Proto) error {
	master, err := serviceKey(vip, port, proto, 0)
	if err != nil {
		return fmt.Errorf("delete service: %w", err)
	}
	var v lxcLb4Service
	if err := s.m.Lookup(&master, &v); err != nil {
		return fmt.Errorf("delete service %v:%d: %w", vip, port, ErrNotFound)
	}
	if err := s.m.Delete(&master); err != nil {
		return fmt.Errorf("delete service %v:%d: %w", vip, port, err)
	}
	for i := 1; i <= int(v.Count); i++ {
		k := master
		k.BackendSlot = uint16(i)
		if err := s.m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete service %v:%d: slot %d: %w", vip, port, i, err)
		}
	}
	return nil
}

// Lookup reads a service back, backends resolved through the backend map.
func (s *ServiceMap) Lookup(vip netip.Addr, port uint16, proto Proto) (Service, error) {
	master, err := serviceKey(vip, port, proto, 0)
	if err != nil {
		return Service{}, fmt.Errorf("lookup service: %w", err)
	}
	var v lxcLb4Service
	if err := s.m.Lookup(&master, &v); err != nil {
		return Service{}, fmt.Errorf("lookup service %v:%d: %w", vip, port, ErrNotFound)
	}
	svc := Service{VIP: vip, Port: port, Proto: proto, ID: v.RevNatIndex, NodePort: v.Flags&svcFlagNodePort != 0}
	for i := 1; i <= int(v.Count); i++ {
		k := master
		k.BackendSlot = uint16(i)
		var sv lxcLb4Service
		if err := s.m.Lookup(&k, &sv); err != nil {
			return Service{}, fmt.Errorf("lookup service slot %d: %w", i, err)
		}
		b, err := s.backends.Lookup(sv.BackendId)
		if err != nil {
			return Service{}, fmt.Errorf("lookup service slot %d: %w", i, err)
		}
		svc.Backends = append(svc.Backends, b)
	}
	return svc, nil
}

// BackendMap is hoplab_lb4_backends: backend id -> address and port. The
// service CT entries that pin a backend keep a copy of its address and
// port, so removing or changing a backend deletes them too: their flows
// are load-balanced anew on their next packet.
type BackendMap struct {
	m  *ebpf.Map
	ct *CTMap
}

// Upsert writes a backend; a changed backend's flows pick a backend anew.
func (b *BackendMap) Upsert(be Backend) error {
	a, err := be32(be.Addr)
	if err != nil {
		return fmt.Errorf("upsert backend %d: %w", be.ID, err)
	}
	if be.ID == 0 {
		return fmt.Errorf("upsert backend %v: id 0: %w", be.Addr, ErrInvalid)
	}
	v := lxcLb4Backend{Address: a, Port: be16(be.Port)}
	var old lxcLb4Backend
	existed := b.m.Lookup(be.ID, &old) == nil
	if existed && old == v {
		return nil
	}
	if err := b.m.Put(be.ID, &v); err != nil {
		return fmt.Errorf("upsert backend %d: %w", be.ID, err)
	}
	if existed {
		if err := b.ct.deletePinnedTo(be.ID); err != nil {
			return fmt.Errorf("upsert backend %d: %w", be.ID, err)
		}
	}
	return nil
}

// Lookup reads a backend.
func (b *BackendMap) Lookup(id uint32) (Backend, error) {
	var v lxcLb4Backend
	if err := b.m.Lookup(id, &v); err != nil {
		return Backend{}, fmt.Errorf("lookup backend %d: %w", id, ErrNotFound)
	}
	return Backend{ID: id, Addr: addrFrom32(v.Address), Port: port16(v.Port)}, nil
}

// Delete removes a backend and the service CT entries pinned to it; their
// flows pick a new one.
func (b *BackendMap) Delete(id uint32) error {
	if err := b.m.Delete(id); err != nil {
		return fmt.Errorf("delete backend %d: %w", id, err)
	}
	if err := b.ct.deletePinnedTo(id); err != nil {
		return fmt.Errorf("delete backend %d: %w", id, err)
	}
	return nil
}

// RevNATMap is hoplab_lb4_reverse_nat: rev-NAT id -> service address.
type RevNATMap struct {
	m *ebpf.Map
}

// Upsert writes the service address replies are rewritten to.
func (r *RevNATMap) Upsert(id uint16, svc netip.AddrPort) error {
	a, err := be32(svc.Addr())
	if err != nil {
		return fmt.Errorf("upsert rev-NAT %d: %w", id, err)
	}
	if err := r.m.Put(id, &lxcLb4ReverseNat{Address: a, Port: be16(svc.Port())}); err != nil {
		return fmt.Errorf("upsert rev-NAT %d: %w", id, err)
	}
	return nil
}

// Lookup reads a rev-NAT entry.
func (r *RevNATMap) Lookup(id uint16) (netip.AddrPort, error) {
	var v lxcLb4ReverseNat
	if err := r.m.Lookup(id, &v); err != nil {
		return netip.AddrPort{}, fmt.Errorf("lookup rev-NAT %d: %w", id, ErrNotFound)
	}
	return netip.AddrPortFrom(addrFrom32(v.Address), port16(v.Port)), nil
}
