package bgp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/hoplab/hoplab/bgp"
)

// The node role of the reference topology: node1 (AS 65001, bond0 at
// 10.255.1.11) announces 10.1.1.0/24 to the ToR at its gateway 10.255.1.1
// and installs what it learns into the main table with proto bgp.
func ExampleNewNode() {
	node, err := bgp.NewNode(bgp.NodeConfig{
		ASN:       65001,
		Uplink:    netip.MustParseAddr("10.255.1.11"),
		PodCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")},
		Router:    bgp.Peer{Address: netip.MustParseAddr("10.255.1.1"), ASN: 65000},
		Installer: &bgp.NetlinkInstaller{},
		Logger:    slog.Default(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := node.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer node.Stop()
	if err := node.WaitEstablished(ctx, netip.MustParseAddr("10.255.1.1")); err != nil {
		fmt.Println(err)
		return
	}
	routes, _ := node.Routes(ctx)
	fmt.Print(routes) // bgp routes
}

// The ToR role: it listens on 179, waits for both nodes and installs their
// PodCIDRs via their uplink addresses; the agent turns IP forwarding on.
func ExampleNewRouter() {
	tor, err := bgp.NewRouter(bgp.RouterConfig{
		ASN:      65000,
		RouterID: netip.MustParseAddr("10.255.1.1"),
		Nodes: []bgp.Peer{
			{Address: netip.MustParseAddr("10.255.1.11"), ASN: 65001},
			{Address: netip.MustParseAddr("10.255.2.12"), ASN: 65002},
		},
		Installer: &bgp.NetlinkInstaller{},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := tor.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer tor.Stop()
	peers, _ := tor.Peers(ctx)
	fmt.Print(peers) // bgp peers
}
