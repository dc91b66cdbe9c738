package datapath

import (
	"testing"
)

// pod1 → UDP service 10.224.1.1:53 backed by pod4:5353: DNAT with the UDP
// checksum fixed, the reply reverse-NATed; a zero UDP checksum stays zero.
func TestUDPServiceThroughCT(t *testing.T) {
	for _, noCsum := range []bool{false, true} {
		name := "with checksum"
		if noCsum {
			name = "zero checksum"
		}
		t.Run(name, func(t *testing.T) {
			dp := loadDatapath(t)
			must(t, dp.Services.Upsert(Service{VIP: vip, Port: 53, Proto: ProtoUDP, ID: 2,
				Backends: []Backend{{ID: 3, Addr: pod4IP, Port: 5353}}}))
			q := fromPod(pod1, vip, 53)
			q.proto, q.sport, q.payload, q.udpNoCsum = ProtoUDP, 33333, []byte("query"), noCsum
			res := run(t, dp.FromContainer, q.bytes(t), nil)
			res.assertVerdict(t, tcActOK)
			want := q
			want.dst, want.dport = pod4IP, 5353
			res.assertPacket(t, want.bytes(t))
			e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 33333), Dst: ap(pod4IP, 5353), Proto: ProtoUDP, Flags: TupleOut})
			if e.RevNAT != 2 || e.Lifetime-e.Created != 60 {
				t.Errorf("UDP entry %v: want rev-NAT 2, 60 s lifetime", e)
			}

			t.Log("pod4 answers")
			a := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62, proto: ProtoUDP,
				sport: 5353, dport: 33333, payload: []byte("answer"), udpNoCsum: noCsum}
			res = run(t, dp.FromNetdev, a.bytes(t), nil)
			res.assertVerdict(t, tcActRedirect)
			wantA := a
			wantA.src, wantA.sport, wantA.ttl, wantA.srcMAC, wantA.dstMAC = vip, 53, 61, pod1.lxcMAC(), pod1.podMAC()
			res.assertPacket(t, wantA.bytes(t))
		})
	}
}

// ICMP echo from pod1 to pod4 and the echo reply: the request creates an
// egress entry keyed by the echo id, the reply is classified REPLY.
func TestICMPEchoThroughCT(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, true)
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Egress, pod4ID, 0, ProtoICMP)))

	req := fromPod(pod1, pod4IP, 0)
	req.proto, req.icmpType, req.icmpID, req.payload = ProtoICMP, 8, 0x1234, []byte("ping")
	res := run(t, dp.FromContainer, req.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, req.bytes(t))
	e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 0x1234), Dst: ap(pod4IP, 0), Proto: ProtoICMP, Flags: TupleOut})
	if e.TxPackets != 1 {
		t.Errorf("echo entry %v", e)
	}
	drain(t, events)

	t.Log("the echo reply passes ingress policy through CT")
	rep := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62, proto: ProtoICMP,
		icmpType: 0, icmpID: 0x1234, payload: []byte("ping")}
	res = run(t, dp.FromNetdev, rep.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := rep
	want.ttl, want.srcMAC, want.dstMAC = 61, pod1.lxcMAC(), pod1.podMAC()
	res.assertPacket(t, want.bytes(t))
	if e := ctEntry(t, dp, e.Key); e.RxPackets != 1 {
		t.Errorf("echo entry after reply %v", e)
	}
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[1].Reason != TraceReasonCTReply {
		t.Fatalf("traces %v", tr)
	}

	t.Log("an unsolicited echo request from pod4 is denied")
	req2 := rep
	req2.icmpType = 8
	run(t, dp.FromNetdev, req2.bytes(t), nil).assertVerdict(t, tcActShot)
}
