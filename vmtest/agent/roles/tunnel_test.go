package roles

import (
	"context"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestTunnelModeSetup: a tunnel-mode node gets cilium_vxlan (collect
// metadata, UDP 8472, no learning) with from-overlay at its ingress, pods
// whose MTU leaves room for VXLAN, and ipcache entries that send remote
// pods to their node's uplink address; a node-update cannot change the
// mode, and Close removes the device.
func TestTunnelModeSetup(t *testing.T) {
	text := topologyText(t, "tunnel")
	n, top, _ := testNode(t, "tunnel.yaml", text, "node1")
	ctx := context.Background()

	l, err := netlink.LinkByName(TunnelDevice)
	must(t, err)
	vx, ok := l.(*netlink.Vxlan)
	if !ok || !vx.FlowBased || vx.Port != datapath.VXLANPort || vx.Learning || l.Attrs().OperState == netlink.OperDown {
		t.Fatalf("%s: %+v", TunnelDevice, l)
	}
	rows, err := n.TCList(ctx)
	must(t, err)
	found := false
	for _, r := range rows {
		if r.Device == TunnelDevice {
			if r.Hook != nodeapi.TCIngress || r.Program != "from-overlay" || found {
				t.Errorf("on %s: %+v", TunnelDevice, r)
			}
			found = true
		}
	}
	if !found {
		t.Errorf("nothing attached to %s: %+v", TunnelDevice, rows)
	}
	bond, err := netlink.LinkByName("bond0")
	must(t, err)
	for _, p := range top.PodsOn("node1") {
		lxc, err := netlink.LinkByName(p.LXCName)
		must(t, err)
		if got, want := lxc.Attrs().MTU, bond.Attrs().MTU-TunnelOverhead; got != want {
			t.Errorf("%s MTU %d, want %d", p.LXCName, got, want)
		}
		ns, err := netns.GetFromName(n.opts.NetNSPrefix + p.Name)
		must(t, err)
		h, err := netlink.NewHandleAt(ns)
		must(t, err)
		eth0, err := h.LinkByName("eth0")
		must(t, err)
		if eth0.Attrs().MTU != bond.Attrs().MTU-TunnelOverhead {
			t.Errorf("%s eth0 MTU %d", p.Name, eth0.Attrs().MTU)
		}
		h.Close()
		ns.Close()
	}
	ipc, err := n.IPCacheList(ctx)
	must(t, err)
	tunnels := map[string]string{}
	for _, r := range ipc {
		tunnels[r.Prefix] = r.Tunnel
	}
	if tunnels["10.1.2.40/32"] != "10.255.2.12" || tunnels["10.1.1.10/32"] != "" {
		t.Errorf("ipcache tunnel endpoints: pod4 %q (want node2's 10.255.2.12), pod1 %q (want none): %+v", tunnels["10.1.2.40/32"], tunnels["10.1.1.10/32"], ipc)
	}
	direct := topologyText(t, "pod-to-service")
	if _, err := n.Update(ctx, nodeapi.Update{Topology: direct, File: "direct.yaml"}); err == nil ||
		err.Error() != "direct.yaml: mode direct-routing: a node set up in tunnel mode changes mode only by a new setup" {
		t.Errorf("update to direct routing: %v", err)
	}
	must(t, n.Close())
	if _, err := netlink.LinkByName(TunnelDevice); err == nil {
		t.Errorf("%s left after Close", TunnelDevice)
	}
}

// A direct-routing node has no VXLAN device and full-size pod MTUs.
func TestDirectRoutingHasNoTunnel(t *testing.T) {
	n, top, _ := testNode(t, "pod-to-service.yaml", topologyText(t, "pod-to-service"), "node1")
	if _, err := netlink.LinkByName(TunnelDevice); err == nil {
		t.Errorf("%s exists in direct routing", TunnelDevice)
	}
	lxc, err := netlink.LinkByName(top.PodsOn("node1")[0].LXCName)
	must(t, err)
	if lxc.Attrs().MTU != 1500 {
		t.Errorf("lxc MTU %d in direct routing", lxc.Attrs().MTU)
	}
	_ = n
}
