package datapath

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
)

// runMark runs prog once on in and returns the verdict, the output packet
// and skb->mark as the program left it.
func runMark(t testing.TB, prog *ebpf.Program, in []byte) (result, uint32) {
	t.Helper()
	// The kernel writes the whole struct __sk_buff back: room for it.
	out := make([]byte, 512)
	opts := &ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+512), Repeat: 1, Context: skbContext{}, ContextOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return result{ret: ret, out: opts.DataOut}, binary.NativeEndian.Uint32(out[8:]) // after len and pkt_type
}

// assertACKToProxy runs a proxied flow's ACK through prog: passed to the
// stack, marked for the proxy on 8080, one to-proxy trace of an
// established flow.
func assertACKToProxy(t *testing.T, prog *ebpf.Program, ack pkt, events *EventReader) {
	t.Helper()
	res, mark := runMark(t, prog, ack.bytes(t))
	res.assertVerdict(t, tcActOK)
	if mark != MarkToProxy(8080) {
		t.Fatalf("ACK mark %#x", mark)
	}
	if tr := toProxyTraces(drain(t, events)); len(tr) != 1 || tr[0].Reason != TraceReasonCTEstablished {
		t.Fatalf("ACK traces %v", tr)
	}
}

func toProxyTraces(evs []Event) []*TraceNotify {
	var out []*TraceNotify
	for _, tr := range traces(evs) {
		if tr.ObsPoint == TraceToProxy {
			out = append(out, tr)
		}
	}
	return out
}

// Ingress L7: pod4 (node2) opens TCP/8080 to pod1, whose ingress entry for
// pod4's identity names proxy port 8080. to-container creates the flow's
// entry with the port and hands the SYN, marked 0x1f900200 (magic 0x200,
// port in the upper bits), to the stack instead of redirecting it to the
// pod; the to-proxy trace carries the port. The flow's next packet is
// marked too; a flow on a port without proxy is redirected as before.
func TestIngressToProxy(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, true, false)
	must(t, dp.Policy.AllowProxy(L3L4Key(pod1.id, Ingress, pod4ID, 8080, ProtoTCP), 8080))
	must(t, dp.Policy.Allow(L3L4Key(pod1.id, Ingress, pod4ID, 9090, ProtoTCP)))
	if pe, err := dp.Policy.Lookup(L3L4Key(pod1.id, Ingress, pod4ID, 8080, ProtoTCP)); err != nil || pe.ProxyPort != 8080 {
		t.Fatalf("policy entry %+v %v", pe, err)
	}

	syn := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62, proto: ProtoTCP, sport: 50000, dport: 8080, syn: true}
	t.Log("SYN pod4:50000 -> pod1:8080 at from-netdev: marked for the proxy, passed to the stack")
	res, mark := runMark(t, dp.FromNetdev, syn.bytes(t))
	res.assertVerdict(t, tcActOK)
	if mark != MarkToProxy(8080) || mark != 0x1f900200 {
		t.Fatalf("mark %#x, want %#x", mark, MarkToProxy(8080))
	}
	// Routed by the datapath like any local delivery: TTL-1, pod's MACs.
	want := syn
	want.srcMAC, want.dstMAC, want.ttl = pod1.lxcMAC(), pod1.podMAC(), 61
	res.assertPacket(t, want.bytes(t))
	e := ctEntry(t, dp, CTKey{Src: ap(pod4IP, 50000), Dst: ap(pod1.addr(), 8080), Proto: ProtoTCP, Flags: TupleIn})
	if e.ProxyPort != 8080 {
		t.Errorf("CT entry proxy port %d", e.ProxyPort)
	}
	tr := toProxyTraces(drain(t, events))
	if len(tr) != 1 || tr[0].DstID != 8080 || tr[0].Reason != TraceReasonPolicy || tr[0].SrcIdentity != pod4ID || tr[0].DstIdentity != pod1.identity {
		t.Fatalf("to-proxy traces %v", tr)
	}
	if tr[0].ObsPoint.JourneyPoint() != "proxy" {
		t.Errorf("journey point %q", tr[0].ObsPoint.JourneyPoint())
	}

	t.Log("its ACK: established, marked again")
	ack := syn
	ack.syn, ack.ack = false, true
	assertACKToProxy(t, dp.FromNetdev, ack, events)

	t.Log("a flow to 9090 (no proxy port) is redirected to the pod, unmarked")
	other := syn
	other.dport = 9090
	res, mark = runMark(t, dp.FromNetdev, other.bytes(t))
	res.assertVerdict(t, tcActRedirect)
	if mark != 0 {
		t.Errorf("mark %#x on a flow without proxy", mark)
	}
	if e := ctEntry(t, dp, CTKey{Src: ap(pod4IP, 50000), Dst: ap(pod1.addr(), 9090), Proto: ProtoTCP, Flags: TupleIn}); e.ProxyPort != 0 {
		t.Errorf("proxy port %d", e.ProxyPort)
	}
}

// An L4 flow established before its entry names a proxy port stays
// direct: CT recorded no port, so node-update's new L7 rule does not
// break it; only new flows go to the proxy.
func TestEstablishedFlowKeepsItsPath(t *testing.T) {
	dp := loadDatapath(t)
	addEndpoint(t, dp, pod1, true, false)
	key := L3L4Key(pod1.id, Ingress, pod4ID, 8080, ProtoTCP)
	must(t, dp.Policy.Allow(key))
	syn := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62, proto: ProtoTCP, sport: 50001, dport: 8080, syn: true}
	res, _ := runMark(t, dp.FromNetdev, syn.bytes(t))
	res.assertVerdict(t, tcActRedirect)

	must(t, dp.Policy.AllowProxy(key, 8080))
	ack := syn
	ack.syn, ack.ack = false, true
	res, mark := runMark(t, dp.FromNetdev, ack.bytes(t))
	res.assertVerdict(t, tcActRedirect)
	if mark != 0 {
		t.Errorf("the established flow was marked %#x", mark)
	}
	fresh := syn
	fresh.sport = 50002
	res, mark = runMark(t, dp.FromNetdev, fresh.bytes(t))
	res.assertVerdict(t, tcActOK)
	if mark != MarkToProxy(8080) {
		t.Errorf("a new flow: mark %#x", mark)
	}
	t.Log("the rule removed again: the proxied flow stays proxied, new flows are direct")
	must(t, dp.Policy.Allow(key))
	est := fresh
	est.syn, est.ack = false, true
	if res, mark = runMark(t, dp.FromNetdev, est.bytes(t)); res.ret != tcActOK || mark != MarkToProxy(8080) {
		t.Errorf("proxied flow after the change: verdict %d mark %#x", res.ret, mark)
	}
	fresh.sport = 50003
	if res, mark = runMark(t, dp.FromNetdev, fresh.bytes(t)); res.ret != tcActRedirect || mark != 0 {
		t.Errorf("new flow after the change: verdict %d mark %#x", res.ret, mark)
	}
}

// Egress L7: pod1 (enforcing egress) opens TCP/8080 to pod4 with an egress
// entry naming proxy port 8080. The egress stage creates the flow's entry
// with the port and hands the SYN, unchanged (the proxy's node delivers
// it, nothing routes it), marked, to the stack; from-container marks the
// flow's established packets.
func TestEgressToProxy(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, pod1, false, true)
	must(t, dp.Policy.AllowProxy(L3L4Key(pod1.id, Egress, pod4ID, 8080, ProtoTCP), 8080))
	in := fromPod(pod1, pod4IP, 8080).bytes(t)
	res, mark := runMark(t, dp.FromContainer, in)
	res.assertVerdict(t, tcActOK)
	res.assertPacket(t, in)
	if mark != MarkToProxy(8080) {
		t.Fatalf("mark %#x", mark)
	}
	if e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut}); e.ProxyPort != 8080 {
		t.Errorf("CT proxy port %d", e.ProxyPort)
	}
	evs := drain(t, events)
	tr := toProxyTraces(evs)
	if len(tr) != 1 || tr[0].DstID != 8080 || tr[0].SrcIdentity != pod1.identity || tr[0].DstIdentity != pod4ID || tr[0].Source != pod1.id {
		t.Fatalf("to-proxy traces %v", tr)
	}
	for _, e := range traces(evs) {
		if e.ObsPoint == TraceToStack {
			t.Errorf("a proxied packet was also traced to-stack: %v", e)
		}
	}
	ack := fromPod(pod1, pod4IP, 8080)
	ack.syn, ack.ack = false, true
	assertACKToProxy(t, dp.FromContainer, ack, events)
	if m := metric(t, dp, ReasonForwarded, Egress); m.Packets != 2 {
		t.Errorf("forwarded egress metric %+v", m)
	}
}
