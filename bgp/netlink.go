package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// ProtocolBGP is the kernel route protocol for routes learned over BGP
// (RTPROT_BGP, shown as "proto bgp" by iproute2).
const ProtocolBGP netlink.RouteProtocol = 186

// NetlinkInstaller installs routes into the kernel with netlink. Its zero
// value writes to the main table of the calling thread's network namespace
// with protocol ProtocolBGP.
type NetlinkInstaller struct {
	// Table is the routing table; 0 means main (254).
	Table int
	// Protocol tags the routes (and limits Remove to them); 0 means ProtocolBGP.
	Protocol netlink.RouteProtocol
	// Device, when set, makes the routes leave through this interface.
	Device string
	// OnLink marks the next hop as directly reachable on Device even when no
	// connected route covers it (needs Device).
	OnLink bool
	// Handle, when set, is the netlink handle to use, for example one from
	// netlink.NewHandleAt for another network namespace. Nil uses the calling
	// thread's namespace.
	Handle *netlink.Handle
}

var _ RouteInstaller = (*NetlinkInstaller)(nil)

func (n *NetlinkInstaller) handle() *netlink.Handle {
	if n.Handle != nil {
		return n.Handle
	}
	return &netlink.Handle{} // package-level behaviour: a socket per request, this thread's netns
}

func (n *NetlinkInstaller) protocol() netlink.RouteProtocol {
	if n.Protocol == 0 {
		return ProtocolBGP
	}
	return n.Protocol
}

func (n *NetlinkInstaller) table() int {
	if n.Table == 0 {
		return syscall.RT_TABLE_MAIN
	}
	return n.Table
}

func ipNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// Install adds or replaces the kernel route for prefix via nexthop.
func (n *NetlinkInstaller) Install(prefix netip.Prefix, nexthop netip.Addr) error {
	if prefix.Addr().Is4() != nexthop.Is4() {
		return fmt.Errorf("install route %v via %v: next hop is of another family", prefix, nexthop)
	}
	if n.OnLink && n.Device == "" {
		return fmt.Errorf("install route %v via %v: onlink needs a device", prefix, nexthop)
	}
	h := n.handle()
	r := &netlink.Route{
		Family:   family(prefix.Addr()),
		Dst:      ipNet(prefix),
		Gw:       nexthop.AsSlice(),
		Table:    n.table(),
		Protocol: n.protocol(),
	}
	if n.Device != "" {
		l, err := h.LinkByName(n.Device)
		if err != nil {
			return fmt.Errorf("install route %v via %v: device %s: %w", prefix, nexthop, n.Device, err)
		}
		r.LinkIndex = l.Attrs().Index
	}
	if n.OnLink {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("install route %v via %v table %d: %w", prefix, nexthop, r.Table, err)
	}
	return nil
}

// Remove deletes the kernel route for prefix that carries the installer's
// protocol; a missing route is not an error.
func (n *NetlinkInstaller) Remove(prefix netip.Prefix) error {
	r := &netlink.Route{
		Family:   family(prefix.Addr()),
		Dst:      ipNet(prefix),
		Table:    n.table(),
		Protocol: n.protocol(),
	}
	if err := n.handle().RouteDel(r); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("remove route %v table %d: %w", prefix, r.Table, err)
	}
	return nil
}

// Flush removes every route of the installer's table and protocol, such as
// the leftovers of an agent that did not stop cleanly.
func (n *NetlinkInstaller) Flush() error {
	h := n.handle()
	filter := &netlink.Route{Table: n.table(), Protocol: n.protocol()}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return fmt.Errorf("flush bgp routes: %w", err)
		}
		for i := range routes {
			if err := h.RouteDel(&routes[i]); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("flush bgp route %v: %w", routes[i].Dst, err)
			}
		}
	}
	return nil
}
