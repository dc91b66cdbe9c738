package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/hoplab/hoplab/internal/vxlan"
)

// Tunnel mode under BPF_PROG_TEST_RUN. The test node's VXLAN device is
// ifindex tunnelIfIndex (no device exists: the program's redirect target is
// what matters), and node2's PodCIDR is reached through node2IP.
// BPF_PROG_TEST_RUN does not show the tunnel key from-container sets
// (TestTunnelOnTheWire captures it); from-overlay is run through
// overlayHarness, which sets the key a VXLAN device would have.
const tunnelIfIndex = 42

var node2IP = netip.MustParseAddr("10.255.2.12")

// loadTunnelDatapath is loadDatapath in tunnel mode: node2's PodCIDR has
// node2 as tunnel endpoint.
func loadTunnelDatapath(t testing.TB) *Datapath {
	t.Helper()
	dp := loadDatapath(t)
	must(t, dp.SetTunnelDevice(tunnelIfIndex))
	must(t, dp.IPCache.Upsert(pfx("10.1.2.0/24"), IPCacheEntry{Identity: pod4ID, TunnelEndpoint: node2IP}))
	return dp
}

// overlayHarness is a test program that does what a collect-metadata
// VXLAN device does before its tc ingress, set the tunnel key of the
// packet (VNI from skb->cb[0], remote node from skb->cb[1], host byte
// order), and then tail-calls from-overlay. It returns TC_ACT_SHOT if the
// tail call fails.
func overlayHarness(t testing.TB, dp *Datapath) *ebpf.Program {
	t.Helper()
	calls, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	must(t, err)
	t.Cleanup(func() { calls.Close() })
	must(t, calls.Put(uint32(0), dp.FromOverlay))
	const cb0, cb1 = 48, 52 // offsetof(struct __sk_buff, cb[0]), cb[1]
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R3, 0),
			asm.StoreMem(asm.RFP, -32, asm.R3, asm.DWord),
			asm.StoreMem(asm.RFP, -24, asm.R3, asm.DWord),
			asm.StoreMem(asm.RFP, -16, asm.R3, asm.DWord),
			asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
			asm.LoadMem(asm.R2, asm.R6, cb0, asm.Word),
			asm.StoreMem(asm.RFP, -32, asm.R2, asm.Word), // tunnel_id
			asm.LoadMem(asm.R2, asm.R6, cb1, asm.Word),
			asm.StoreMem(asm.RFP, -28, asm.R2, asm.Word), // remote_ipv4
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -32),
			asm.Mov.Imm(asm.R3, 28), // sizeof(struct bpf_tunnel_key) in 4.19
			asm.Mov.Imm(asm.R4, 0),
			asm.FnSkbSetTunnelKey.Call(),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, calls.FD()),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, tcActShot),
			asm.Return(),
		},
	})
	must(t, err)
	t.Cleanup(func() { prog.Close() })
	return prog
}

// tunnelCB is the skb->cb that makes overlayHarness deliver a packet sent
// by a node at remote with VNI vni.
func tunnelCB(vni Identity, remote netip.Addr) *[5]uint32 {
	return &[5]uint32{uint32(vni), binary.BigEndian.Uint32(remote.AsSlice()), 0, 0, 0}
}

// fromNode2 is a packet from pod4's address as node2's VXLAN device hands
// it over after decapsulation: as pod4 sent it, TTL 64, pod4's MACs.
func fromNode2(dst netip.Addr, sport, dport uint16) pkt {
	return pkt{srcMAC: mustMAC("0a:00:00:01:02:40"), dstMAC: mustMAC("0a:00:00:f1:02:40"), src: pod4IP, dst: dst,
		ttl: 64, proto: ProtoTCP, sport: sport, dport: dport, syn: true, payload: []byte("hello")}
}

// pod1 → pod4 (node2) in tunnel mode: from-container leaves the packet as
// it is (TTL and MACs too: the kernel does not route it), emits to-overlay
// with pod4's identity and the VXLAN device, redirects there, and creates
// the egress CT entry as in direct routing. The ACK that follows is
// established and goes the same way.
func TestTunnelEncapsulatesToRemotePod(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)

	t.Log("pod1 sends SYN to pod4:8080")
	in := fromPod(pod1, pod4IP, 8080)
	res := run(t, dp.FromContainer, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	res.assertPacket(t, in.bytes(t))

	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromLXC || tr[1].ObsPoint != TraceToOverlay {
		t.Fatalf("traces %v, want from-container then to-overlay", tr)
	}
	if o := tr[1]; o.IfIndex != tunnelIfIndex || o.SrcIdentity != pod1.identity || o.DstIdentity != pod4ID ||
		o.Reason != TraceReasonPolicy || o.Source != pod1.id || string(o.Data) != string(in.bytes(t)) {
		t.Errorf("to-overlay trace %+v", o)
	}
	out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
	if out.SrcIdentity != pod1.identity || out.TxPackets != 1 {
		t.Errorf("egress entry %v", out)
	}
	if m := metric(t, dp, ReasonForwarded, Egress); m.Packets != 1 {
		t.Errorf("forwarded egress metric %+v", m)
	}

	t.Log("pod1's ACK is established and goes into the tunnel too")
	ack := in
	ack.syn, ack.ack = false, true
	res = run(t, dp.FromContainer, ack.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	res.assertPacket(t, ack.bytes(t))
	tr = traces(drain(t, events))
	if len(tr) != 2 || tr[1].ObsPoint != TraceToOverlay || tr[1].Reason != TraceReasonCTEstablished ||
		tr[1].IfIndex != tunnelIfIndex || tr[1].DstIdentity != pod4ID {
		t.Fatalf("traces %v, want from-container then to-overlay (established)", tr)
	}
	if out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}); out.TxPackets != 2 {
		t.Errorf("egress entry after the ACK: %v", out)
	}
}

// Tunnel mode only takes packets whose destination has a tunnel endpoint:
// with the mode off, for an address outside the cluster, or for a local
// pod, the datapath does what it does in direct routing.
func TestTunnelOnlyForRemotePods(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)

	t.Log("tunnel mode off: pod1 → pod4 goes to the stack, though the ipcache has a tunnel endpoint")
	must(t, dp.SetTunnelDevice(0))
	if got, err := dp.TunnelDevice(); err != nil || got != 0 {
		t.Fatalf("tunnel device %d, %v; want 0", got, err)
	}
	run(t, dp.FromContainer, fromPod(pod1, pod4IP, 8080).bytes(t), nil).assertVerdict(t, tcActOK)
	if tr := traces(drain(t, events)); len(tr) != 2 || tr[1].ObsPoint != TraceToStack {
		t.Fatalf("traces %v, want from-container then to-stack", tr)
	}

	must(t, dp.SetTunnelDevice(tunnelIfIndex))
	if got, err := dp.TunnelDevice(); err != nil || got != tunnelIfIndex {
		t.Fatalf("tunnel device %d, %v; want %d", got, err, tunnelIfIndex)
	}
	t.Log("tunnel mode on, a world address: to the stack")
	run(t, dp.FromContainer, fromPod(pod1, worldIP, 443).bytes(t), nil).assertVerdict(t, tcActOK)
	if tr := traces(drain(t, events)); len(tr) != 2 || tr[1].ObsPoint != TraceToStack || tr[1].DstIdentity != IdentityWorld {
		t.Fatalf("traces %v, want from-container then to-stack", tr)
	}

	t.Log("tunnel mode on, pod2 on this node: local delivery (TTL 63, pod2's MACs, redirect to lxc2)")
	in := fromPod(pod1, pod2.addr(), 8080)
	res := run(t, dp.FromContainer, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := in
	want.ttl, want.srcMAC, want.dstMAC = 63, pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[1].ObsPoint != TraceToLXC || tr[1].IfIndex != uint32(pod2.ifindex) {
		t.Fatalf("traces %v, want from-container then to-container of pod2", tr)
	}

	t.Log("monitor aggregation keeps the tunnel mode")
	must(t, dp.SetMonitorAggregation(AggregationMedium))
	if got, err := dp.TunnelDevice(); err != nil || got != tunnelIfIndex {
		t.Fatalf("tunnel device after SetMonitorAggregation: %d, %v", got, err)
	}
}

// The ifindex given at load turns tunnel mode on.
func TestTunnelModeAtLoad(t *testing.T) {
	loadDatapath(t) // root, memlock
	dp, err := Load(Options{CTEntries: 1024, TunnelIfIndex: 7})
	must(t, err)
	defer dp.Close()
	if got, err := dp.TunnelDevice(); err != nil || got != 7 {
		t.Fatalf("tunnel device %d, %v; want 7", got, err)
	}
	if _, err := Load(Options{CTEntries: 1024, TunnelIfIndex: -1}); err == nil {
		t.Fatal("negative tunnel ifindex accepted")
	}
}

// pod1 → Service 10.224.1.1:80 with its backend pod4 on node2: DNAT at
// from-container, then the tunnel towards the backend's node. pod4's
// SYN-ACK comes back through node1's VXLAN device: from-overlay takes
// pod4's identity from the VNI, routes it (TTL 63) into pod1's
// to-container, which finds the REPLY and rewrites the source back to the
// service.
func TestTunnelServiceRoundTrip(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))

	t.Log("pod1 sends SYN to 10.224.1.1:80: DNAT to pod4:8080, into the tunnel")
	in := fromPod(pod1, vip, 80)
	res := run(t, dp.FromContainer, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	dnat := in
	dnat.dst, dnat.dport = pod4IP, 8080
	res.assertPacket(t, dnat.bytes(t))
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[1].ObsPoint != TraceToOverlay || tr[1].IfIndex != tunnelIfIndex || string(tr[1].Data) != string(dnat.bytes(t)) {
		t.Fatalf("traces %v, want from-container then to-overlay with the DNATed packet", tr)
	}
	svc := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
	out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
	if svc.BackendID != 1 || out.RevNAT != 1 {
		t.Errorf("service entry %v, egress entry %v", svc, out)
	}

	t.Log("pod4 answers SYN-ACK; node2 sent it with VNI = pod4's identity")
	reply := fromNode2(pod1.addr(), 8080, 40000)
	reply.ack, reply.payload = true, nil
	res = run(t, overlayHarness(t, dp), reply.bytes(t), tunnelCB(pod4ID, node2IP))
	res.assertVerdict(t, tcActRedirect)
	want := reply
	want.src, want.sport, want.ttl = vip, 80, 63
	want.srcMAC, want.dstMAC = pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, want.bytes(t))
	tr = traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromOverlay || tr[1].ObsPoint != TraceToLXC {
		t.Fatalf("traces %v, want from-overlay then to-container", tr)
	}
	if tr[0].SrcIdentity != pod4ID || tr[1].SrcIdentity != pod4ID || tr[1].Reason != TraceReasonCTReply {
		t.Errorf("traces %+v %+v: want pod4's identity, a reply", tr[0], tr[1])
	}
	if out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}); out.RxPackets != 1 {
		t.Errorf("egress entry after the reply: %v", out)
	}
}

// from-overlay takes the sender's identity from the VNI, not from the
// ipcache: pod1 admits identity 3001 on 8080. A SYN from pod4's address
// with VNI 3001 is delivered although the ipcache says pod4's address is
// pod4ID; with VNI 3002 it is dropped with "Policy denied" and the drop
// names identity 3002, although the ipcache now says 3001.
func TestFromOverlayIdentityFromVNI(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)
	const allowed, denied = Identity(3001), Identity(3002)
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Ingress, allowed, 8080, ProtoTCP)))
	harness := overlayHarness(t, dp)

	t.Log("VNI 3001 (the ipcache says pod4ID): delivered to pod1, TTL 63")
	in := fromNode2(pod1.addr(), 41000, 8080)
	res := run(t, harness, in.bytes(t), tunnelCB(allowed, node2IP))
	res.assertVerdict(t, tcActRedirect)
	want := in
	want.ttl, want.srcMAC, want.dstMAC = 63, pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, want.bytes(t))
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromOverlay || tr[1].ObsPoint != TraceToLXC {
		t.Fatalf("traces %v, want from-overlay then to-container", tr)
	}
	if tr[0].SrcIdentity != allowed || tr[0].IfIndex == 0 || tr[1].SrcIdentity != allowed || tr[1].DstIdentity != pod1.identity ||
		tr[1].Reason != TraceReasonPolicy || tr[1].IfIndex != uint32(pod1.ifindex) {
		t.Errorf("traces %+v %+v", tr[0], tr[1])
	}
	e := ctEntry(t, dp, CTKey{Src: ap(pod4IP, 41000), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	if e.SrcIdentity != allowed || e.TxPackets != 1 {
		t.Errorf("ingress entry %v: want source identity %d", e, allowed)
	}

	t.Log("VNI 3002 (the ipcache says 3001): Policy denied, the drop names 3002")
	must(t, dp.IPCache.Upsert(netip.PrefixFrom(pod4IP, 32), IPCacheEntry{Identity: allowed, TunnelEndpoint: node2IP}))
	in.sport = 41001
	run(t, harness, in.bytes(t), tunnelCB(denied, node2IP)).assertVerdict(t, tcActShot)
	ds := drops(drain(t, events))
	if len(ds) != 1 || ds[0].Reason != DropPolicy || ds[0].SrcIdentity != denied || ds[0].DstIdentity != pod1.identity {
		t.Fatalf("drops %v, want one Policy denied from identity %d", ds, denied)
	}
	if _, err := dp.CT.Lookup(CTKey{Src: ap(pod4IP, 41001), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn}); err == nil {
		t.Error("the denied SYN left a CT entry")
	}
	if m := metric(t, dp, DropPolicy, Ingress); m.Packets != 1 {
		t.Errorf("Policy denied ingress metric %+v", m)
	}
}

// What from-overlay refuses or passes on: a packet without tunnel key
// (not from a VXLAN device), VNI 0 or the host's identity, which no node
// sends, and a packet for an address that is no local pod (to the stack).
func TestFromOverlayEdges(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)
	harness := overlayHarness(t, dp)
	in := fromNode2(pod1.addr(), 41000, 8080).bytes(t)

	t.Log("no tunnel key: Error retrieving tunnel key")
	run(t, dp.FromOverlay, in, nil).assertVerdict(t, tcActShot)
	if ds := drops(drain(t, events)); len(ds) != 1 || ds[0].Reason != DropNoTunnelKey {
		t.Fatalf("drops %v, want one %v", ds, DropNoTunnelKey)
	}
	// from-overlay counts its drops as ingress, as Cilium's bpf_overlay.
	if in, eg := metric(t, dp, DropNoTunnelKey, Ingress), metric(t, dp, DropNoTunnelKey, Egress); in.Packets != 1 || eg.Packets != 0 {
		t.Errorf("%v counted ingress %d, egress %d; want 1 ingress", DropNoTunnelKey, in.Packets, eg.Packets)
	}
	for _, vni := range []Identity{IdentityUnknown, IdentityHost} {
		t.Logf("VNI %d: Invalid identity", vni)
		run(t, harness, in, tunnelCB(vni, node2IP)).assertVerdict(t, tcActShot)
		if ds := drops(drain(t, events)); len(ds) != 1 || ds[0].Reason != DropInvalidIdentity || ds[0].SrcIdentity != vni {
			t.Fatalf("drops %v, want one %v from %d", ds, DropInvalidIdentity, vni)
		}
	}
	t.Log("for this node's address: to the stack unchanged, after a from-overlay trace")
	toHost := fromNode2(node1IP, 41000, 22)
	res := run(t, harness, toHost.bytes(t), tunnelCB(pod4ID, node2IP))
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, toHost.bytes(t))
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceFromOverlay || tr[0].SrcIdentity != pod4ID {
		t.Fatalf("traces %v, want one from-overlay", tr)
	}
	t.Log("ARP passes untouched")
	arp := make([]byte, 42)
	copy(arp[12:], []byte{0x08, 0x06})
	run(t, harness, arp, tunnelCB(pod4ID, node2IP)).assertVerdict(t, tcActOK)
}

// The datapath's VXLAN port is one the capture reader and the journey open
// (package vxlan holds that list).
func TestVXLANPortIsOpened(t *testing.T) {
	if !vxlan.Ports[VXLANPort] {
		t.Errorf("VXLANPort %d is not in vxlan.Ports %v", VXLANPort, vxlan.Ports)
	}
}

// With medium aggregation, tunnel mode reports like direct routing: the
// to-overlay trace of a new flow without TCP flags (UDP) and of a SYN, none
// for an established ACK.
func TestTunnelMonitorAggregation(t *testing.T) {
	dp := loadTunnelDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.SetMonitorAggregation(AggregationMedium))
	udp := fromPod(pod1, pod4IP, 5353)
	udp.proto = ProtoUDP
	run(t, dp.FromContainer, udp.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToOverlay {
		t.Fatalf("new UDP flow traces %v, want to-overlay", tr)
	}
	syn := fromPod(pod1, pod4IP, 8080)
	run(t, dp.FromContainer, syn.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToOverlay {
		t.Fatalf("SYN traces %v, want to-overlay", tr)
	}
	syn.syn, syn.ack = false, true
	run(t, dp.FromContainer, syn.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if evs := drain(t, events); len(evs) != 0 {
		t.Fatalf("established ACK traced: %v", evs)
	}
}
