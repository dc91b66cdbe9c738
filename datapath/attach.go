package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Hook is a tc hook of a device.
type Hook int

// tc hooks.
const (
	HookIngress Hook = iota
	HookEgress
)

func (h Hook) parent() uint32 {
	if h == HookEgress {
		return netlink.HANDLE_MIN_EGRESS
	}
	return netlink.HANDLE_MIN_INGRESS
}

// String returns "ingress" or "egress".
func (h Hook) String() string {
	if h == HookEgress {
		return "egress"
	}
	return "ingress"
}

// filterHandle and filterPriority identify hoplab's cls_bpf filter, so that
// FilterReplace swaps programs atomically.
const (
	filterHandle   = 0x1
	filterPriority = 1
)

// AttachTC attaches prog at hook of the device ifname as a direct-action
// cls_bpf filter under a clsact qdisc (created if missing), replacing a
// previous hoplab filter. It works from Linux 4.5 (clsact) on. ifname is
// looked up in the calling thread's network namespace.
func AttachTC(ifname string, hook Hook, prog *ebpf.Program, name string) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, ifname, err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: link.Attrs().Index,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := netlink.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("attach %s to %s: clsact: %w", name, ifname, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: link.Attrs().Index,
			Parent:    hook.parent(),
			Handle:    filterHandle,
			Priority:  filterPriority,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         name,
		DirectAction: true,
	}
	if err := netlink.FilterReplace(filter); err != nil {
		return fmt.Errorf("attach %s to %s %v: %w", name, ifname, hook, err)
	}
	return nil
}

// DetachTC removes hoplab's filter from hook of ifname; a missing filter is
// not an error.
func DetachTC(ifname string, hook Hook) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("detach from %s: %w", ifname, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: link.Attrs().Index,
			Parent:    hook.parent(),
			Handle:    filterHandle,
			Priority:  filterPriority,
			Protocol:  unix.ETH_P_ALL,
		},
	}
	if err := netlink.FilterDel(filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("detach from %s %v: %w", ifname, hook, err)
	}
	return nil
}

// AttachLXC attaches from-container at tc ingress of a pod's lxc device.
// Nothing is attached at its egress: to-container is tail-called.
func (d *Datapath) AttachLXC(ifname string) error {
	return AttachTC(ifname, HookIngress, d.FromContainer, "hoplab_from_container")
}

// AttachNetdev attaches from-netdev at tc ingress and to-netdev at tc
// egress of the uplink (bond0).
func (d *Datapath) AttachNetdev(ifname string) error {
	if err := AttachTC(ifname, HookIngress, d.FromNetdev, "hoplab_from_netdev"); err != nil {
		return err
	}
	return AttachTC(ifname, HookEgress, d.ToNetdev, "hoplab_to_netdev")
}

// DetachNetdev removes both uplink programs.
func DetachNetdev(ifname string) error {
	return errors.Join(DetachTC(ifname, HookIngress), DetachTC(ifname, HookEgress))
}
