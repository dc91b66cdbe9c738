package roles

import (
	"context"
	"net"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestSetupPodToService builds node1 and node2 of the reference topology
// and checks pods, tc attachment and every map against the topology.
func TestSetupPodToService(t *testing.T) {
	text := topologyText(t, "pod-to-service")
	for _, node := range []string{"node1", "node2"} {
		t.Run(node, func(t *testing.T) {
			n, top, _ := testNode(t, "pod-to-service.yaml", text, node)
			checkPods(t, n, top, node)
			checkAttached(t, top, node)
			checkMaps(t, n, top, node)
		})
	}
}

// checkPods: every pod of the node has its namespace, eth0 with the
// topology's MAC and /32, a default route via the router IP whose
// neighbour entry is the lxc MAC, and its lxc device with the lxc MAC.
func checkPods(t *testing.T, n *Node, top *topologies.Topology, node string) {
	t.Helper()
	tn := top.Node(node)
	for _, p := range top.PodsOn(node) {
		t.Logf("%s: eth0 %v %v, lxc %s %v, gateway %v", p.Name, p.IP, p.MAC, p.LXCName, p.LXCMAC, tn.RouterIP)
		lxc, err := netlink.LinkByName(p.LXCName)
		must(t, err)
		if got := lxc.Attrs().HardwareAddr.String(); got != p.LXCMAC.String() {
			t.Errorf("%s: lxc MAC %s, want %s", p.LXCName, got, p.LXCMAC)
		}
		ns, err := netns.GetFromName(n.opts.NetNSPrefix + p.Name)
		must(t, err)
		h, err := netlink.NewHandleAt(ns)
		must(t, err)
		eth0, err := h.LinkByName("eth0")
		must(t, err)
		if got := eth0.Attrs().HardwareAddr.String(); got != p.MAC.String() {
			t.Errorf("%s: eth0 MAC %s, want %s", p.Name, got, p.MAC)
		}
		addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
		must(t, err)
		if len(addrs) != 1 || addrs[0].IPNet.String() != p.IP.String()+"/32" {
			t.Errorf("%s: eth0 addresses %v, want %v/32", p.Name, addrs, p.IP)
		}
		neighs, err := h.NeighList(eth0.Attrs().Index, netlink.FAMILY_V4)
		must(t, err)
		found := false
		for _, nb := range neighs {
			if nb.IP.Equal(net.IP(tn.RouterIP.AsSlice())) {
				found = true
				if nb.HardwareAddr.String() != p.LXCMAC.String() || nb.State != netlink.NUD_PERMANENT {
					t.Errorf("%s: neighbour %v -> %v state %#x, want %v permanent", p.Name, nb.IP, nb.HardwareAddr, nb.State, p.LXCMAC)
				}
			}
		}
		if !found {
			t.Errorf("%s: no neighbour entry for gateway %v", p.Name, tn.RouterIP)
		}
		routes, err := h.RouteList(eth0, netlink.FAMILY_V4)
		must(t, err)
		def := false
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				def = r.Gw.Equal(net.IP(tn.RouterIP.AsSlice()))
			}
		}
		if !def {
			t.Errorf("%s: no default route via %v: %v", p.Name, tn.RouterIP, routes)
		}
		h.Close()
		ns.Close()
	}
}

// checkAttached: from-container at every lxc's ingress, from-netdev and
// to-netdev at bond0's ingress and egress, all direct-action BPF filters.
func checkAttached(t *testing.T, top *topologies.Topology, node string) {
	t.Helper()
	want := map[string][]uint32{"bond0": {netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS}}
	for _, p := range top.PodsOn(node) {
		want[p.LXCName] = []uint32{netlink.HANDLE_MIN_INGRESS}
	}
	for dev, parents := range want {
		l, err := netlink.LinkByName(dev)
		must(t, err)
		for _, parent := range parents {
			fs, err := netlink.FilterList(l, parent)
			must(t, err)
			ok := false
			for _, f := range fs {
				if bf, isBPF := f.(*netlink.BpfFilter); isBPF && bf.DirectAction {
					ok = true
					t.Logf("%s %#x: bpf filter %q", dev, parent, bf.Name)
				}
			}
			if !ok {
				t.Errorf("%s: no direct-action BPF filter at parent %#x: %v", dev, parent, fs)
			}
		}
		if dev != "bond0" {
			fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_EGRESS)
			if err == nil && len(fs) != 0 {
				t.Errorf("%s: filters at egress %v, want none (to-container is tail-called)", dev, fs)
			}
		}
	}
}

// checkMaps: endpoint, service, policy and ipcache maps hold exactly what
// the topology implies for the node.
func checkMaps(t *testing.T, n *Node, top *topologies.Topology, node string) {
	t.Helper()
	ctx := context.Background()
	eps, err := n.EndpointList(ctx)
	must(t, err)
	var want []nodeapi.EndpointRow
	for _, p := range top.PodsOn(node) {
		pol, err := top.EndpointPolicy(p.Name)
		must(t, err)
		lxc, err := netlink.LinkByName(p.LXCName)
		must(t, err)
		want = append(want, nodeapi.EndpointRow{
			ID: p.EndpointID, Pod: p.Name, IP: p.IP.String(), Identity: uint32(p.Identity), Labels: p.Labels.String(),
			Device: p.LXCName, IfIndex: lxc.Attrs().Index, LXCMAC: p.LXCMAC.String(), PodMAC: p.MAC.String(),
			IngressEnforce: pol.IngressEnforced, EgressEnforce: pol.EgressEnforced,
		})
	}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("endpoints\n got %+v\nwant %+v", eps, want)
	}

	lb, err := n.LBList(ctx)
	must(t, err)
	wantLB := []nodeapi.ServiceRow{{Frontend: "10.224.1.1:80/TCP", ID: 1, Backends: []nodeapi.BackendRow{{ID: 1, Address: "10.1.2.40:8080", Pod: "pod4"}}}}
	if !reflect.DeepEqual(lb, wantLB) {
		t.Errorf("services\n got %+v\nwant %+v", lb, wantLB)
	}
	svc, err := n.dp.Services.Lookup(top.Services[0].VIP, 80, datapath.ProtoTCP)
	must(t, err)
	if rev, err := n.dp.RevNAT.Lookup(svc.ID); err != nil || rev.String() != "10.224.1.1:80" {
		t.Errorf("rev-NAT %d: %v %v, want 10.224.1.1:80", svc.ID, rev, err)
	}

	rules, err := n.dp.Policy.Entries()
	must(t, err)
	var gotPol, wantPol []datapath.PolicyKey
	for _, r := range rules {
		gotPol = append(gotPol, r.Key)
	}
	for _, p := range top.PodsOn(node) {
		entries, err := top.PolicyEntries(p.Name)
		must(t, err)
		for _, e := range entries {
			wantPol = append(wantPol, datapath.PolicyKey{Endpoint: p.EndpointID, Direction: datapath.Direction(e.Direction),
				Identity: datapath.Identity(e.RemoteIdentity), Port: e.Port, Proto: datapath.Proto(e.Proto)})
		}
	}
	if len(gotPol) != len(wantPol) || (len(wantPol) > 0 && !reflect.DeepEqual(gotPol, wantPol)) {
		t.Errorf("policy\n got %v\nwant %v", gotPol, wantPol)
	}
	if node == "node2" && len(wantPol) != 1 {
		t.Errorf("node2: pod4 should have one L3L4 entry, topology gives %v", wantPol)
	}
	for _, p := range top.PodsOn(node) {
		rows, err := n.PolicyGet(ctx, nodeapi.PolicyGet{Endpoint: p.Name})
		must(t, err)
		t.Logf("policy of %s: %+v", p.Name, rows)
	}

	ipc, err := n.IPCacheList(ctx)
	must(t, err)
	var wantIPC []nodeapi.IPCacheRow
	for _, e := range top.IPCache(node) {
		wantIPC = append(wantIPC, nodeapi.IPCacheRow{Prefix: e.Prefix.String(), Identity: uint32(e.Identity)})
	}
	if !reflect.DeepEqual(ipc, wantIPC) {
		t.Errorf("ipcache\n got %+v\nwant %+v", ipc, wantIPC)
	}
	t.Logf("ipcache: %d entries", len(ipc))
}
