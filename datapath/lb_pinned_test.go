package datapath

import (
	"testing"
)

// The service map is consulted once per connection: an established flow is
// DNATed by its service entry alone, so it keeps its backend after the
// service is deleted, as long as the backend is in the backend map; a new
// connection to the deleted service is not translated.
func TestEstablishedFlowNeedsNoServiceLookup(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))

	t.Log("pod1's SYN to 10.224.1.1:80 pins pod4:8080")
	flow := fromPod(pod1, vip, 80)
	run(t, dp.FromContainer, flow.bytes(t), nil).assertVerdict(t, tcActOK)

	t.Log("the service is deleted, backend 1 stays; pod1's ACK still goes to pod4:8080")
	must(t, dp.Services.Delete(vip, 80, ProtoTCP))
	flow.syn, flow.ack = false, true
	res := run(t, dp.FromContainer, flow.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	want := flow
	want.dst, want.dport = pod4IP, 8080
	res.assertPacket(t, want.bytes(t))
	if e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}); e.TxPackets != 2 {
		t.Errorf("egress entry counted %d packets, want 2", e.TxPackets)
	}

	t.Log("a new connection to 10.224.1.1:80 goes out untranslated")
	other := fromPod(pod1, vip, 80)
	other.sport = 40001
	res = run(t, dp.FromContainer, other.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, other.bytes(t))
}

// A connection to an address that becomes a service later (its first SYN
// went to the stack untranslated, leaving an egress entry for the VIP) is
// translated from its first packet after the service appears: an egress
// entry of the untranslated flow never lets a packet for a service bypass
// it.
func TestServiceAppearsForKnownFlow(t *testing.T) {
	dp := loadDatapath(t)

	t.Log("pod1's SYN to 10.224.1.1:80, not a service yet: to the stack as sent")
	syn := fromPod(pod1, vip, 80)
	res := run(t, dp.FromContainer, syn.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, syn.bytes(t))
	ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleOut})

	t.Log("the service appears; the retransmitted SYN is DNATed to pod4:8080")
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	res = run(t, dp.FromContainer, syn.bytes(t), nil)
	res.assertVerdict(t, tcActOK)
	want := syn
	want.dst, want.dport = pod4IP, 8080
	res.assertPacket(t, want.bytes(t))
	if e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService}); e.BackendID != 1 {
		t.Errorf("service entry %v, want backend 1 pinned", e)
	}
}
