package datapath

import (
	"testing"
)

// A packet that would be forwarded with TTL 1 is dropped with
// "TTL exceeded", on the way to another node and to a local pod alike.
func TestTTLExceeded(t *testing.T) {
	for _, tc := range []struct {
		name string
		dst  string
	}{{"to another node", "10.1.2.40"}, {"to a local pod", pod2.ip}} {
		t.Run(tc.name, func(t *testing.T) {
			dp := loadDatapath(t)
			events := openEvents(t, dp)
			p := fromPod(pod1, pod4IP, 8080)
			if tc.dst == pod2.ip {
				p.dst = pod2.addr()
			}
			p.ttl = 1
			in := p.bytes(t)
			res := run(t, dp.FromContainer, in, nil)
			res.assertVerdict(t, tcActShot)
			res.assertPacket(t, in)
			d := drops(drain(t, events))
			if len(d) != 1 || d[0].Reason != DropTTLExceeded || d[0].Reason.String() != "TTL exceeded" {
				t.Fatalf("drops %v", d)
			}
			// The drop carries the dropped packet as it was.
			if d[0].OrigLen != uint32(len(in)) || string(d[0].Data) != string(in[:min(len(in), 128)]) {
				t.Errorf("drop event carries %d of %d bytes %x, want the packet", len(d[0].Data), d[0].OrigLen, d[0].Data)
			}
			if m := metric(t, dp, DropTTLExceeded, Egress); m.Packets != 1 {
				t.Errorf("metric %+v", m)
			}
		})
	}
}

// TTL 2 is still forwarded: to a local pod it arrives with TTL 1; to
// another node it leaves untouched (the kernel decrements).
func TestTTLTwoForwarded(t *testing.T) {
	dp := loadDatapath(t)
	p := fromPod(pod1, pod2.addr(), 8080)
	p.ttl = 2
	res := run(t, dp.FromContainer, p.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := p
	want.ttl, want.srcMAC, want.dstMAC = 1, pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))

	p = fromPod(pod1, pod4IP, 8080)
	p.ttl = 2
	res = run(t, dp.FromContainer, p.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, p.bytes(t))
}

// Packets for the node itself are not forwarded, so TTL 1 is fine.
func TestTTLOneToHost(t *testing.T) {
	dp := loadDatapath(t)
	p := fromPod(pod1, node1IP, 22)
	p.ttl = 1
	res := run(t, dp.FromContainer, p.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, p.bytes(t))
}

// Same-node pod to pod: one routing hop, TTL 63. pod2's address lies in
// the PodCIDR loadDatapath sets, so from-container finds it among the
// local endpoints.
func TestSameNodePodToPod(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	p := fromPod(pod1, pod2.addr(), 8080)
	res := run(t, dp.FromContainer, p.bytes(t), nil)
	res.assertVerdict(t, tcActRedirect)
	want := p
	want.ttl, want.srcMAC, want.dstMAC = 63, pod2.lxcMAC(), pod2.podMAC()
	res.assertPacket(t, want.bytes(t))
	tr := traces(drain(t, events))
	if len(tr) != 2 || tr[1].ObsPoint != TraceToLXC || tr[1].IfIndex != uint32(pod2.ifindex) || tr[1].SrcIdentity != pod1.identity {
		t.Fatalf("traces %v", tr)
	}
}
