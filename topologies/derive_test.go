package topologies

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// reversedPods returns base with the two pods swapped.
func reversedPods() []byte {
	return mutate(map[int]string{13: base[13], 14: base[12]})
}

func TestDerivedValuesAreDeterministicAndOrderIndependent(t *testing.T) {
	a, err := Parse("a.yaml", mutate(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", reversedPods())
	if err != nil {
		t.Fatal(err)
	}
	if b.Pods[0].Name != "pod4" {
		t.Fatal("pods not reversed")
	}
	for _, pa := range a.Pods {
		pb := b.Pod(pa.Name)
		if pa.MAC != pb.MAC || pa.LXCName != pb.LXCName || pa.LXCMAC != pb.LXCMAC || pa.EndpointID != pb.EndpointID || pa.Identity != pb.Identity {
			t.Errorf("%s differs: %+v vs %+v", pa.Name, pa, pb)
		}
	}
	for _, na := range a.Nodes {
		nb := b.Node(na.Name)
		if na.NICMACs != nb.NICMACs || na.TorNICMACs != nb.TorNICMACs || na.BondMAC != nb.BondMAC || na.TorBondMAC != nb.TorBondMAC || na.RouterIP != nb.RouterIP {
			t.Errorf("%s differs", na.Name)
		}
	}
}

// TestDerivedValuesPinned pins the derivation: changing it changes every
// journey's MACs and device names, so it must be a deliberate act.
func TestDerivedValuesPinned(t *testing.T) {
	top, err := Builtin("pod-to-service")
	if err != nil {
		t.Fatal(err)
	}
	pod1, pod4 := top.Pod("pod1"), top.Pod("pod4")
	node1 := top.Node("node1")
	got := fmt.Sprintf("pod1 %s %s %s %d | pod4 %s %s %s %d | node1 %s %s %s %s %s",
		pod1.MAC, pod1.LXCName, pod1.LXCMAC, pod1.EndpointID,
		pod4.MAC, pod4.LXCName, pod4.LXCMAC, pod4.EndpointID,
		node1.BondMAC, node1.NICMACs[1], node1.TorBondMAC, node1.TorNICMACs[1], node1.RouterIP)
	want := "pod1 0a:95:7a:12:68:13 lxc7485d3 0e:6b:0c:06:a5:cb 3422 | pod4 0a:86:f4:ea:d5:80 lxc35598c 0e:b6:f2:73:c5:89 1746 | node1 52:54:71:f1:2b:01 52:54:71:f1:2b:02 52:55:71:f1:2b:01 52:55:71:f1:2b:02 10.1.1.1"
	if got != want {
		t.Errorf("derived values changed:\n got %s\nwant %s", got, want)
	}
}

func TestDerivedValuesUniqueAndWellFormed(t *testing.T) {
	// 300 pods over 3 nodes.
	var b strings.Builder
	b.WriteString("name: big\nrouter: {name: tor, asn: 65000}\nnodes:\n")
	for n := 1; n <= 3; n++ {
		fmt.Fprintf(&b, "  - {name: node%d, asn: %d, podCIDR: 10.%d.0.0/16, uplink: {address: 10.255.%d.11/24, gateway: 10.255.%d.1}}\n", n, 65000+n, n, n, n)
	}
	b.WriteString("pods:\n")
	for i := range 300 {
		n := i%3 + 1
		fmt.Fprintf(&b, "  - {name: p%d, node: node%d, ip: 10.%d.%d.%d, labels: {app: a%d}}\n", i, n, n, i/200+1, i%200+2, i%50)
	}
	top, err := Parse("big.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	macs := map[MAC]string{}
	names := map[string]bool{}
	ids := map[uint16]bool{}
	addMAC := func(m MAC, what string) {
		if prev, dup := macs[m]; dup {
			t.Errorf("MAC %s of %s already used by %s", m, what, prev)
		}
		macs[m] = what
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("MAC %s of %s is not locally administered unicast", m, what)
		}
	}
	for _, p := range top.Pods {
		addMAC(p.MAC, p.Name)
		addMAC(p.LXCMAC, p.LXCName)
		if len(p.LXCName) > 15 || !strings.HasPrefix(p.LXCName, "lxc") || names[p.LXCName] {
			t.Errorf("bad or duplicate lxc name %q", p.LXCName)
		}
		names[p.LXCName] = true
		if p.EndpointID < 1 || p.EndpointID > MaxEndpointID || ids[p.EndpointID] {
			t.Errorf("bad or duplicate endpoint ID %d", p.EndpointID)
		}
		ids[p.EndpointID] = true
	}
	for _, n := range top.Nodes {
		for i := range 2 {
			addMAC(n.NICMACs[i], n.Name+" nic")
			addMAC(n.TorNICMACs[i], n.Name+" tor nic")
		}
		if n.BondMAC != n.NICMACs[0] || n.TorBondMAC != n.TorNICMACs[0] {
			t.Errorf("%s: bond MACs are not the first NIC's", n.Name)
		}
	}
}

func TestPinnedMACIsKeptAndAvoided(t *testing.T) {
	// Pin pod4's MAC to the one pod1 would derive: pod1 must move.
	pod1MAC := podMACCandidate("pod1", 0)
	top, err := Parse("t.yaml", mutate(map[int]string{
		14: fmt.Sprintf("  - {name: pod4, node: node2, ip: 10.1.2.40, mac: %q, labels: {app: b}, listen: [\"tcp/8080\"]}", pod1MAC),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p := top.Pod("pod4"); p.MAC != pod1MAC || !p.MACPinned {
		t.Errorf("pod4 MAC %s pinned=%v, want %s", p.MAC, p.MACPinned, pod1MAC)
	}
	if got := top.Pod("pod1").MAC; got == pod1MAC || got != podMACCandidate("pod1", 1) {
		t.Errorf("pod1 MAC %s: want the next candidate %s", got, podMACCandidate("pod1", 1))
	}
}

func TestPickResolvesCollisionsDeterministically(t *testing.T) {
	clash := func(name string, attempt int) int { return attempt } // every name wants 0
	used := map[int]bool{}
	if a, b, c := pick(used, "x", clash), pick(used, "y", clash), pick(used, "z", clash); a != 0 || b != 1 || c != 2 {
		t.Errorf("got %d %d %d", a, b, c)
	}
}

func TestTooManyPods(t *testing.T) {
	many := func(n int) []byte {
		var b strings.Builder
		b.WriteString("name: many\nrouter: {name: tor, asn: 65000}\nnodes:\n  - {name: n1, asn: 65001, podCIDR: 10.0.0.0/8, uplink: {address: 192.168.0.2/24, gateway: 192.168.0.1}}\npods:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: p%d, node: n1, ip: 10.0.%d.%d}\n", i, i/200+1, i%200+2)
		}
		return []byte(b.String())
	}
	_, err := Parse("many.yaml", many(MaxEndpointID+1))
	if err == nil || !strings.Contains(err.Error(), "4096 pods: at most 4095 are supported") {
		t.Fatalf("error %v", err)
	}
	// Exactly the most is fine.
	if _, err := Parse("many.yaml", many(MaxEndpointID)); err != nil {
		t.Fatalf("%d pods: %v", MaxEndpointID, err)
	}
}

// Node MACs: a node whose first candidate is taken moves to its next one,
// whether a pinned pod or another node took it, and which node keeps the
// contested candidate does not depend on the YAML order: the first by name.
// "node-9255" and "node-10628" hash to the same 24 bits, so their first
// candidates collide.
func TestNodeMACCollisions(t *testing.T) {
	first := func(name string) MAC { nic, _ := nodeMACCandidates(name, 0); return nic[0] }
	if first("node-9255") != first("node-10628") {
		t.Fatal("the two node names no longer collide; find another pair")
	}
	yaml := func(a, b string) []byte {
		return mutate(map[int]string{4: "  - name: " + a, 8: "  - name: " + b,
			13: "  - {name: pod1, node: " + a + ", ip: 10.1.1.10, labels: {app: a}}",
			14: "  - {name: pod4, node: " + b + ", ip: 10.1.2.40, labels: {app: b}, listen: [\"tcp/8080\"]}"})
	}
	for _, order := range [][2]string{{"node-9255", "node-10628"}, {"node-10628", "node-9255"}} {
		top, err := Parse("t.yaml", yaml(order[0], order[1]))
		if err != nil {
			t.Fatal(err)
		}
		// "node-10628" < "node-9255": it keeps the contested candidate.
		if got := top.Node("node-10628").BondMAC; got != first("node-10628") {
			t.Errorf("order %v: node-10628 bond MAC %s, want its first candidate %s", order, got, first("node-10628"))
		}
		nic1, _ := nodeMACCandidates("node-9255", 1)
		if got := top.Node("node-9255").BondMAC; got != nic1[0] {
			t.Errorf("order %v: node-9255 bond MAC %s, want its second candidate %s", order, got, nic1[0])
		}
	}

	// A pod pinned to any of node2's four first MACs pushes node2 to its
	// next candidates, all four of them.
	nic, tor := nodeMACCandidates("node2", 0)
	nic1, tor1 := nodeMACCandidates("node2", 1)
	for _, pinned := range []MAC{nic[0], nic[1], tor[0], tor[1]} {
		top, err := Parse("t.yaml", mutate(map[int]string{
			14: fmt.Sprintf("  - {name: pod4, node: node2, ip: 10.1.2.40, mac: %q, labels: {app: b}, listen: [\"tcp/8080\"]}", pinned),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if n := top.Node("node2"); n.NICMACs != nic1 || n.TorNICMACs != tor1 {
			t.Errorf("pod pinned to %s: node2 MACs %v %v, want its second candidates %v %v", pinned, n.NICMACs, n.TorNICMACs, nic1, tor1)
		}
	}
}

// Pods whose endpoint IDs collide: the first by name keeps its preferred
// ID whatever the YAML order, the other takes its next candidate.
// "pod-61" and "pod-76" both prefer endpoint ID 593.
func TestEndpointIDCollision(t *testing.T) {
	if endpointIDCandidate("pod-61", 0) != endpointIDCandidate("pod-76", 0) {
		t.Fatal("pod-61 and pod-76 no longer collide; find another pair")
	}
	for _, order := range [][2]string{{"pod-61", "pod-76"}, {"pod-76", "pod-61"}} {
		top, err := Parse("t.yaml", mutate(map[int]string{
			13: "  - {name: " + order[0] + ", node: node1, ip: 10.1.1.10, labels: {app: a}}",
			14: "  - {name: " + order[1] + ", node: node2, ip: 10.1.2.40, labels: {app: b}, listen: [\"tcp/8080\"]}",
			16: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"" + order[1] + ":8080\"]}",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got := top.Pod("pod-61").EndpointID; got != endpointIDCandidate("pod-61", 0) {
			t.Errorf("order %v: pod-61 endpoint ID %d, want its first candidate %d", order, got, endpointIDCandidate("pod-61", 0))
		}
		if got := top.Pod("pod-76").EndpointID; got == endpointIDCandidate("pod-61", 0) {
			t.Errorf("order %v: pod-76 shares endpoint ID %d", order, got)
		}
	}
}

func TestDeriveExternals(t *testing.T) {
	top, err := Parse("t.yaml", mutate(map[int]string{22: "socketLB: true", 23: "externals:", 24: "  - {name: laptop, ip: 192.0.2.50}", 25: "  - {name: phone, ip: 198.51.100.7}"}))
	if err != nil {
		t.Fatal(err)
	}
	if !top.SocketLB {
		t.Error("socketLB: true not kept")
	}
	l, p := top.External("laptop"), top.External("phone")
	if l == nil || p == nil || top.ExternalByIP(netip.MustParseAddr("198.51.100.7")) != p || top.External("pod1") != nil {
		t.Fatalf("lookup: %+v %+v", l, p)
	}
	if l.Gateway != netip.MustParseAddr("192.0.2.1") || p.Gateway != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("gateways %s %s", l.Gateway, p.Gateway)
	}
	macs := map[MAC]bool{}
	for _, m := range []MAC{l.MAC, l.RouterMAC, p.MAC, p.RouterMAC, top.Pod("pod1").MAC, top.Pod("pod1").LXCMAC} {
		if macs[m] || m.IsZero() || m[0]&1 != 0 {
			t.Errorf("MAC %s repeated, zero or multicast", m)
		}
		macs[m] = true
	}
	if !strings.HasPrefix(l.RouterDevice, "ext") || len(l.RouterDevice) != 9 || l.RouterDevice == p.RouterDevice {
		t.Errorf("router devices %q %q", l.RouterDevice, p.RouterDevice)
	}
	again, _ := Parse("t.yaml", mutate(map[int]string{22: "externals:", 23: "  - {name: phone, ip: 198.51.100.7}", 24: "  - {name: laptop, ip: 192.0.2.50}"}))
	if again.External("laptop").MAC != l.MAC || again.External("laptop").RouterDevice != l.RouterDevice {
		t.Error("derived values depend on file order")
	}
}

// TestDeriveExternalsCollision: h3498 and h9616 hash to the same router
// device name (ext05c29f); the first by name keeps it, whatever the file
// order, and the other takes its next candidate.
func TestDeriveExternalsCollision(t *testing.T) {
	for _, order := range [][2]string{{"h3498", "h9616"}, {"h9616", "h3498"}} {
		top, err := Parse("t.yaml", mutate(map[int]string{22: "externals:",
			23: "  - {name: " + order[0] + ", ip: 192.0.2.50}", 24: "  - {name: " + order[1] + ", ip: 192.0.2.60}"}))
		if err != nil {
			t.Fatal(err)
		}
		a, b := top.External("h3498"), top.External("h9616")
		if a.RouterDevice != "ext05c29f" || b.RouterDevice == "ext05c29f" || !strings.HasPrefix(b.RouterDevice, "ext") {
			t.Errorf("order %v: devices %s, %s", order, a.RouterDevice, b.RouterDevice)
		}
	}
}
