package datapath

import (
	"net/netip"
	"testing"
)

// A packet from outside the cluster arrives on bond0: from-netdev takes the
// sender's identity from the ipcache (WORLD when unknown), routes it to
// pod1 and tail-calls pod1's to-container, whose policy sees that
// identity.
func TestFromNetdevLocalDelivery(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)
	must(t, dp.Policy.Allow(L3OnlyKey(pod1.id, Ingress, IdentityWorld)))

	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: worldIP, dst: pod1.addr(), ttl: 50,
		proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
	res := run(t, dp.FromNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := in
	want.ttl, want.srcMAC, want.dstMAC = 49, pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, want.bytes(t))

	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromNetwork || tr[0].SrcIdentity != IdentityWorld ||
		tr[1].ObsPoint != TraceToLXC || tr[1].SrcIdentity != IdentityWorld || tr[1].DstID != pod1.id {
		t.Fatalf("traces %v", tr)
	}
	e := ctEntry(t, dp, CTKey{Src: ap(worldIP, 50000), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	if e.SrcIdentity != IdentityWorld {
		t.Errorf("CT source identity %d", e.SrcIdentity)
	}
	if m := metric(t, dp, ReasonForwarded, Ingress); m.Packets != 1 {
		t.Errorf("metric %+v", m)
	}

	t.Log("pod4's subnet identity comes from the /24 ipcache entry")
	in.src = netip.MustParseAddr("10.1.2.99")
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].SrcIdentity != pod4ID || d[0].Reason != DropPolicy {
		t.Fatalf("drops %v", d)
	}
}

// Packets not for a local endpoint go to the stack untouched.
func TestFromNetdevNotLocal(t *testing.T) {
	dp := loadDatapath(t)
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: worldIP, dst: node1IP, ttl: 50,
		proto: ProtoTCP, sport: 50000, dport: 22, syn: true}
	res := run(t, dp.FromNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, in.bytes(t))
}

// An endpoint without a registered policy program: "Missed tail call".
func TestFromNetdevMissedTailCall(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.UnregisterEndpoint(pod1.id))
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: worldIP, dst: pod1.addr(), ttl: 50,
		proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActShot)
	if d := drops(drain(t, events)); len(d) != 1 || d[0].Reason != DropMissedTailCall {
		t.Fatalf("drops %v", d)
	}
	// A drop at from-netdev is counted for the ingress direction.
	if in, eg := metric(t, dp, DropMissedTailCall, Ingress), metric(t, dp, DropMissedTailCall, Egress); in.Packets != 1 || eg.Packets != 0 {
		t.Errorf("missed tail call counted ingress %+v, egress %+v", in, eg)
	}
}

// to-netdev reports the source identity and lets the packet leave.
func TestToNetdevTrace(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	in := pkt{srcMAC: bond0MAC, dstMAC: torMAC, src: pod1.addr(), dst: pod4IP, ttl: 63,
		proto: ProtoTCP, sport: 40000, dport: 8080, syn: true}
	res := run(t, dp.ToNetdev, in.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, in.bytes(t))
	tr := traces(drain(t, events))
	if len(tr) != 1 || tr[0].ObsPoint != TraceToNetwork || tr[0].SrcIdentity != pod1.identity || tr[0].DstIdentity != pod4ID || tr[0].Source != pod1.id {
		t.Fatalf("traces %v", tr)
	}
	// From the node itself: the source identity is the host's (from the
	// ipcache), there is no source endpoint.
	in.src = node1IP
	run(t, dp.ToNetdev, in.bytes(t), nil).assertVerdict(t, tcActOK)
	tr = traces(drain(t, events))
	if len(tr) != 1 || tr[0].SrcIdentity != IdentityHost || tr[0].DstIdentity != pod4ID || tr[0].Source != 0 {
		t.Fatalf("host traffic traces %v, want host -> %d", tr, pod4ID)
	}
	// Both packets counted as forwarded, egress.
	if eg, in := metric(t, dp, ReasonForwarded, Egress), metric(t, dp, ReasonForwarded, Ingress); eg.Packets != 2 || in.Packets != 0 {
		t.Errorf("forwarded counters: egress %+v, ingress %+v", eg, in)
	}
	// An IPv4 EtherType with a header that is not IPv4 leaves as it is:
	// to-netdev never drops.
	bad := in.bytes(t)
	bad[14] = 0x65
	res = run(t, dp.ToNetdev, bad, nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, bad)
}

// to-container run directly without skb->cb resolves the sender from the
// ipcache; a packet for an unknown pod is "Unknown L3 target address".
func TestToContainerDirect(t *testing.T) {
	dp := loadDatapath(t)
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 63,
		proto: ProtoTCP, sport: 40000, dport: 8080, syn: true}
	res := run(t, dp.ToContainer, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	res.assertPacket(t, in.bytes(t))
	e := ctEntry(t, dp, CTKey{Src: ap(pod4IP, 40000), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	if e.SrcIdentity != pod4ID {
		t.Errorf("source identity %d", e.SrcIdentity)
	}

	t.Log("skb->cb carries the identity when tail-called")
	in.sport = 40001
	run(t, dp.ToContainer, in.bytes(t), &[5]uint32{4242}).assertVerdict(t, tcActRedirect)
	e = ctEntry(t, dp, CTKey{Src: ap(pod4IP, 40001), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	if e.SrcIdentity != 4242 {
		t.Errorf("source identity %d, want 4242 from skb->cb", e.SrcIdentity)
	}

	in.dst = netip.MustParseAddr("10.1.1.99")
	run(t, dp.ToContainer, in.bytes(t), nil).assertVerdict(t, tcActShot)
	if m := metric(t, dp, DropUnknownTarget, Ingress); m.Packets != 1 {
		t.Errorf("metric %+v", m)
	}
}
