package roles

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// startBGP starts the node speaker: a session from the uplink address to
// the ToR (the uplink's gateway), the PodCIDR announced (in direct
// routing), learned routes installed into the main table.
func (n *Node) startBGP(ctx context.Context) error {
	nd := n.st.node
	if n.bgpCfg == nil {
		inst := &bgp.NetlinkInstaller{}
		// Leftovers of an agent that did not stop cleanly.
		if err := inst.Flush(); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		// In tunnel mode pod traffic travels between node addresses, which
		// the ToR has on its links: the session stays up, announcing nothing.
		var cidrs []netip.Prefix
		if !n.tunnel {
			cidrs = []netip.Prefix{nd.PodCIDR}
		}
		n.bgpCfg = &bgp.NodeConfig{
			ASN:      nd.ASN,
			Uplink:   nd.Uplink.Address.Addr(),
			PodCIDRs: cidrs,
			Router: bgp.Peer{
				Address: nd.Uplink.Gateway, ASN: n.st.top.Router.ASN, Port: n.opts.BGPPort,
			},
			Installer: inst,
			Logger:    n.log.With("role", "bgp"),
		}
	}
	sp, err := bgp.NewNode(*n.bgpCfg)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	if err := sp.Start(ctx); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	n.speaker = sp
	return nil
}

// BGPPeers lists the speaker's sessions.
func (n *Node) BGPPeers(ctx context.Context) (bgp.PeerList, error) {
	sp, err := n.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Peers(ctx)
}

// BGPRoutes lists the speaker's RIB.
func (n *Node) BGPRoutes(ctx context.Context) (bgp.RouteList, error) {
	sp, err := n.bgp()
	if err != nil {
		return nil, err
	}
	return sp.Routes(ctx)
}

// BGPStop stops the speaker: the session closes with a Cease, so the ToR
// withdraws the node's PodCIDR, and the learned routes leave the kernel.
func (n *Node) BGPStop(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.speaker == nil {
		return errors.New("bgp speaker not running")
	}
	n.speaker.Stop()
	n.speaker = nil
	return nil
}

// BGPStart starts the stopped speaker again with the same configuration.
func (n *Node) BGPStart(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.speaker != nil {
		return errors.New("bgp speaker already running")
	}
	return n.startBGP(ctx)
}

func (n *Node) bgp() (*bgp.Speaker, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.speaker == nil {
		return nil, errors.New("bgp speaker not running")
	}
	return n.speaker, nil
}

// KernelRoutes lists the main routing table (IPv4) of h's namespace (nil:
// the calling thread's).
func KernelRoutes(h *netlink.Handle) ([]nodeapi.KernelRoute, error) {
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	names := map[int]string{}
	out := make([]nodeapi.KernelRoute, 0, len(routes))
	for _, r := range routes {
		kr := nodeapi.KernelRoute{Dst: "default", Protocol: protocolName(r.Protocol)}
		if r.Dst != nil {
			kr.Dst = ipNetString(r.Dst)
		}
		if r.Gw != nil {
			kr.Gateway = r.Gw.String()
		}
		if r.LinkIndex > 0 {
			name, ok := names[r.LinkIndex]
			if !ok {
				if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
					name = l.Attrs().Name
				} else {
					name = fmt.Sprintf("if%d", r.LinkIndex)
				}
				names[r.LinkIndex] = name
			}
			kr.Device = name
		}
		out = append(out, kr)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out, nil
}

func ipNetString(n *net.IPNet) string {
	ones, _ := n.Mask.Size()
	if ones == 0 && n.IP.IsUnspecified() {
		return "default"
	}
	return fmt.Sprintf("%v/%d", n.IP, ones)
}

// protocolName names a route protocol as iproute2 does.
func protocolName(p netlink.RouteProtocol) string {
	switch p {
	case bgp.ProtocolBGP:
		return "bgp"
	case unix.RTPROT_KERNEL:
		return "kernel"
	case unix.RTPROT_BOOT:
		return "boot"
	case unix.RTPROT_STATIC:
		return "static"
	case unix.RTPROT_DHCP:
		return "dhcp"
	case unix.RTPROT_UNSPEC:
		return "unspec"
	}
	return fmt.Sprint(int(p))
}
