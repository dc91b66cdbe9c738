package datapath

import (
	"testing"
)

// webService is 10.224.1.1:80/TCP with the given backends (rev-NAT id 1).
func webService(backends ...Backend) Service {
	return Service{VIP: vip, Port: 80, Proto: ProtoTCP, ID: 1, Backends: backends}
}

// pod1 → Service 10.224.1.1:80 with its backend pod4:8080 on another node:
// from-container DNATs to pod4:8080 (checksums fixed), leaves TTL and MACs
// to the kernel's forwarding, returns TC_ACT_OK, and creates the service
// and egress CT entries.
func TestPodToServiceDNAT(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))

	t.Log("pod1 sends SYN to 10.224.1.1:80")
	in := fromPod(pod1, vip, 80)
	res := run(t, dp.FromContainer, in.bytes(t), nil)

	t.Log("from-container: DNAT to pod4:8080, TTL and MACs untouched, to the stack")
	res.assertVerdict(t, tcActOK)
	want := in
	want.dst, want.dport = pod4IP, 8080
	res.assertPacket(t, want.bytes(t))

	t.Log("CT: service entry pins backend 1, egress entry carries the rev-NAT id")
	svcEntry := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
	if svcEntry.BackendID != 1 || svcEntry.RevNAT != 1 || svcEntry.Flags&CTService == 0 {
		t.Errorf("service entry %v: want backend 1, rev-NAT 1, Service flag", svcEntry)
	}
	out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
	if out.RevNAT != 1 || out.BackendID != 1 || out.SrcIdentity != pod1.identity || out.TxPackets != 1 ||
		out.TxBytes != uint64(len(in.bytes(t))) || out.TxFlagsSeen != 0x02 || out.Lifetime <= out.Created {
		t.Errorf("egress entry %v", out)
	}

	t.Log("events: from-container with the original packet, to-stack with the rewritten one")
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromLXC || tr[1].ObsPoint != TraceToStack {
		t.Fatalf("traces %v, want from-container then to-stack", tr)
	}
	if string(tr[0].Data) != string(in.bytes(t)) || string(tr[1].Data) != string(want.bytes(t)) {
		t.Errorf("trace payloads do not match the packets")
	}
	if tr[1].SrcIdentity != pod1.identity || tr[1].DstIdentity != pod4ID || tr[1].Reason != TraceReasonPolicy || tr[1].Source != pod1.id {
		t.Errorf("to-stack trace %+v", tr[1])
	}
	if m := metric(t, dp, ReasonForwarded, Egress); m.Packets != 1 || m.Bytes != uint64(len(in.bytes(t))) {
		t.Errorf("forwarded egress metric %+v", m)
	}
}

// pod4's SYN-ACK arrives on bond0: from-netdev routes it to pod1 (TTL-1,
// MACs), to-container finds the REPLY and rewrites the source back to
// 10.224.1.1:80.
func TestServiceReplyReverseNAT(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	run(t, dp.FromContainer, fromPod(pod1, vip, 80).bytes(t), nil).assertVerdict(t, tcActOK)
	drain(t, events)

	t.Log("pod4:8080 answers SYN-ACK, arriving from the ToR with TTL 62")
	reply := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoTCP, sport: 8080, dport: 40000, syn: true, ack: true}
	res := run(t, dp.FromNetdev, reply.bytes(t), nil)

	t.Log("to-container: source rewritten to the VIP, TTL 61, MACs lxc → pod1, redirect to lxc1")
	res.assertVerdict(t, tcActRedirect)
	want := reply
	want.src, want.sport, want.ttl = vip, 80, 61
	want.srcMAC, want.dstMAC = pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, want.bytes(t))

	out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
	if out.RxPackets != 1 || out.RxFlagsSeen != 0x12 {
		t.Errorf("egress entry after reply: %v", out)
	}
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[0].ObsPoint != TraceFromNetwork || tr[1].ObsPoint != TraceToLXC {
		t.Fatalf("traces %v", tr)
	}
	if tr[1].Reason != TraceReasonCTReply || tr[1].SrcIdentity != pod4ID || tr[1].DstIdentity != pod1.identity || tr[1].IfIndex != uint32(pod1.ifindex) {
		t.Errorf("to-container trace %+v", tr[1])
	}
}

// pod1 → Service with its backend pod2 on the same node: the datapath is
// the router, so TTL 63, MACs of pod2's veth pair, redirect to lxc2; pod2's
// reply comes back to pod1 reverse-NATed.
func TestSameNodeServiceRoundTrip(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod2.addr(), Port: 8080})))

	in := fromPod(pod1, vip, 80)
	res := run(t, dp.FromContainer, in.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := in
	want.dst, want.dport, want.ttl = pod2.addr(), 8080, 63
	want.srcMAC, want.dstMAC = pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))
	ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod2.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	// Forwarded once on the way out of pod1 and once into pod2.
	if eg, in := metric(t, dp, ReasonForwarded, Egress), metric(t, dp, ReasonForwarded, Ingress); eg.Packets != 1 || in.Packets != 1 {
		t.Errorf("forwarded counters: egress %+v, ingress %+v; want one packet each", eg, in)
	}

	t.Log("pod1's ACK, an established flow, goes to pod2 again")
	ack := in
	ack.syn, ack.ack = false, true
	res = run(t, dp.FromContainer, ack.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	wantAck := ack
	wantAck.dst, wantAck.dport, wantAck.ttl = pod2.addr(), 8080, 63
	wantAck.srcMAC, wantAck.dstMAC = pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, wantAck.bytes(t))

	t.Log("pod2 replies SYN-ACK")
	reply := fromPod(pod2, pod1.addr(), 40000)
	reply.sport, reply.ack = 8080, true
	res = run(t, dp.FromContainer, reply.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	wantReply := reply
	wantReply.src, wantReply.sport, wantReply.ttl = vip, 80, 63
	wantReply.srcMAC, wantReply.dstMAC = pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, wantReply.bytes(t))
}

// A service without backends drops with "Service backend not found".
func TestServiceWithoutBackends(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.Services.Upsert(webService()))

	in := fromPod(pod1, vip, 80).bytes(t)
	res := run(t, dp.FromContainer, in, nil)
	res.assertVerdict(t, tcActShot)
	res.assertPacket(t, in)
	d := drops(drain(t, events))
	if len(d) != 1 || d[0].Reason != DropNoService || d[0].SrcIdentity != pod1.identity {
		t.Fatalf("drops %v, want one %q", d, DropNoService)
	}
	if d[0].Reason.String() != "Service backend not found" || d[0].Verdict() != "DROPPED (Service backend not found)" {
		t.Errorf("drop names: %q %q", d[0].Reason, d[0].Verdict())
	}
	if m := metric(t, dp, DropNoService, Egress); m.Packets != 1 {
		t.Errorf("metric %+v", m)
	}
}
