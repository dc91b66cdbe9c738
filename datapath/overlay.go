package datapath

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// VXLANPort is the UDP port of tunnel mode's VXLAN device, Cilium's 8472
// (not IANA's 4789).
const VXLANPort = 8472

// AddVXLANDevice creates the node's VXLAN device for tunnel mode in the
// calling thread's network namespace, as Cilium's cilium_vxlan: collect
// metadata ("external": the datapath sets each packet's remote node and
// VNI), UDP port [VXLANPort], no learning, MTU mtu (0: the kernel's
// default), and sets it up. It returns the device's ifindex, for
// [Datapath.SetTunnelDevice].
func AddVXLANDevice(name string, mtu int) (int, error) {
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu},
		FlowBased: true,
		Port:      VXLANPort,
		Learning:  false,
	}
	if err := netlink.LinkAdd(vx); err != nil {
		return 0, fmt.Errorf("add vxlan device %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("add vxlan device %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		_ = netlink.LinkDel(link)
		return 0, fmt.Errorf("add vxlan device %s: set up: %w", name, err)
	}
	return link.Attrs().Index, nil
}

// AttachOverlay attaches from-overlay at tc ingress of the VXLAN device
// ifname (tunnel mode). Nothing is attached at its egress: from-container
// hands it packets with their tunnel key already set.
func (d *Datapath) AttachOverlay(ifname string) error {
	return AttachTC(ifname, HookIngress, d.FromOverlay, "hoplab_from_overlay")
}

// DetachOverlay removes from-overlay from the VXLAN device ifname.
func DetachOverlay(ifname string) error {
	return DetachTC(ifname, HookIngress)
}
