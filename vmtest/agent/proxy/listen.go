package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/datapath"
)

// Marks and routing of the packets the datapath hands the proxy (the
// values Cilium uses).
const (
	// MarkMagicToProxy in skb->mark (under MarkMagicMask) sends a packet
	// to the proxy; the proxy port is in the upper 16 bits.
	MarkMagicToProxy = datapath.MarkMagicToProxy
	// MarkMagicMask selects the magic.
	MarkMagicMask = datapath.MarkMagicMask
	// RouteTable holds the route that delivers marked packets locally.
	RouteTable = 2004
	// RulePriority is the priority of the ip rule pointing at RouteTable,
	// before the main table's.
	RulePriority = 9
)

// MarkToProxy is the mark of a packet for the proxy listening on port.
func MarkToProxy(port uint16) uint32 { return datapath.MarkToProxy(port) }

// ListenTransparent listens on 0.0.0.0:port with IP_TRANSPARENT (which
// needs CAP_NET_ADMIN): the kernel hands it connections to any address
// that were routed to the host by SetupRouting's rule, and the original
// destination is the accepted socket's local address.
func ListenTransparent(port uint16) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("IP_TRANSPARENT: %w", serr)
		}
		return nil
	}}
	return lc.Listen(context.Background(), "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
}

func proxyRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V4
	r.Priority = RulePriority
	r.Mark = MarkMagicToProxy
	mask := uint32(MarkMagicMask)
	r.Mask = &mask
	r.Table = RouteTable
	return r
}

func proxyRoute(lo int) *netlink.Route {
	return &netlink.Route{
		Table: RouteTable, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, LinkIndex: lo,
		Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
	}
}

// SetupRouting adds, through h, the policy routing of packets marked for
// the proxy: "ip rule add fwmark 0x200/0xf00 lookup 2004 pref 9" and
// "ip route replace local 0.0.0.0/0 dev lo table 2004". It is idempotent.
func SetupRouting(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("proxy routing: lo: %w", err)
	}
	if err := h.RouteReplace(proxyRoute(lo.Attrs().Index)); err != nil {
		return fmt.Errorf("proxy routing: local route in table %d: %w", RouteTable, err)
	}
	if err := h.RuleAdd(proxyRule()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("proxy routing: rule fwmark %#x/%#x: %w", MarkMagicToProxy, MarkMagicMask, err)
	}
	return nil
}

// TeardownRouting removes what SetupRouting added; what is missing is no
// error.
func TeardownRouting(h *netlink.Handle) error {
	var errs []error
	if err := h.RuleDel(proxyRule()); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("proxy routing: remove rule: %w", err))
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.RouteDel(proxyRoute(lo.Attrs().Index)); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("proxy routing: remove route: %w", err))
		}
	}
	return errors.Join(errs...)
}
