package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
)

// MonitorAggregation is how many trace notifications the datapath emits
// (Cilium's monitor aggregation levels).
type MonitorAggregation uint8

// Aggregation levels.
const (
	// AggregationNone reports every packet at every observation point.
	// It is the default: hoplab follows packets hop by hop.
	AggregationNone MonitorAggregation = 0
	// AggregationMedium suppresses FROM_* observation points and reports
	// TO_* points only for new connections and packets carrying SYN, FIN
	// or RST. Drops are always reported.
	AggregationMedium MonitorAggregation = 1
)

// SetMonitorAggregation sets the trace level in hoplab_config.
func (d *Datapath) SetMonitorAggregation(level MonitorAggregation) error {
	if err := d.updateConfig(func(c *lxcHoplabConfig) { c.MonitorAggregation = uint8(level) }); err != nil {
		return fmt.Errorf("set monitor aggregation: %w", err)
	}
	return nil
}

// SetTunnelDevice turns tunnel mode on with the node's collect-metadata
// VXLAN device (its ifindex, see [AddVXLANDevice]), or off with 0. In
// tunnel mode from-container encapsulates a packet for an address whose
// ipcache entry has a [IPCacheEntry.TunnelEndpoint] (a pod of another node)
// with the sender's identity as VNI and redirects it to that device; with
// it off, or for addresses without a tunnel endpoint, the datapath behaves
// as in direct routing. From-overlay must be attached to the device
// ([Datapath.AttachOverlay]) on the receiving nodes.
func (d *Datapath) SetTunnelDevice(ifindex int) error {
	if ifindex < 0 || ifindex > 1<<31-1 {
		return fmt.Errorf("set tunnel device: ifindex %d out of range", ifindex)
	}
	if err := d.updateConfig(func(c *lxcHoplabConfig) { c.TunnelIfindex = uint32(ifindex) }); err != nil {
		return fmt.Errorf("set tunnel device %d: %w", ifindex, err)
	}
	return nil
}

// TunnelDevice returns the ifindex of the VXLAN device of tunnel mode, 0
// in direct routing.
func (d *Datapath) TunnelDevice() (int, error) {
	c, err := d.config()
	if err != nil {
		return 0, fmt.Errorf("tunnel device: %w", err)
	}
	return int(c.TunnelIfindex), nil
}

// SetNodeAddress sets the node's uplink address in hoplab_config: the
// address NodePort frontends ([Service.NodePort]) are reached at, and the
// source to-netdev translates NodePort connections to remote backends to.
// The zero Addr turns NodePort off.
func (d *Datapath) SetNodeAddress(a netip.Addr) error {
	var v uint32
	if a.IsValid() {
		var err error
		if v, err = be32(a); err != nil {
			return fmt.Errorf("set node address: %w", err)
		}
	}
	if err := d.updateConfig(func(c *lxcHoplabConfig) { c.NodeAddr = v }); err != nil {
		return fmt.Errorf("set node address %v: %w", a, err)
	}
	return nil
}

// NodeAddress returns the node's address of [Datapath.SetNodeAddress], the
// zero Addr when it is not set.
func (d *Datapath) NodeAddress() (netip.Addr, error) {
	c, err := d.config()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node address: %w", err)
	}
	if c.NodeAddr == 0 {
		return netip.Addr{}, nil
	}
	return addrFrom32(c.NodeAddr), nil
}

// SetPodCIDR sets the node's PodCIDR in hoplab_config: from-container
// then looks a destination up among the local endpoints only when it lies
// in it, and [EndpointMap.Upsert] refuses endpoints outside it. It fails
// if an endpoint already present lies outside. The zero Prefix unsets it
// (every address may be a local endpoint's).
func (d *Datapath) SetPodCIDR(p netip.Prefix) error {
	var addr, mask uint32
	if p.IsValid() {
		p = p.Masked()
		var err error
		if addr, err = be32(p.Addr()); err != nil {
			return fmt.Errorf("set PodCIDR: %w", err)
		}
		eps, err := d.Endpoints.List()
		if err != nil {
			return fmt.Errorf("set PodCIDR %v: %w", p, err)
		}
		for _, ep := range eps {
			if !p.Contains(ep.IP) {
				return fmt.Errorf("set PodCIDR %v: endpoint %v is outside it: %w", p, ep.IP, ErrInvalid)
			}
		}
		mask = binary.LittleEndian.Uint32(net.CIDRMask(p.Bits(), 32))
	}
	if err := d.updateConfig(func(c *lxcHoplabConfig) { c.PodCidr, c.PodCidrMask = addr, mask }); err != nil {
		return fmt.Errorf("set PodCIDR %v: %w", p, err)
	}
	return nil
}

// PodCIDR returns the node's PodCIDR of [Datapath.SetPodCIDR], the zero
// Prefix when it is not set.
func (d *Datapath) PodCIDR() (netip.Prefix, error) {
	c, err := d.config()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("PodCIDR: %w", err)
	}
	return podCIDRFrom(c), nil
}

// podCIDRFrom is the PodCIDR in c, the zero Prefix when unset.
func podCIDRFrom(c lxcHoplabConfig) netip.Prefix {
	if c.PodCidrMask == 0 {
		return netip.Prefix{}
	}
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], c.PodCidrMask)
	bits, _ := net.IPMask(m[:]).Size()
	return netip.PrefixFrom(addrFrom32(c.PodCidr), bits)
}

// config reads the single entry of hoplab_config; a missing entry reads as
// zero.
func (d *Datapath) config() (lxcHoplabConfig, error) {
	var c lxcHoplabConfig
	if err := d.lxc.HoplabConfig.Lookup(uint32(0), &c); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return c, err
	}
	return c, nil
}

// updateConfig changes one field of hoplab_config and keeps the others.
func (d *Datapath) updateConfig(change func(*lxcHoplabConfig)) error {
	c, err := d.config()
	if err != nil {
		return err
	}
	change(&c)
	c.Pad = [3]uint8{}
	return d.lxc.HoplabConfig.Put(uint32(0), &c)
}
